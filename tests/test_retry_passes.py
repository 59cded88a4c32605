"""Retry passes inside a job against the local fake OpenAI server, and the job's honest final state."""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ExitCode
from harness.job.app import build_job
from harness.job.runner import run_job
from harness.store import CONVERSATIONS, SUMMARY
from tests.fake_openai_server import MODEL, FakeServer, Step, fake_openai_server
from tests.helpers import ROOT, TOY, compose_config, harness_cli, read_jsonl, run_module

pytest.importorskip("openai", reason="backend=openai needs `pip install -e '.[openai]'`")

KEY_ENV = "TAU_EMOTION_TEST_KEY"
EVERY_CONVERSATION = {(task, trial) for task in range(5) for trial in range(2)}
ANGER_PERSONA = "You feel clearly angry with the company"
"""In every request of the simulated user under `variant=anger` (its system prompt), in no other."""


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-test")


def openai_job(url: str, *extra: str, max_retries: int = 1) -> list[str]:
    """10 toy conversations (5 tasks × 2 trials) of 5 model calls each against the fake server."""
    return [
        *TOY,
        "backend=openai",
        "model=gpt-4o",
        f"model.base_url={url}",
        f"model.api_model={MODEL}",
        f"model.api_key_env={KEY_ENV}",
        f"backend.max_retries={max_retries}",
        "backend.backoff_s=0.01",
        "backend.backoff_max_s=0.02",
        "env.max_steps=2",
        "env.trials=2",
        *extra,
    ]


def run_in_process(out: Path, overrides: list[str]) -> dict[str, Any]:
    return asyncio.run(run_job(build_job(compose_config(overrides), out)))


def final_records(path: Path) -> dict[tuple[int, int], dict[str, Any]]:
    return {(r["task_id"], r["trial"]): r for r in read_jsonl(path)}


def scored_counts(path: Path) -> collections.Counter[tuple[int, int]]:
    return collections.Counter((r["task_id"], r["trial"]) for r in read_jsonl(path) if r["scored"])


def test_a_share_of_failing_calls_is_finished_by_retry_passes(tmp_path: Path) -> None:
    with fake_openai_server([Step(content="Hello.")], failure_rate=0.5, seed=3) as server:
        summary = run_in_process(
            tmp_path,
            openai_job(
                server.url,
                "retry.passes=15",
                "retry.cooldown_s=0.01",
                "retry.growth=1",
                "retry.down_passes=15",
                # a call fails with p = 0.5^3; the server's draws are fixed by seed and request, so with
                # seed 3 some conversations fail their first pass and all are finished in a later one
                max_retries=2,
            ),
        )
    lines = read_jsonl(tmp_path / CONVERSATIONS)
    assert server.failed_requests > 0 and any(r["termination"] == "infra_error" for r in lines)
    assert (summary["state"], summary["missing"], summary["scored"]) == ("complete", 0, 10)
    assert summary["missing_by_reason"] == {"infra_error": 0, "harness_error": 0, "not_run": 0}
    assert set(final_records(tmp_path / CONVERSATIONS)) == EVERY_CONVERSATION
    assert set(scored_counts(tmp_path / CONVERSATIONS).values()) == {1}  # none scored twice


def test_an_outage_is_ridden_out_with_growing_cooldowns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="harness.job.runner")
    with fake_openai_server([Step(content="Hello.")]) as server:
        overrides = openai_job(server.url, "retry.passes=6", "retry.cooldown_s=0.4", "retry.growth=2")
        job = build_job(compose_config(overrides), tmp_path)
        # down through the first pass and the first retry pass: 10 conversations × 2 attempts each
        server.go_down(requests=2 * 10 * 2)
        summary = asyncio.run(run_job(job))
    assert (summary["state"], summary["scored"], server.failed_requests) == ("complete", 10, 40)
    passes = [r.getMessage() for r in caplog.records if r.getMessage().startswith("retry pass")]
    assert passes == [
        "retry pass 1/6 in 0.4 s: 10 conversations ended in infra_error or harness_error",
        "retry pass 2/6 in 0.8 s: 10 conversations ended in infra_error or harness_error",
    ]
    assert set(scored_counts(tmp_path / CONVERSATIONS).values()) == {1}


