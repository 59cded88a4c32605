"""τ²-bench environments through τ²'s own environment, user prompt and evaluator (needs τ² installed)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from harness.domains.tau2.loader import data_dir
from harness.episode.variants import Variant
from harness.job.app import build_job
from harness.job.runner import run_job
from harness.store import CONVERSATIONS
from tests.helpers import CONF, compose_config, harness_cli, read_jsonl

pytestmark = pytest.mark.tau2

VARIANTS = sorted(p.stem for p in (CONF / "variant").glob("*.yaml"))
TELECOM_SMALL = ["env=tau2_telecom", "env.split=small"]


def _needs(domain: str, *files: str) -> None:
    folder = Path(os.environ["TAU2_DATA_DIR"]) / "tau2" / "domains" / domain
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        pytest.skip(f"τ²-bench data file(s) {', '.join(missing)} of {domain} are not in TAU2_DATA_DIR")


def _run(out: Path, overrides: list[str]) -> dict[str, Any]:
    return asyncio.run(run_job(build_job(compose_config(overrides), out)))


def _tau2_user_prompt(domain: str, split: str, index: int) -> str:
    """The user simulator's system prompt as τ²'s own runner builds it."""
    from tau2.registry import registry
    from tau2.runner.build import build_user

    environment = registry.get_env_constructor(domain)()
    from harness.domains.tau2.loader import load_tasks

    task = load_tasks(domain, split)[index]
    user = build_user("user_simulator", environment, task, llm="gpt-4.1", llm_args={})
    return user.system_prompt


@pytest.mark.parametrize(
    ("env", "split", "files"), [("retail", "base", ("db.json",)), ("telecom", "small", ("db.toml",))]
)
def test_control_user_prompt_is_tau2s_user_simulator_prompt_byte_for_byte(
    env: str, split: str, files: tuple[str, ...]
) -> None:
    _needs(env, *files)
    cfg = compose_config([f"env=tau2_{env}", f"env.split={split}", "env.tasks=[0]"])
    job = build_job(cfg, Path("unused"))
    domain = job.domain
    expected = _tau2_user_prompt(env, split, 0)
    assert domain.user_prompt(0, "llm") == expected
    if env == "telecom":
        assert "<scenario>" in expected and domain.user_tools_info(0)
    # the variants append their block after τ²'s prompt, as for τ-bench
    from harness.episode.types import Sampling
    from harness.episode.user import UserSimulator, variant_block

    anger = Variant.from_config(dict(compose_config(["variant=anger"]).variant))
    user = UserSimulator(
        model=None,  # type: ignore[arg-type]
        instruction=domain.instruction(0),
        variant=anger,
        framing=job.user.framing,
        sampling=Sampling(),
        base_prompt=domain.user_prompt(0, "llm"),
    )
    assert user.system_prompt(0) == f"{expected}\n\n{variant_block(anger, job.user.framing)}"


@pytest.mark.parametrize("variant", VARIANTS)
def test_oracle_scores_every_telecom_small_task_in_every_variant(tmp_path: Path, variant: str) -> None:
    _needs("telecom", "db.toml", "tasks_small.json")
    summary = _run(tmp_path, [*TELECOM_SMALL, f"variant={variant}"])
    assert summary["average_reward"] == 1.0 and summary["scored"] == 20
    records = read_jsonl(tmp_path / CONVERSATIONS)
    with_user_actions = [r for r in records if r["counts"]["user_tool_calls"]]
    assert with_user_actions, "the telecom ground truth has user actions: the oracle user must run them"
    record = with_user_actions[0]
    user_calls = [m for m in record["messages"] if m.get("requestor") == "user" and m["role"] == "user"]
    assert [c["tool_calls"][0]["function"]["name"] for c in user_calls] == [
        a["name"] for a in record["user_actions"]
    ]
    assert record["reward_info"]["reward_basis"] == ["ENV_ASSERTION"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_oracle_scores_retail_tasks_in_every_variant(tmp_path: Path, variant: str) -> None:
    _needs("retail", "db.json", "tasks.json")
    tasks = sorted({0, 1, *_judged_retail_tasks(2)})
    summary = _run(
        tmp_path, ["env=tau2_retail", "env.split=test", f"env.tasks={tasks}", f"variant={variant}"]
    )
    assert summary["average_reward"] == 1.0 and summary["scored"] == len(tasks)
    records = read_jsonl(tmp_path / CONVERSATIONS)
    assert all(set(r["reward_info"]["reward_basis"]) == {"DB", "NL_ASSERTION"} for r in records)
    judged = [r for r in records if r["reward_info"]["nl_assertions"]]
    assert len(judged) == 2, "NL assertions are judged (by the oracle's scripted judge)"
    assert all(check["met"] for r in judged for check in r["reward_info"]["nl_assertions"])
    assert all([c["role"] for c in r["calls"]][-1] == "judge" for r in judged)
    assert not any(c["role"] == "judge" for r in records if r not in judged for c in r["calls"])


@pytest.mark.slow
def test_oracle_scores_every_retail_task(tmp_path: Path) -> None:
    _needs("retail", "db.json", "tasks.json")
    summary = _run(tmp_path, ["env=tau2_retail", "concurrency=4"])
    assert summary["average_reward"] == 1.0 and summary["scored"] == 114


JUDGE = (
    "++env.judge={_target_: harness.backends.scripted.ScriptedBackend, agent: [{text: unused}], judge: %s}"
)


def _judged_retail_tasks(count: int) -> list[int]:
    """Retail test tasks whose reward includes NL assertions."""
    domain = build_job(compose_config(["env=tau2_retail", "env.split=test"]), Path("unused")).domain
    judged = [
        i
        for i, task in enumerate(domain.tasks)
        if task.evaluation_criteria.nl_assertions and "NL_ASSERTION" in task.evaluation_criteria.reward_basis
    ]
    return judged[:count]


def test_nl_assertions_are_judged_by_the_configured_backend(tmp_path: Path) -> None:
    _needs("retail", "db.json", "tasks.json")
    base = ["env=tau2_retail", "env.split=test", f"env.tasks={_judged_retail_tasks(2)}"]
    unmet = _run(tmp_path / "unmet", [*base, JUDGE % "unmet"])
    assert unmet["average_reward"] == 0.0 and unmet["scored"] == 2
    failed = _run(tmp_path / "fail", [*base, JUDGE % "fail"])
    assert failed["scored"] == 0 and failed["terminations"] == {"judge_error": 2}
    record = read_jsonl(tmp_path / "fail" / CONVERSATIONS)[0]
    assert record["error"].startswith("NL-assertion judge:") and record["reward_info"] is None


def test_user_tool_calls_with_bad_arguments_are_observations(tmp_path: Path) -> None:
    _needs("telecom", "db.toml", "tasks_small.json")
    user = (
        "backend.user=[{tool: toggle_roaming, arguments: '{not json'}, {tool: toggle_airplane_mode, arguments: {bogus: 1}},"
        " {tool: check_status_bar}, {text: 'my phone is broken'}, {text: '###STOP###'}]"
    )
    summary = _run(tmp_path, [*TELECOM_SMALL, "env.tasks=[0]", "backend=scripted", user])
    assert summary["terminations"] == {"user_stop": 1}
    record = read_jsonl(tmp_path / CONVERSATIONS)[0]
    observations = [a["observation"] for a in record["user_actions"]]
    assert observations[0].startswith("Error: malformed tool call arguments")
    assert observations[1].startswith("Error:")
    assert not observations[2].startswith("Error"), observations[2]
    assert record["counts"]["user_tool_calls"] == 3
    # the agent never sees the user's own tool calls
    assert record["reward"] == 0.0 and record["scored"]


def test_results_also_in_tau2s_format(tmp_path: Path) -> None:
    _needs("telecom", "db.toml", "tasks_small.json")
    from tau2.data_model.simulation import Results
    from tau2.metrics.agent_metrics import compute_metrics

    _run(tmp_path, [*TELECOM_SMALL, "env.tasks=[0,1,2]", "env.trials=2"])
    results = Results.load(tmp_path / "tau2_results.json")
    assert len(results.simulations) == 6 and len(results.tasks) == 3
    metrics = compute_metrics(results)
    assert metrics.avg_reward == 1.0 and metrics.pass_hat_ks == {1: 1.0, 2: 1.0}
    user_calls = [m for s in results.simulations for m in s.messages if m.role == "user" and m.tool_calls]
    assert user_calls and all(c.requestor == "user" for m in user_calls for c in m.tool_calls)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["env=tau2_telecom", "env.split=bogus"],
            "env.split='bogus' does not exist for tau2_telecom; choose one of",
        ),
        (["env=tau2_retail", "env.domain.name=banking"], "is not a τ²-bench domain; choose one of"),
        (["env=tau2_retail", "user=react"], "user=react does not exist for env=tau2_retail"),
    ],
)
def test_bad_tau2_input_stops_with_one_line(tmp_path: Path, overrides: list[str], message: str) -> None:
    result = harness_cli([*overrides, f"hydra.run.dir={tmp_path}", "progress=false"])
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr[-2000:]


def test_missing_data_stops_with_one_line_naming_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TAU2_DATA_DIR"}
    import subprocess
    import sys

    def cli(extra_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "harness", *args, f"hydra.run.dir={tmp_path}", "progress=false"],
            capture_output=True,
            text=True,
            timeout=120,
            env={**env, **extra_env},
            cwd=CONF.parent,
        )

    unset = cli({}, "env=tau2_retail")
    assert unset.returncode == 2 and unset.stderr.strip().splitlines() == [
        "error: TAU2_DATA_DIR is not set: point it at τ²-bench's `data` folder (holding tau2/domains)"
    ]
    empty = tmp_path / "data"
    (empty / "tau2" / "domains" / "retail").mkdir(parents=True)
    missing = cli({"TAU2_DATA_DIR": str(empty)}, "env=tau2_retail")
    lines = missing.stderr.strip().splitlines()
    assert missing.returncode == 2 and len(lines) == 1 and "retail/db.json is missing" in lines[0]
    assert data_dir().name == "tau2"


def test_record_lines_are_valid_records(tmp_path: Path) -> None:
    _needs("telecom", "db.toml", "tasks_small.json")
    from harness.episode.record import RECORD_SCHEMA

    _run(tmp_path, [*TELECOM_SMALL, "env.tasks=[0]"])
    line = (tmp_path / CONVERSATIONS).read_text().splitlines()[0]
    record = RECORD_SCHEMA.validate_python(json.loads(line))
    assert record["env"] == "tau2_telecom" and record["split"] == "small"
