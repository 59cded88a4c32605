"""Every combination composes and builds; bad input stops before any work with one clear line."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hydra.errors import MissingConfigException
from hydra.utils import instantiate

from harness.errors import ConfigError
from harness.job.app import build_job, settings_from
from tests.helpers import CONF, TOY, compose_config, harness_cli

ENVS = sorted(p.stem for p in (CONF / "env").glob("*.yaml"))
VARIANTS = sorted(p.stem for p in (CONF / "variant").glob("*.yaml"))
BACKENDS = sorted(p.stem for p in (CONF / "backend").glob("*.yaml"))
USERS = sorted(p.stem for p in (CONF / "user").glob("*.yaml"))
MODEL_FOR_BACKEND = {
    "vllm": "qwen2.5-7b",
    "openai": "gpt-4o",
    "anthropic": "claude-sonnet-4.6",
    "gemini": "gemini-3-pro",
    "openai_responses": "gpt-5",
}


def test_the_groups_hold_what_the_harness_promises() -> None:
    assert {"retail", "airline"} <= set(ENVS)
    assert set(VARIANTS) >= {"control", "neutral", "frustration", "anxiety", "anger", "confusion"}
    assert {"oracle", "scripted"} <= set(BACKENDS)
    assert {"llm", "react"} <= set(USERS)


@pytest.mark.parametrize(("env", "variant", "backend"), list(itertools.product(ENVS, VARIANTS, BACKENDS)))
def test_every_combination_composes_and_its_backend_builds(
    env: str, variant: str, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.setenv(key, "sk-test")
    model = MODEL_FOR_BACKEND.get(backend, "oracle")
    cfg = compose_config([f"env={env}", f"variant={variant}", f"backend={backend}", f"model={model}"])
    settings = settings_from(cfg)
    assert settings.env.name == env and settings.variant["name"] == variant
    built = instantiate(cfg.backend, _convert_="all")  # constructors are cheap: nothing starts
    assert hasattr(built, "model_for")


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_variant_builds_a_job_on_the_toy_domain(tmp_path: Path, variant: str) -> None:
    job = build_job(compose_config([*TOY, f"variant={variant}", "user=react"]), tmp_path)
    assert job.variant.name == variant
    assert job.variant.is_control == (variant == "control")
    assert job.task_ids == [0, 1, 2, 3, 4]


def test_unknown_group_option_names_the_choices() -> None:
    with pytest.raises(MissingConfigException) as error:
        compose_config(["variant=sadness"])
    assert "anger" in str(error.value) and "control" in str(error.value)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("seed=abc", "`seed`"),
        ("concurrency=0", "`concurrency`"),
        ("env.trials=two", "`env.trials`"),
        ("env.tasks=[0,99]", "out of range [99]"),
        ("variant.intensity=extreme", "`variant.intensity`: Input should be 'low', 'medium' or 'high'"),
        ("+variant.colour=red", "`variant.colour`: Extra inputs are not permitted"),
        ("variant.onset_after_turns=-1", "`variant.onset_after_turns`"),
    ],
)
def test_bad_values_raise_a_config_error_naming_the_key(tmp_path: Path, override: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=None) as error:
        build_job(compose_config([*TOY, override]), tmp_path)
    assert expected in str(error.value)


def test_the_cli_prints_one_line_and_exits_2_on_bad_input(tmp_path: Path) -> None:
    result = harness_cli([*TOY, "env.tasks=[7]", f"hydra.run.dir={tmp_path}"])
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "env.tasks has ids out of range [7]" in errors[0]
    assert (tmp_path / "error.txt").read_text().startswith("env.tasks has ids out of range")
    assert not (tmp_path / "conversations.jsonl").exists()


def test_missing_taubench_gives_the_install_hint(tmp_path: Path) -> None:
    # a directory shadowing the package stands in for an environment without τ-bench
    fake = tmp_path / "site" / "tau_bench"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no', name='tau_bench.envs')\n")
    script = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from harness.domains.taubench.loader import load_taubench_domain\n"
        "from harness.errors import MissingDependencyError\n"
        "try:\n    load_taubench_domain('retail')\n"
        "except MissingDependencyError as e:\n    print(e)\n"
    )
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "site")], capture_output=True, text=True
    )
    assert "pip install" in out.stdout and "sierra-research/tau-bench@" in out.stdout


def test_job_json_records_who_played_the_user(tmp_path: Path) -> None:
    job = build_job(compose_config([*TOY, "variant=anger", "variant.intensity=high", "user=react"]), tmp_path)
    identity = job.info["user_simulator"]
    assert identity["backend"] == "oracle" and identity["model"] == "oracle"
    assert identity["strategy"] == "react"
    assert identity["sampling"] == {"temperature": 1.0, "top_p": 1.0, "max_tokens": 512}
    other = build_job(compose_config([*TOY, "user.framing='Be this: {persona}'"]), tmp_path / "b")
    assert other.info["user_simulator"]["framing_sha"] != identity["framing_sha"]
    assert (job.info["intensity"], other.info["intensity"]) == ("high", None)


def test_a_user_backend_of_its_own_is_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    cfg = compose_config([*TOY, "+user/backend=openai", "model@user.backend.model=gpt-4o-mini"])
    identity = build_job(cfg, tmp_path).info["user_simulator"]
    assert (identity["backend"], identity["model"]) == ("openai", "gpt-4o-mini")


def test_react_and_airline_reuse_llm_and_retail() -> None:
    llm, react = compose_config(["user=llm"]).user, compose_config(["user=react"]).user
    assert react.strategy == "react" and llm.strategy == "llm"
    assert {k: v for k, v in react.items() if k != "strategy"} == {
        k: v for k, v in llm.items() if k != "strategy"
    }
    retail, airline = compose_config(["env=retail"]).env, compose_config(["env=airline"]).env
    assert airline.name == "airline" and airline.domain.name == "airline"
    assert {k: v for k, v in airline.items() if k not in ("name", "domain", "kv_tokens")} == {
        k: v for k, v in retail.items() if k not in ("name", "domain", "kv_tokens")
    }


def test_a_dosed_variant_needs_a_persona_at_every_intensity(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"variant 'anger' has no persona for intensity \['high'\]"):
        build_job(compose_config([*TOY, "variant=anger", "~variant.persona.high"]), tmp_path)