def test_a_backend_down_for_good_leaves_the_job_incomplete_with_exit_3(tmp_path: Path) -> None:
    with fake_openai_server([Step(content="Hello.")]) as server:
        server.go_down()
        args = [
            *openai_job(server.url, "env.tasks=[0,1]", "env.trials=1"),
            f"hydra.run.dir={tmp_path}",
            "retry.passes=5",
            "retry.cooldown_s=0.05",
            "retry.down_passes=2",
        ]
        first = harness_cli(args)
        requests_made = server.failed_requests
        summary = json.loads((tmp_path / SUMMARY).read_text())
        accepted = harness_cli([*args, "retry.passes=0", "retry.accept_incomplete=true"])
    output = first.stdout + first.stderr
    assert first.returncode == ExitCode.INCOMPLETE, output[-2000:]
    # the first pass and two dead retry passes, 2 conversations, 2 attempts each; not 5 retry passes
    assert requests_made == 3 * 2 * 2
    assert output.count("looks down for good") == 1, output
    assert "incomplete: 2 conversations missing (2 infra_error)" in output
    assert (summary["state"], summary["missing"], summary["scored"]) == ("incomplete", 2, 0)
    assert summary["missing_by_reason"]["infra_error"] == 2

    assert accepted.returncode == ExitCode.OK, accepted.stderr[-2000:]
    summary = json.loads((tmp_path / SUMMARY).read_text())
    assert (summary["state"], summary["missing"]) == ("accepted_incomplete", 2)
    assert "accepted as final" in accepted.stdout + accepted.stderr

    pytest.importorskip("pandas", reason="the report needs `pip install -e '.[report]'`")
    from harness.report.load import load_sweep

    [job] = load_sweep(tmp_path).jobs.to_dict("records")
    assert (job["state"], job["detail"]) == (
        "accepted_incomplete",
        "2 conversations missing (2 infra_error) (accepted as final)",
    )


