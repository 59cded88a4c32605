"""Damaged job files: set aside with their line numbers, reported in one line, redone, never lost."""

from __future__ import annotations

import base64
import collections
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.cluster.manifest import record_job_end, record_job_start, refresh_manifest
from harness.episode.record import RECORD_SCHEMA
from harness.errors import ExitCode, HarnessError
from harness.report.load import load_sweep
from harness.store import (
    CONVERSATIONS,
    JOB_FILE,
    SUMMARY,
    ConversationLog,
    job_progress,
    read_jsonl_records,
)
from harness.tracking.wandb_logger import RUN_FILE, WANDB_SUBDIR
from tests.helpers import TOY, harness_cli, run_module, run_toy_job
from tests.wandb_support import isolate_wandb

TRIALS = ["env.trials=2"]  # 5 toy tasks x 2 trials: 10 conversations
Damage = Callable[[list[bytes]], tuple[list[bytes], dict[int, str]]]
"""Damages the file's lines; returns the new lines and {damaged line number: reason words}."""


def _record(line: bytes) -> dict[str, object]:
    value: dict[str, object] = json.loads(line)
    return value


def _edited(line: bytes, **changes: object) -> bytes:
    record = _record(line)
    for key, value in changes.items():
        if value is ...:
            del record[key]
        else:
            record[key] = value
    return json.dumps(record).encode() + b"\n"


def nul_block(lines: list[bytes]) -> tuple[list[bytes], dict[int, str]]:
    """A crashed node's zeroed page over the end of line 3, its newline and the start of line 4."""
    data = bytearray(b"".join(lines))
    start = sum(map(len, lines[:2])) + 40
    data[start : start + len(lines[2])] = bytes(len(lines[2]))
    return bytes(data).splitlines(keepends=True), {3: "NUL bytes"}


def not_utf8(lines: list[bytes]) -> tuple[list[bytes], dict[int, str]]:
    return [lines[0], b"\xff\xfe" + lines[1][2:], *lines[2:]], {2: "not UTF-8"}


def not_an_object(lines: list[bytes]) -> tuple[list[bytes], dict[int, str]]:
    return [*lines[:2], b"[]\n", *lines[2:]], {3: "a JSON list, not an object"}


def wrong_types(lines: list[bytes]) -> tuple[list[bytes], dict[int, str]]:
    damaged = [
        _edited(lines[1], reward="1.0"),
        _edited(lines[2], reward=None),
        _edited(lines[3], counts=...),
        _edited(lines[4], termination="exploded"),
    ]
    return [lines[0], *damaged, *lines[5:]], {
        2: "reward: Input should be a valid number",
        3: "reward: Input should be a valid number",
        4: "counts: Field required",
        5: "termination: Input should be",
    }


def torn_middle(lines: list[bytes]) -> tuple[list[bytes], dict[int, str]]:
    """Line 3 cut short and joined to the torn end of line 4, as two interrupted writes leave them."""
    return [*lines[:2], lines[2][:40] + lines[3][30:], *lines[4:]], {3: "not JSON"}


@pytest.mark.parametrize("damage", [nul_block, not_utf8, not_an_object, wrong_types, torn_middle])
def test_damaged_lines_are_set_aside_and_their_conversations_redone(
    tmp_path: Path, damage: Damage, caplog: pytest.LogCaptureFixture
) -> None:
    job = tmp_path / "job"
    run_toy_job(job, TRIALS)
    log = job / CONVERSATIONS
    original = log.read_bytes().splitlines(keepends=True)
    lines, expected = damage(original)
    log.write_bytes(b"".join(lines))
    kept = [line for number, line in enumerate(lines, 1) if number not in expected]

    before = load_sweep(tmp_path).jobs.iloc[0]
    assert (before["state"], before["damaged_lines"]) == ("damaged", len(expected))
    assert f"{len(expected)} damaged line" in before["detail"]

    caplog.set_level(logging.WARNING, logger="harness.store.jsonl")
    summary = run_toy_job(job, TRIALS)

    warnings = [r.getMessage() for r in caplog.records if r.name == "harness.store.jsonl"]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert warnings[0].startswith(f"{log}: {len(expected)} damaged line")
    assert f"moved to {log}.quarantine" in warnings[0]
    for number, reason in expected.items():
        assert f"{number}" in warnings[0] and reason in warnings[0]

    after = log.read_bytes().splitlines(keepends=True)
    assert after[: len(kept)] == kept  # good lines kept as they were, in order
    keys = collections.Counter((r["task_id"], r["trial"]) for r in map(_record, after))
    assert len(keys) == 10 and set(keys.values()) == {1}
    assert summary["conversations"] == 10 and summary["missing"] == 0 and summary["average_reward"] == 1.0

    entries = [json.loads(line) for line in (job / f"{CONVERSATIONS}.quarantine").read_bytes().splitlines()]
    assert [e["line"] for e in entries] == list(expected)
    for entry in entries:  # nothing lost: each damaged line's bytes, exactly
        raw = entry["text"].encode() if "text" in entry else base64.b64decode(entry["base64"])
        assert raw + b"\n" == lines[entry["line"] - 1]
        assert expected[entry["line"]] in entry["reason"]

    report = load_sweep(tmp_path).jobs.iloc[0]
    assert (report["state"], report["damaged_lines"], report["set_aside_lines"]) == (
        "complete",
        0,
        len(expected),
    )


