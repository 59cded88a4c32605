"""The W&B pieces that need no τ-bench: config block, secrets, transcripts, the run-file reader, sync."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ConfigError
from harness.tracking.conversation_rows import TOOL_OUTPUT_SHOWN, render_transcript
from harness.tracking.run_facts import looks_secret, mask_secrets, run_facts
from harness.tracking.wandb_files import FILE_HEADER, WandbFileError, read_run
from harness.tracking.wandb_logger import wandb_observers, wandb_settings
from tests.helpers import run_module
from tests.wandb_support import compose_config, isolate_wandb


@pytest.fixture
def fake_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolate_wandb(tmp_path, monkeypatch)


def test_secret_looking_keys_are_masked_and_others_kept() -> None:
    config = {
        "model": {"api_key": "sk-1", "max_tokens": 5, "hf_token": "hf_x", "clientSecret": "c"},
        "backend": {"WANDB_API_KEY": "k", "password": None, "keys": ["a"], "base_url": "http://x"},
        "list": [{"token": "t", "turns": 3}],
    }
    assert mask_secrets(config) == {
        "model": {"api_key": "***", "max_tokens": 5, "hf_token": "***", "clientSecret": "***"},
        "backend": {"WANDB_API_KEY": "***", "password": None, "keys": ["a"], "base_url": "http://x"},
        "list": [{"token": "***", "turns": 3}],
    }
    assert not looks_secret("max_tokens") and looks_secret("auth_token")


def test_run_facts_name_the_software() -> None:
    facts = run_facts()
    assert facts["harness_version"]
    assert facts["gpu"]  # "none" on a machine without a GPU
    assert set(facts) >= {"git_commit", "tau_bench_commit", "vllm_version"}


def test_transcript_reads_as_a_conversation() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "policy " * 10},
        {"role": "user", "content": "Hi, my order is late."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c0",
                    "type": "function",
                    "function": {"name": "get_order", "arguments": '{"id": "#1"}'},
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "c0",
            "name": "get_order",
            "content": "x" * (TOOL_OUTPUT_SHOWN + 50),
        },
        {"role": "assistant", "content": "It ships tomorrow."},
    ]
    text = render_transcript(messages).split("\n\n")
    assert text[0] == "[system prompt: 70 characters]"
    assert text[1] == "USER: Hi, my order is late."
    assert text[2] == 'AGENT -> get_order({"id": "#1"})'
    assert text[3].startswith("TOOL get_order: xxx") and text[3].endswith(
        f"[{TOOL_OUTPUT_SHOWN + 50} characters]"
    )
    assert text[4] == "AGENT: It ships tomorrow."


def test_config_block_defaults_offline_and_rejects_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    cfg = compose_config([])
    assert cfg.wandb.mode == "offline" and cfg.wandb.group is None
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert compose_config([]).wandb.mode == "disabled"
    assert compose_config(["wandb.mode=online"]).wandb.mode == "online"
    with pytest.raises(
        ConfigError, match=r"^config error at `wandb.mode`: .*'offline', 'online' or 'disabled'"
    ):
        wandb_settings({"mode": "cloud"})
    with pytest.raises(ConfigError, match=r"wandb\.projct"):
        wandb_settings({"projct": "x"})


def test_missing_wandb_package_gives_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # what Python does for an unimportable module
    info = {"env": "retail", "split": "test", "variant": "control", "model": "m", "backend": "oracle"}
    with caplog.at_level(logging.WARNING):
        assert wandb_observers({"mode": "offline"}, {}, tmp_path, info) == []
    assert [r.getMessage() for r in caplog.records] == [
        "this job is not logged to W&B: Weights & Biases is not installed (wandb.mode=offline needs it); "
        "install it with `pip install -e '.[wandb]'` (or `pip install 'wandb>=0.18'`), "
        "or set wandb.mode=disabled"
    ]
    assert wandb_observers({"mode": "disabled"}, {}, tmp_path, info) == []


def _write_offline_run(directory: Path, rows: int, big: str) -> Path:
    import wandb

    run = wandb.init(
        project="reader-check", group="g", job_type="jt", name="n", tags=["t1"], id="readercheck1",
        config={"big": big, "nested": {"a": 1, "b": [1, 2]}}, mode="offline", dir=str(directory),
        reinit="create_new", settings=wandb.Settings(console="off", silent=True, x_disable_stats=True),
    )  # fmt: skip
    for step in range(rows):
        run.log(
            {"m/value": step * 0.5, "m/text": f"row {step}", "m/big": big if step == 3 else ""}, step=step
        )
    run.summary["final"] = {"pass_hat_k": {"1": 0.25}, "none": None}
    run.finish()
    wandb.teardown()  # finish returns before the run file is flushed
    (path,) = directory.glob("wandb/offline-run-*/run-readercheck1.wandb")
    return path


def test_reader_round_trips_records_across_blocks(tmp_path: Path, fake_home: Path) -> None:
    big = "é" * 50_000  # one record spanning blocks: first, middle and last chunks
    path = _write_offline_run(tmp_path, rows=400, big=big)
    assert path.stat().st_size > 3 * 32 * 1024
    run = read_run(path.parent)
    assert (run.run_id, run.project, run.group, run.job_type, run.name, run.tags) == (
        "readercheck1", "reader-check", "g", "jt", "n", ["t1"],
    )  # fmt: skip
    assert run.config == {"big": big, "nested": {"a": 1, "b": [1, 2]}}
    assert [row["_step"] for row in run.history] == list(range(400))
    assert [row["m/value"] for row in run.history] == [step * 0.5 for step in range(400)]
    assert run.history[3]["m/big"] == big and run.history[7]["m/text"] == "row 7"
    assert run.summary["final"] == {"pass_hat_k": {"1": 0.25}, "none": None}
    assert run.exit_code == 0

    torn = tmp_path / "torn.wandb"
    torn.write_bytes(path.read_bytes()[: 150 * 1024 + 123])  # a writer killed mid-record
    partial = read_run(torn)
    assert partial.run_id == "readercheck1" and partial.config == run.config
    assert 0 < len(partial.history) < 400 and partial.history == run.history[: len(partial.history)]
    assert partial.exit_code is None

    junk = tmp_path / "junk.wandb"
    junk.write_bytes(b"not a run" + FILE_HEADER)
    with pytest.raises(WandbFileError, match="bad header"):
        read_run(junk)


def test_sync_lists_runs_and_where_they_go(tmp_path: Path, fake_home: Path) -> None:
    _write_offline_run(tmp_path / "sweep" / "job", rows=2, big="x")
    done = run_module("harness.sync_wandb", str(tmp_path / "sweep"), "--dry-run", timeout=120)
    assert done.returncode == 0, done.stderr
    assert "run-readercheck1.wandb" in done.stderr  # wandb's own listing
    assert (
        f"{tmp_path / 'sweep' / 'job'} would go to https://wandb.ai/<your entity>/reader-check/runs/readercheck1"
        in done.stdout
    )
    assert "group 'g': https://wandb.ai/<your entity>/reader-check/groups/g" in done.stdout

    (tmp_path / "empty").mkdir()
    empty = run_module("harness.sync_wandb", str(tmp_path / "empty"), timeout=60)
    assert empty.returncode == 1
    assert empty.stderr.strip().splitlines() == [
        f"error: no offline W&B runs under {tmp_path / 'empty'} (was the sweep run with wandb.mode=offline?)"
    ]