def test_an_incomplete_job_of_a_sweep_is_reported_and_the_others_finish(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    with fake_openai_server([Step(content="Hello.")], fail_text=ANGER_PERSONA) as server:
        args = openai_job(
            server.url, "env.tasks=[0,1]", "env.trials=1", "retry.passes=1", "retry.cooldown_s=0.01"
        )
        done = harness_cli(["-m", "variant=control,anger", f"hydra.sweep.dir={sweep_dir}", *args])
    output = done.stdout + done.stderr
    assert done.returncode == ExitCode.INCOMPLETE, output[-3000:]
    manifest = json.loads((sweep_dir / "manifest.json").read_text())
    assert {k: v for k, v in manifest["counts"].items() if v} == {"complete": 1, "incomplete": 1}
    jobs = {job["dir"].split("/")[2]: job for job in manifest["jobs"]}
    assert (jobs["control"]["state"], jobs["control"]["missing"]) == ("complete", 0)
    assert jobs["anger-medium"]["state"] == "incomplete"
    assert jobs["anger-medium"]["missing_by_reason"] == {"infra_error": 2, "harness_error": 0, "not_run": 0}
    assert "incomplete gpt-4o/toy-test/anger-medium/seed0  2 conversations missing (2 infra_error)" in output
    assert "finish the work (finished conversations are kept): python -m harness -m" in output

    status = run_module("harness.sweep", str(sweep_dir))
    assert status.returncode == ExitCode.INCOMPLETE
    assert "1 complete, 1 incomplete" in status.stdout and "variant=control,anger" in status.stdout

    pytest.importorskip("pandas", reason="the report needs `pip install -e '.[report]'`")
    from harness.report.load import load_sweep

    states = load_sweep(sweep_dir).jobs.set_index("variant")[["state", "detail", "expected"]]
    assert states.loc["control", "state"] == "complete"
    assert states.loc["anger"].tolist() == ["incomplete", "2 conversations missing (2 infra_error)", 2]


def _wait_for_lines(path: Path, count: int, process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= count:
            return
        assert process.poll() is None, "the job ended before it was killed"
        time.sleep(0.02)
    raise AssertionError(f"{path} never reached {count} lines")


def test_a_job_killed_during_a_retry_pass_loses_and_repeats_nothing(tmp_path: Path) -> None:
    log = tmp_path / CONVERSATIONS
    with fake_openai_server([Step(content="Hello.", delay_s=0.15)]) as server:
        args = [
            *openai_job(server.url, "concurrency=1"),
            f"hydra.run.dir={tmp_path}",
            "retry.passes=20",
            "retry.cooldown_s=0.2",
            "retry.growth=1",
            "retry.down_passes=20",
        ]
        server.go_down()
        job = subprocess.Popen([sys.executable, "-m", "harness", *args], cwd=ROOT, start_new_session=True)
        try:
            _wait_for_lines(log, 10, job)  # the first pass: every conversation an infra_error
            server.come_back()
            _wait_for_lines(log, 13, job)  # three conversations finished in a retry pass
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()
        finally:
            if job.poll() is None:
                os.killpg(job.pid, signal.SIGKILL)
                job.wait()
        before = read_jsonl(log)
        assert 13 <= len(before) < 20, "the job must be killed half-way through its retry pass"
        scored_before = {(r["task_id"], r["trial"]) for r in before if r["scored"]}
        rerun = harness_cli(args)
    assert rerun.returncode == ExitCode.OK, rerun.stderr[-2000:]
    after = read_jsonl(log)
    assert after[: len(before)] == before  # nothing finished was lost or rewritten
    assert not scored_before & {(r["task_id"], r["trial"]) for r in after[len(before) :]}
    assert scored_counts(log) == collections.Counter(dict.fromkeys(EVERY_CONVERSATION, 1))
    assert json.loads((tmp_path / SUMMARY).read_text())["state"] == "complete"


def test_the_wandb_run_shows_the_incomplete_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("wandb", reason="needs `pip install -e '.[wandb]'`")
    from tests.wandb_support import isolate_wandb, offline_segments

    isolate_wandb(tmp_path, monkeypatch)
    job_dir = tmp_path / "job"
    server: FakeServer
    with fake_openai_server([Step(content="Hello.")], fail_text=ANGER_PERSONA) as server:
        summary = run_in_process(
            job_dir, openai_job(server.url, "variant=anger", "env.tasks=[0]", "wandb.mode=offline")
        )
    assert (summary["state"], summary["missing"]) == ("incomplete", 2)
    run = offline_segments(job_dir)[-1]
    assert run.summary["state"] == "incomplete"
    assert run.summary["missing"] == 2 and run.summary["missing_by_reason"]["infra_error"] == 2


STOP_AFTER_ONE = "backend.user=[{text: 'I need help.'},{text: '###STOP###'}]"


def test_harness_errors_are_redone_in_retry_passes_and_counted_when_left(tmp_path: Path) -> None:
    summary = run_in_process(
        tmp_path,
        [
            *TOY,
            "backend=scripted",
            "backend.agent=[{fail: crash}]",
            STOP_AFTER_ONE,
            "env.tasks=[0,1]",
            "retry.passes=2",
            "retry.cooldown_s=0",
        ],
    )
    lines = read_jsonl(tmp_path / CONVERSATIONS)
    assert collections.Counter((r["task_id"], r["termination"]) for r in lines) == {
        (0, "harness_error"): 3,
        (1, "harness_error"): 3,
    }
    assert (summary["state"], summary["missing"]) == ("incomplete", 2)
    assert summary["missing_by_reason"] == {"infra_error": 0, "harness_error": 2, "not_run": 0}


def test_user_errors_are_counted_but_never_redone(tmp_path: Path) -> None:
    summary = run_in_process(
        tmp_path,
        [
            *TOY,
            "backend=scripted",
            "backend.agent=[{text: hi}]",
            "backend.user=[{text: ''}]",
            "env.tasks=[0]",
            "retry.passes=3",
            "retry.cooldown_s=0",
        ],
    )
    [record] = read_jsonl(tmp_path / CONVERSATIONS)
    assert record["termination"] == "user_error"
    assert (summary["state"], summary["missing"], summary["user_errors"]) == ("complete", 0, 1)


def test_the_progress_bar_shows_the_retry_pass(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.job.observers import ProgressBar

    bar = ProgressBar()
    bar.on_start({"env": "toy", "variant": "anger"}, total=10, already_done=0)
    bar.on_retry_pass(2, 5, conversations=3)
    bar.on_end({})
    assert "toy/anger retry 2/5" in capsys.readouterr().err


def test_no_retry_pass_starts_after_the_time_budget(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="harness.job.runner")
    summary = run_in_process(
        tmp_path,
        [
            *TOY,
            "backend=scripted",
            "backend.agent=[{fail: unavailable}]",
            STOP_AFTER_ONE,
            "env.tasks=[0]",
            "retry.passes=5",
            "retry.cooldown_s=0.2",
            "retry.growth=2",
            "retry.max_total_s=0.5",
        ],
    )
    # pass 1 after 0.2 s; pass 2 would start 0.2 + 0.4 s after the first pass ended
    assert len(read_jsonl(tmp_path / CONVERSATIONS)) == 2
    assert (summary["state"], summary["missing"]) == ("incomplete", 1)
    assert "retry.max_total_s=0.5 spent: 1 conversations left unfinished" in caplog.messages
