"""Run toy-domain jobs with W&B offline into temp dirs and compare what the offline runs hold with the job's files."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from omegaconf import DictConfig

from harness.job.app import build_job
from harness.job.runner import run_job
from harness.store import latest_by_key, read_conversations
from harness.tracking.conversation_rows import TRANSCRIPT_COLUMNS, transcript_row
from harness.tracking.wandb_files import OfflineRun, find_runs
from harness.tracking.wandb_logger import RUN_FILE, WANDB_SUBDIR
from tests.helpers import TOY
from tests.helpers import compose_config as compose_with

WANDB_ENV_DIRS = {
    "WANDB_DIR": "wandb-dir",
    "WANDB_DATA_DIR": "wandb-data",
    "WANDB_CACHE_DIR": "wandb-cache",
    "WANDB_CONFIG_DIR": "wandb-config",
}


def isolate_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every WANDB_* dir and HOME in temp dirs (restored after the test); returns the fake HOME."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("WANDB_BASE_URL", raising=False)
    for var, name in WANDB_ENV_DIRS.items():
        monkeypatch.setenv(var, str(tmp_path / name))
    monkeypatch.setenv("WANDB_DISABLE_WEAVE", "true")
    return home


def compose_config(overrides: list[str]) -> DictConfig:
    """The real config on the toy domain."""
    return compose_with([*TOY, *overrides])


def run_job_into(output_dir: Path, overrides: list[str]) -> dict[str, Any]:
    job = build_job(compose_config(overrides), output_dir)
    return asyncio.run(run_job(job))


def offline_segments(job_dir: Path) -> list[OfflineRun]:
    return find_runs(job_dir / WANDB_SUBDIR)


def md5_b64(path: Path) -> str:
    return base64.b64encode(hashlib.md5(path.read_bytes()).digest()).decode()


def table_of(run: OfflineRun, key: str = "transcripts") -> dict[str, Any]:
    """A table logged into the summary: plain JSON under the run's files/media/table."""
    path = run.run_dir / "files" / run.summary[key]["path"]
    return json.loads(path.read_text())


def assert_run_matches_job(job_dir: Path, group: str) -> OfflineRun:
    """The job's W&B run (all its resumed segments) holds exactly what the job's files hold."""
    segments = offline_segments(job_dir)
    assert segments, f"no offline run under {job_dir}"
    run_id = json.loads((job_dir / WANDB_SUBDIR / RUN_FILE).read_text())["id"]
    assert {segment.run_id for segment in segments} == {run_id}
    last = segments[-1]
    job = json.loads((job_dir / "job.json").read_text())["info"]
    summary = json.loads((job_dir / "summary.json").read_text())
    results = json.loads((job_dir / "results.json").read_text())
    records = latest_by_key(read_conversations(job_dir / "conversations.jsonl"))

    assert (last.group, last.job_type) == (group, job["env"])
    variant = job["variant"] if job["intensity"] is None else f"{job['variant']}-{job['intensity']}"
    assert last.name == f"{job['model']}/{job['env']}-{job['split']}/{variant}/seed0"
    assert {f"variant:{job['variant']}", f"model:{job['model']}", f"env:{job['env']}"} <= set(last.tags)
    assert ("plumbing-check" in last.tags) == job["plumbing_check"]
    for key in ("env", "variant", "user", "backend", "model", "agent", "seed", "wandb", "job", "run_facts"):
        assert key in last.config, key
    assert last.config["variant"]["name"] == job["variant"]
    assert last.config["job"] == job
    assert set(last.config["run_facts"]) >= {
        "harness_version",
        "git_commit",
        "tau_bench_commit",
        "vllm_version",
        "gpu",
    }

    history = sorted((row for segment in segments for row in segment.history), key=lambda row: row["_step"])
    assert [row["_step"] for row in history] == list(range(len(records)))
    by_key = {(row["conversation/task_id"], row["conversation/trial"]): row for row in history}
    assert by_key.keys() == records.keys()
    for key, record in records.items():
        row = by_key[key]
        assert row["conversation/reward"] == record["reward"]
        assert row["conversation/termination"] == record["termination"]
        assert row["conversation/turns"] == record["counts"]["user_turns"]
        assert row["conversation/tool_calls"] == record["counts"]["tool_calls"]
        assert row["conversation/tool_errors"] == record["counts"]["tool_errors"]
        assert row["conversation/latency_s"] == pytest.approx(record["duration_s"])
    assert history[-1]["running/conversations"] == len(records)
    assert history[-1]["running/average_reward"] == pytest.approx(summary["average_reward"])

    for key, value in summary.items():
        assert last.summary[key] == value, key
    assert (
        last.summary["throughput/conversations_per_s"] > 0
        or last.summary["throughput/segment_conversations"] == 0
    )

    table = table_of(last)
    selected = [records[(result["task_id"], result["trial"])] for result in results]
    assert table["columns"] == TRANSCRIPT_COLUMNS
    assert table["data"] == [transcript_row(record) for record in selected]
    messages_column = TRANSCRIPT_COLUMNS.index("messages_json")
    assert [json.loads(row[messages_column]) for row in table["data"]] == [r["messages"] for r in selected]

    (outputs,) = [a for a in last.artifacts if a["type"] == "job-outputs"]
    names = ("conversations.jsonl", "results.json", "summary.json", "job.json")
    assert outputs["entries"] == {name: md5_b64(job_dir / name) for name in names}
    assert last.exit_code == 0
    return last
