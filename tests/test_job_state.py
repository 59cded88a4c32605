"""One state per job directory: the report, the manifest and the runner read the same `job_state()`."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from harness.__main__ import _write_error
from harness.cluster.manifest import refresh_manifest
from harness.job.app import build_job
from harness.job.runner import run_job
from harness.report.load import load_sweep
from harness.store import JobDir, job_state
from tests.helpers import TOY, compose_config, run_toy_job

TRIALS = ["env.tasks=[0,1,2]", "env.trials=2"]
REL = "oracle/toy-test/control/seed0"


def states(sweep: Path) -> tuple[str, str, str]:
    """(store, report, manifest) for the one job of `sweep`."""
    [entry] = refresh_manifest(sweep)["jobs"]
    [report] = load_sweep(sweep).jobs["state"]
    return job_state(sweep / REL).state, str(report), entry["state"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    sweep = tmp_path_factory.mktemp("state") / "sweep"
    summary = run_toy_job(sweep / REL, TRIALS)
    return sweep, summary


def copy_of(finished: tuple[Path, dict[str, Any]], tmp_path: Path) -> Path:
    sweep = tmp_path / "sweep"
    shutil.copytree(finished[0], sweep)
    return sweep


def test_complete_everywhere_and_as_the_runner_wrote_it(finished: tuple[Path, dict[str, Any]]) -> None:
    sweep, summary = finished
    assert summary["state"] == "complete"
    assert states(sweep) == ("complete", "complete", "complete")


def test_incomplete_everywhere_and_the_runner_redoes_exactly_what_is_missing(
    finished: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    sweep = copy_of(finished, tmp_path)
    log = JobDir(sweep / REL).conversations
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:-2]))  # two conversations never finished
    assert states(sweep) == ("incomplete", "incomplete", "incomplete")
    status = job_state(sweep / REL)
    assert status.progress is not None and len(status.progress.to_redo) == 2
    rerun = run_toy_job(sweep / REL, TRIALS)
    assert len(log.read_bytes().splitlines()) == len(lines)  # the two, nothing else
    assert rerun["state"] == "complete" and states(sweep) == ("complete", "complete", "complete")


def test_running_everywhere_while_the_runner_holds_the_job(
    finished: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    sweep = copy_of(finished, tmp_path)
    JobDir(sweep / REL).conversations.write_bytes(b"")
    seen: list[tuple[str, str, str]] = []

    class Watch:
        def on_start(self, info: dict[str, Any], total: int, already_done: int) -> None:
            seen.append(states(sweep))

        def on_conversation(self, record: dict[str, Any]) -> None:
            seen.append(states(sweep))

        def on_end(self, summary: dict[str, Any]) -> None:
            pass

        def on_retry_pass(self, number: int, passes: int, conversations: int) -> None:
            pass

        def on_abort(self, error: BaseException) -> None:
            pass

    job = build_job(compose_config([*TOY, *TRIALS]), sweep / REL)
    job.observers = [*job.observers, Watch()]
    summary = asyncio.run(run_job(job))
    assert len(seen) == 7 and set(seen) == {("running", "running", "running")}
    assert summary["state"] == "complete" and states(sweep) == ("complete", "complete", "complete")


def test_failed_everywhere_until_a_rerun_succeeds(
    finished: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    sweep = copy_of(finished, tmp_path)
    _write_error(sweep / REL, "RuntimeError: the engine died\n\ntraceback\n")  # as `python -m harness` does
    assert states(sweep) == ("failed", "failed", "failed")
    assert job_state(sweep / REL).detail == "RuntimeError: the engine died"


@pytest.mark.parametrize("damage", ["line", "job_file"])
def test_damaged_everywhere(finished: tuple[Path, dict[str, Any]], tmp_path: Path, damage: str) -> None:
    sweep = copy_of(finished, tmp_path)
    directory = JobDir(sweep / REL)
    if damage == "line":
        directory.conversations.write_bytes(b"{not json\n" + directory.conversations.read_bytes())
    else:
        directory.job_file.write_bytes(b"[]")
    assert states(sweep) == ("damaged", "damaged", "damaged")
    if damage == "line":  # the runner sets the line aside and finds the rest finished
        assert run_toy_job(sweep / REL, TRIALS)["state"] == "complete"
        assert states(sweep) == ("complete", "complete", "complete")
