"""Jobs logged to W&B offline, read back from the run files and compared with the job's own files."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.analysis.anatomy import CATEGORIES
from harness.tracking.wandb_logger import WANDB_SUBDIR
from tests.helpers import ROOT, TOY, run_module
from tests.wandb_support import (
    assert_run_matches_job,
    isolate_wandb,
    offline_segments,
    run_job_into,
    table_of,
)


@pytest.fixture
def fake_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolate_wandb(tmp_path, monkeypatch)


def test_offline_run_holds_the_job(tmp_path: Path, fake_home: Path) -> None:
    job_dir = tmp_path / "job"
    run_job_into(
        job_dir,
        [
            "env.tasks=[0,1,2,3]",
            "env.trials=2",
            "variant=anger",
            "name=sweep-a",
            "wandb.mode=offline",
        ],
    )
    run = assert_run_matches_job(job_dir, group="sweep-a")
    assert run.config["agent"]["sampling"]["max_tokens"] == 1024
    assert len(run.history) == 8
    assert run.summary["pass_hat_k"].keys() == {"1", "2"}
    assert run.summary["terminations"]["transfer_to_human"] == 2
    assert sum(row["conversation/transfer_to_human"] for row in run.history) == 2
    assert run.summary["anatomy/scored"] == 8
    assert {run.summary[f"anatomy/{c}"] for c in CATEGORIES} == {0}
    assert [(row[0], row[1]) for row in table_of(run)["data"]] == [(t, k) for k in (0, 1) for t in range(4)]
    assert list(fake_home.iterdir()) == [], "wandb wrote into the home directory"


def test_requeued_job_resumes_the_same_run(tmp_path: Path, fake_home: Path) -> None:
    job_dir = tmp_path / "job"
    # First attempt logged nothing to W&B (as if killed before it could), then two requeues.
    run_job_into(job_dir, ["env.tasks=[0]", "name=s", "wandb.mode=disabled"])
    assert not (job_dir / WANDB_SUBDIR).exists()
    run_job_into(job_dir, ["env.tasks=[0,1]", "name=s", "wandb.mode=offline"])
    run_job_into(job_dir, ["env.tasks=[0,1,2]", "name=s", "wandb.mode=offline"])

    segments = offline_segments(job_dir)
    assert len(segments) == 2
    assert len({segment.run_id for segment in segments}) == 1
    assert [[row["conversation/task_id"] for row in s.history] for s in segments] == [[0, 1], [2]]
    assert [[row["_step"] for row in s.history] for s in segments] == [[0, 1], [2]]
    assert segments[1].history[0]["running/conversations"] == 3
    assert_run_matches_job(job_dir, group="s")

    run_job_into(job_dir, ["env.tasks=[0,1,2]", "name=s", "wandb.mode=offline"])  # nothing left to run
    segments = offline_segments(job_dir)
    assert len(segments) == 3 and segments[2].history == []
    assert len(table_of(segments[2])["data"]) == 3
    assert_run_matches_job(job_dir, group="s")


def test_init_failure_keeps_local_outputs(
    tmp_path: Path, fake_home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    job_dir = tmp_path / "job"
    with caplog.at_level(logging.WARNING):
        summary = run_job_into(
            job_dir, ["env.tasks=[0,1]", "name=s", "wandb.mode=online", "wandb.init_timeout_s=3"]
        )
    assert summary["conversations"] == 2 and summary["missing"] == 0
    assert json.loads((job_dir / "summary.json").read_text()) == summary
    assert len(json.loads((job_dir / "results.json").read_text())) == 2
    assert len((job_dir / "conversations.jsonl").read_text().splitlines()) == 2
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("harness.tracking")]
    assert len(lines) == 1
    assert lines[0].startswith("W&B: could not log this job (run init failed:")
    assert str(job_dir) in lines[0]


def test_disabled_mode_leaves_no_wandb_files(tmp_path: Path, fake_home: Path) -> None:
    run_job_into(tmp_path / "job", ["env.tasks=[0]", "wandb.mode=disabled"])
    assert not (tmp_path / "job" / WANDB_SUBDIR).exists()
    assert not any((tmp_path / "wandb-dir").glob("**/*.wandb"))


@pytest.mark.slow
def test_sweep_is_one_group_of_runs(tmp_path: Path, fake_home: Path) -> None:
    sweep = tmp_path / "sweep"
    command = [
        sys.executable, "-m", "harness", "-m", *TOY, "variant=control,frustration,anxiety,anger,confusion", "env.tasks=[0,1]",
        "name=groupcheck", "progress=false", "wandb.mode=offline", f"hydra.sweep.dir={sweep}",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    job_dirs = sorted(path.parent for path in sweep.glob("**/summary.json"))
    assert len(job_dirs) == 5
    runs = [assert_run_matches_job(job_dir, group="groupcheck") for job_dir in job_dirs]
    assert len({run.run_id for run in runs}) == 5
    assert list(fake_home.iterdir()) == []

    listed = run_module("harness.sync_wandb", str(sweep), "--dry-run", timeout=120)
    assert listed.returncode == 0, listed.stderr
    for run in runs:
        assert f"/tau-emotion/runs/{run.run_id}" in listed.stdout
    assert "group 'groupcheck'" in listed.stdout


def test_rows_an_attempt_never_flushed_are_logged_again(tmp_path: Path, fake_home: Path) -> None:
    job_dir = tmp_path / "job"
    run_job_into(job_dir, ["env.tasks=[0,1]", "name=s", "wandb.mode=offline"])
    (first,) = offline_segments(job_dir)
    shutil.rmtree(first.run_dir)  # as if the attempt was killed before wandb wrote anything
    run_job_into(job_dir, ["env.tasks=[0,1]", "name=s", "wandb.mode=offline"])
    (second,) = offline_segments(job_dir)
    assert second.run_id == first.run_id
    assert sorted(row["conversation/task_id"] for row in second.history) == [0, 1]
    assert_run_matches_job(job_dir, group="s")