def test_an_empty_file_is_an_incomplete_job_and_a_rerun_finishes_it(tmp_path: Path) -> None:
    job = tmp_path / "job"
    run_toy_job(job, TRIALS)
    (job / CONVERSATIONS).write_bytes(b"")  # summary.json still says all 10 finished
    progress = job_progress(job)
    assert not progress.complete and progress.to_redo == {(t, r) for t in range(5) for r in range(2)}
    state = load_sweep(tmp_path).jobs.iloc[0]
    assert (state["state"], state["detail"]) == ("incomplete", "10 of 10 conversations not finished")
    assert run_toy_job(job, TRIALS)["conversations"] == 10
    assert load_sweep(tmp_path).jobs.iloc[0]["state"] == "complete"


def test_a_reader_never_rewrites_a_file_another_process_appends_to(tmp_path: Path) -> None:
    run_toy_job(tmp_path)
    log = tmp_path / CONVERSATIONS
    damaged = log.read_bytes() + b"[]\n" + b'{"task_id": 9, "tri'
    log.write_bytes(damaged)
    read = read_jsonl_records(log, RECORD_SCHEMA)
    assert (len(read.records), [b.number for b in read.bad], read.torn_tail) == (
        5,
        [6],
        b'{"task_id": 9, "tri',
    )
    assert log.read_bytes() == damaged and not (tmp_path / f"{CONVERSATIONS}.quarantine").exists()


def test_a_second_writer_of_the_same_job_is_refused(tmp_path: Path) -> None:
    with ConversationLog(tmp_path), pytest.raises(HarnessError, match="another process is writing"):
        ConversationLog(tmp_path)
    with ConversationLog(tmp_path):  # the lock goes with the first writer
        pass


@pytest.mark.parametrize("content", [b'{"fingerprint": {', b"[]", b"\x00" * 64, b'{"info": {}}'])
def test_a_damaged_job_file_is_one_line_naming_it_and_the_fix(tmp_path: Path, content: bytes) -> None:
    job = tmp_path / "job"
    args = [*TOY, *TRIALS, f"hydra.run.dir={job}"]
    assert harness_cli(args).returncode == 0
    finished = (job / CONVERSATIONS).read_bytes()
    (job / JOB_FILE).write_bytes(content)

    result = harness_cli(args)
    path = job / JOB_FILE
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {path} is damaged (") and f"mv {path} {path}.damaged" in line
    state = load_sweep(tmp_path).jobs.iloc[0]
    assert state["state"] == "damaged" and str(path) in state["detail"]
    assert load_sweep(tmp_path).conversations.empty  # not paired with a wrong seed or model

    shutil.move(path, f"{path}.damaged")  # the fix the line names
    assert harness_cli(args).returncode == 0
    assert (job / CONVERSATIONS).read_bytes() == finished  # nothing redone, nothing lost
    assert json.loads((job / SUMMARY).read_text())["conversations"] == 10


def test_the_manifest_reads_completeness_from_the_records(tmp_path: Path) -> None:
    job = tmp_path / "toy" / "job"
    job.mkdir(parents=True)
    record_job_start(job)
    run_toy_job(job, TRIALS)
    record_job_end(job, succeeded=True)
    assert refresh_manifest(tmp_path)["jobs"][0]["state"] == "complete"

    log = job / CONVERSATIONS
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(torn_middle(lines)[0]))
    [entry] = refresh_manifest(tmp_path)["jobs"]
    assert (entry["state"], entry["conversations_on_disk"]) == ("damaged", 8)
    assert entry["error"].startswith("2 of 10 conversations not finished; 1 damaged line")

    (job / JOB_FILE).write_text("[]")
    [entry] = refresh_manifest(tmp_path)["jobs"]
    assert entry["state"] == "damaged" and entry["error"].startswith(f"{job / JOB_FILE} is damaged")

    (job / JOB_FILE).unlink()
    run_toy_job(job, TRIALS)
    assert refresh_manifest(tmp_path)["jobs"][0]["state"] == "complete"


def test_a_damaged_wandb_run_file_starts_a_new_run_and_the_job_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    isolate_wandb(tmp_path, monkeypatch)
    job = tmp_path / "job"
    run_toy_job(job, ["wandb.mode=offline"])
    run_file = job / WANDB_SUBDIR / RUN_FILE
    first = json.loads(run_file.read_text())["id"]
    run_file.write_bytes(bytes(32))
    caplog.set_level(logging.WARNING)
    assert run_toy_job(job, ["wandb.mode=offline"])["conversations"] == 5
    assert any(f"W&B: {run_file} is damaged" in r.getMessage() for r in caplog.records)
    assert json.loads(run_file.read_text())["id"] != first


def test_a_damaged_job_in_a_sweep_is_incomplete_until_the_sweep_is_rerun(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    command = ["-m", *TOY, *TRIALS, "variant=control,anger", f"hydra.sweep.dir={sweep}"]
    assert harness_cli(command).returncode == 0
    damaged = sweep / "oracle" / "toy-test" / "anger-medium" / "seed0"
    log = damaged / CONVERSATIONS
    log.write_bytes(b"".join(nul_block(log.read_bytes().splitlines(keepends=True))[0]))

    status = run_module("harness.sweep", str(sweep))
    assert status.returncode == ExitCode.INCOMPLETE
    assert "2 jobs: 1 complete, 1 damaged" in status.stdout
    jobs = load_sweep(sweep).jobs.set_index("job")
    assert jobs.loc["oracle/toy-test/anger-medium/seed0", "state"] == "damaged"
    assert jobs.loc["oracle/toy-test/control/seed0", "state"] == "complete"

    rerun = harness_cli(command)
    assert rerun.returncode == 0, rerun.stderr
    assert refresh_manifest(sweep)["counts"]["complete"] == 2
    assert set(load_sweep(sweep).jobs["state"]) == {"complete"}
    assert (damaged / f"{CONVERSATIONS}.quarantine").exists()
