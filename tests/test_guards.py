"""A credential in the config, or a name that leaves outputs/, is refused in one line before anything is written."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.backends.presets import ModelPreset
from harness.errors import ConfigError, ExitCode, validated
from harness.job.guards import (
    check_command_line,
    is_credential_name,
    is_variable_name,
    looks_like_key,
    mask_argv,
    mask_credentials,
)
from tests.helpers import TOY, harness_cli, run_toy_job
from tests.wandb_support import isolate_wandb

KEY = "sk-proj-" + "a1B2c3D4e5F6g7H8i9J0" * 2
HF = "hf_" + "x" * 34


def _files(root: Path) -> set[Path]:
    return set(root.rglob("*"))


def _refused(tmp_path: Path, args: list[str]) -> str:
    """Run the CLI in an empty directory; assert it exits CONFIG with one line and writes nothing."""
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    before = _files(tmp_path)
    flags = [arg for arg in args if arg == "-m"]
    result = harness_cli([*flags, *TOY, *(arg for arg in args if arg != "-m")], cwd=work)
    assert result.returncode == ExitCode.CONFIG, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ")
    assert _files(tmp_path) == before  # no outputs/, no .hydra/, no job.json, no manifest
    for secret in (KEY, HF, "hunter2"):
        assert secret not in result.stdout + result.stderr
    return line


@pytest.mark.parametrize(
    ("args", "key"),
    [
        ([f"+model.api_key={KEY}"], "model.api_key"),
        ([f"model.api_key={KEY}"], "model.api_key"),  # Hydra's own error would echo the value
        (["+backend.password=hunter2"], "backend.password"),
        ([f"+user.backend.model.hf_token={HF}"], "user.backend.model.hf_token"),
        (["-m", f"+model.api_key=x,{KEY}"], "model.api_key"),
        ([f"+model.extra_body.headers.Authorization=Bearer {KEY}"], "model.extra_body.headers.Authorization"),
    ],
)
def test_a_credential_on_the_command_line_is_refused(tmp_path: Path, args: list[str], key: str) -> None:
    line = _refused(tmp_path, args)
    assert f"`{key}` looks like a credential" in line
    section = "user.backend.model" if key.startswith("user.") else "model"
    assert f"`{section}.api_key_env=<VARIABLE>`" in line


def test_a_credential_in_a_config_file_is_refused_before_hydra_writes(tmp_path: Path) -> None:
    local = tmp_path / "conf" / "local"
    local.mkdir(parents=True)
    (local / "default.yaml").write_text("# @package _global_\nmodel:\n  api_key: hunter2\n")
    line = _refused(tmp_path, ["--config-dir", str(tmp_path / "conf")])
    assert line.startswith("error: `model.api_key` looks like a credential")


def test_an_api_key_env_holding_the_key_is_refused_without_showing_it(tmp_path: Path) -> None:
    line = _refused(tmp_path, ["model=gpt-4o", "model.api_key_env=hunter2-not-a-variable"])
    assert "`model.api_key_env` must name an environment variable" in line


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (["name=../../escaped"], "name"),
        (["model.name=../.."], "model.name"),
        (["-m", "name=fine,../escaped"], "name"),
        (["variant.name=a/b"], "variant.name"),
        (["env.name=.."], "env.name"),
        (["env.split=x\\y"], "env.split"),
    ],
)
def test_a_name_that_leaves_outputs_is_refused(tmp_path: Path, args: list[str], key: str) -> None:
    line = _refused(tmp_path, args)
    assert line.startswith(f"error: `{key}` is used as a directory name under outputs/")


def test_a_bad_name_is_refused_in_code_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"`model\.name` is used as a directory name"):
        run_toy_job(tmp_path, ["model.name=../x"])
    assert not (tmp_path / "job.json").exists()


def test_credential_names_and_shapes() -> None:
    assert is_variable_name("OPENAI_API_KEY") and is_variable_name("my_key")
    assert not is_variable_name("hunter2-not-a-variable") and not is_variable_name("aB3" * 10)
    assert all(map(is_credential_name, ["api_key", "apiKey", "HF_TOKEN", "client_secret", "password", "key"]))
    assert not any(
        map(is_credential_name, ["api_key_env", "max_tokens", "token_limit_field", "keys", "tokenizer"])
    )
    assert looks_like_key(KEY) and looks_like_key(f"Bearer {HF}") and looks_like_key("AKIA" + "A" * 16)
    assert not looks_like_key("gpt-4o-mini") and not looks_like_key("sk-short") and not looks_like_key(5)


def test_masks_hide_credentials_and_keep_the_rest() -> None:
    config = {"model": {"api_key_env": "OPENAI_API_KEY", "token_limit_field": "max_tokens", "api_key": "x"}}
    config["model"]["extra_body"] = {"note": f"use {KEY} here"}  # type: ignore[index]
    assert mask_credentials(config) == {
        "model": {
            "api_key_env": "OPENAI_API_KEY",
            "token_limit_field": "max_tokens",
            "api_key": "***",
            "extra_body": {"note": "use *** here"},
        }
    }
    assert mask_argv(["-m", "+model.api_key=abc", f"x={KEY}", "seed=1"]) == [
        "-m",
        "+model.api_key=***",
        "x=***",
        "seed=1",
    ]


def test_config_errors_never_echo_a_value_that_might_be_a_key() -> None:
    with pytest.raises(ConfigError) as refused:
        validated(ModelPreset, {"name": "m", "api_key_env": 5}, prefix="model.")
    assert "api_key_env" in str(refused.value) and "5" not in str(refused.value)
    with pytest.raises(ConfigError) as shown:
        validated(ModelPreset, {"name": "m", "gpus": "many"}, prefix="model.")
    assert "(got 'many')" in str(shown.value)
    with pytest.raises(ConfigError):
        check_command_line(["+model.secret=y"])
    check_command_line(["model.api_key_env=OPENAI_API_KEY", "name=pilot.v2", "hydra.run.dir=/tmp/x"])


def test_the_wandb_run_records_a_masked_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_wandb(tmp_path, monkeypatch)
    monkeypatch.setattr(sys, "argv", ["harness", f"+note={KEY}", "+model.api_key=hunter2", "env.trials=1"])
    run_toy_job(tmp_path / "job", ["wandb.mode=offline"])
    written = [path for path in _files(tmp_path / "job") if path.is_file()]
    assert any(b"env.trials=1" in path.read_bytes() for path in written)  # the command line is recorded
    for path in written:
        data = path.read_bytes()
        assert KEY.encode() not in data and b"hunter2" not in data, path
