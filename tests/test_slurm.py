"""Sweeps through a real SLURM scheduler (`bash .ci/slurm-up.sh` starts one on localhost).

Each test runs `python -m harness -m ... hydra/launcher=slurm` as a user would, with the oracle
backend on the toy domain, and reads what the jobs left on disk.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import ExitCode
from tests.helpers import TOY, run_module

ROOT = Path(__file__).resolve().parents[1]
SWEEP_TIMEOUT_S = 240


def _slurm_idle() -> str | None:
    """None when a SLURM node is idle here, else why the tests cannot run."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "no SLURM here (`sinfo`/`sbatch` missing): start one with `bash .ci/slurm-up.sh`"
    try:
        states = subprocess.run(
            ["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=10
        ).stdout
    except (subprocess.SubprocessError, OSError) as error:
        return f"`sinfo` failed ({error}): start SLURM with `bash .ci/slurm-up.sh`"
    if "idle" not in states and "mix" not in states:
        return f"no idle SLURM node (sinfo says {states.split() or 'nothing'}): `bash .ci/slurm-up.sh`"
    return None


_why_not = _slurm_idle()
pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(_why_not is not None, reason=_why_not or ""),
]

LAUNCHER = [
    "hydra/launcher=slurm",
    "hydra.launcher.partition=debug",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=1",
    "hydra.launcher.timeout_min=10",
]
NO_GPU = "hydra.launcher.gpus_per_node=0"  # the oracle needs none; jobs then share the node's 2 CPUs
# One job of 10 conversations (5 toy tasks × 2 trials), one at a time, each a few seconds long.
PACED = [
    "backend._target_=tests.sweep_backends.PacedOracleBackend",
    "backend.delay_s=0.4",
    "concurrency=1",
    "env.trials=2",
]
EVERY_CONVERSATION_ONCE = Counter({(task, trial): 1 for task in range(5) for trial in range(2)})
VARIANTS = ("control", "frustration", "anxiety", "anger", "confusion")
LABEL = {variant: variant if variant == "control" else f"{variant}-medium" for variant in VARIANTS}
"""Each variant's job directory: an emotion's carries its intensity."""


def sweep_command(sweep_dir: Path, *overrides: str) -> list[str]:
    return [
        "timeout",
        str(SWEEP_TIMEOUT_S),
        sys.executable,
        "-m",
        "harness",
        "-m",
        *LAUNCHER,
        f"hydra.sweep.dir={sweep_dir}",
        *TOY,
        *overrides,
    ]


def start_sweep(sweep_dir: Path, *overrides: str, output: int = subprocess.PIPE) -> subprocess.Popen[str]:
    """Start a sweep in a session of its own, stdout and stderr together; end it with `stop_sweep`."""
    return subprocess.Popen(
        sweep_command(sweep_dir, *overrides),
        cwd=ROOT,
        stdout=output,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def stop_sweep(sweep: subprocess.Popen[str]) -> None:
    """Kill a sweep started by `start_sweep`: `timeout` and the harness under it."""
    if sweep.poll() is None:
        os.killpg(sweep.pid, signal.SIGKILL)
        sweep.wait()


def run_sweep(sweep_dir: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        sweep_command(sweep_dir, *overrides),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SWEEP_TIMEOUT_S + 30,
    )


def keys_on_disk(job_dir: Path) -> Counter[tuple[int, int]]:
    lines = (job_dir / "conversations.jsonl").read_bytes().splitlines(keepends=True)
    assert all(line.endswith(b"\n") for line in lines), "a half-written line was left behind"
    return Counter((record["task_id"], record["trial"]) for record in map(json.loads, lines))


def manifest(sweep_dir: Path) -> dict:
    return json.loads((sweep_dir / "manifest.json").read_text())


def only_nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {state: count for state, count in counts.items() if count}


def wait_for(condition, what: str, timeout_s: float = 120.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def count_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def slurm_job_state(job_id: str) -> str:
    out = subprocess.run(["squeue", "-h", "-r", "-j", job_id, "-o", "%T"], capture_output=True, text=True)
    return out.stdout.strip()


def test_every_variant_runs_as_its_own_slurm_job(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "variants"
    done = run_sweep(sweep_dir, f"variant={','.join(VARIANTS)}", "env.tasks=[0,1]", NO_GPU)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    listed = manifest(sweep_dir)
    assert only_nonzero(listed["counts"]) == {"complete": 5}
    slurm_ids = set()
    for variant in VARIANTS:
        job_dir = sweep_dir / "oracle" / "toy-test" / LABEL[variant] / "seed0"
        assert keys_on_disk(job_dir) == Counter({(0, 0): 1, (1, 0): 1})
        results = json.loads((job_dir / "results.json").read_text())
        assert [(r["task_id"], r["reward"]) for r in results] == [(0, 1.0), (1, 1.0)]
        summary = json.loads((job_dir / "summary.json").read_text())
        assert (summary["variant"], summary["average_reward"], summary["missing"]) == (variant, 1.0, 0)
        entry = next(job for job in listed["jobs"] if job["dir"] == f"oracle/toy-test/{LABEL[variant]}/seed0")
        assert entry["state"] == "complete" and f"variant={variant}" in entry["overrides"]
        slurm_ids.add(entry["slurm_job_id"])
    assert len(slurm_ids) == 5 and all("_" in job_id for job_id in slurm_ids)  # one array task each


def test_preempted_job_is_requeued_and_resumes_without_repeating_a_conversation(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "preempt"
    job_dir = sweep_dir / "oracle" / "toy-test" / "control" / "seed0"
    sweep = start_sweep(sweep_dir, "variant=control", *PACED, NO_GPU)
    try:
        wait_for(lambda: count_lines(job_dir / "conversations.jsonl") >= 1, "a finished conversation")
        job_id = json.loads((job_dir / "job_state.json").read_text())["slurm_job_id"]
        before = count_lines(job_dir / "conversations.jsonl")
        # What SLURM sends before a time limit or a preemption: submitit checkpoints and requeues.
        subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
        wait_for(lambda: slurm_job_state(job_id) == "PENDING", "the job to be requeued")
        assert count_lines(job_dir / "conversations.jsonl") < 10, "the job finished before the signal"
        # SLURM holds a requeued job for a while before it may start again; let it start now, but not
        # in the second its old credential was revoked: slurmd compares whole seconds, and a relaunch
        # within it is killed as "Job credential revoked" (seen on this single-node SLURM).
        time.sleep(2)
        subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True)
        output, _ = sweep.communicate(timeout=SWEEP_TIMEOUT_S)
    finally:
        stop_sweep(sweep)
    assert sweep.returncode == 0, output[-4000:]
    assert before >= 1
    assert keys_on_disk(job_dir) == EVERY_CONVERSATION_ONCE
    entry = manifest(sweep_dir)["jobs"][0]
    assert (entry["state"], entry["attempt"], entry["slurm_job_id"]) == ("complete", 2, job_id)
    assert json.loads((job_dir / "summary.json").read_text())["average_reward"] == 1.0


def test_cancelled_job_is_finished_by_rerunning_the_sweep(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "cancel"
    job_dir = sweep_dir / "oracle" / "toy-test" / "anxiety-medium" / "seed0"
    overrides = ["variant=anxiety", *PACED, NO_GPU]
    sweep = start_sweep(sweep_dir, *overrides, output=subprocess.DEVNULL)
    try:
        wait_for(lambda: count_lines(job_dir / "conversations.jsonl") >= 1, "a finished conversation")
        job_id = json.loads((job_dir / "job_state.json").read_text())["slurm_job_id"]
        subprocess.run(["scancel", job_id], check=True)  # no requeue: the job is gone
        wait_for(lambda: slurm_job_state(job_id) == "", "the job to leave the queue")
    finally:
        stop_sweep(sweep)  # the submitting session is lost too
    kept = (job_dir / "conversations.jsonl").read_bytes()
    kept = kept[: kept.rfind(b"\n") + 1]
    finished_before = kept.count(b"\n")
    assert 1 <= finished_before < 10

    status = run_module("harness.sweep", str(sweep_dir))
    assert status.returncode == ExitCode.INCOMPLETE and (
        f"{10 - finished_before} of 10 conversations not finished" in status.stdout
    ), status.stdout + status.stderr
    assert "interrupted" in status.stdout

    again = run_sweep(sweep_dir, *overrides)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert keys_on_disk(job_dir) == EVERY_CONVERSATION_ONCE
    assert (job_dir / "conversations.jsonl").read_bytes().startswith(kept)  # finished ones were not redone
    assert only_nonzero(manifest(sweep_dir)["counts"]) == {"complete": 1}


def test_a_failing_job_is_reported_while_the_others_complete(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "failure"
    done = run_sweep(
        sweep_dir,
        "variant=control,anger,confusion",
        "env.tasks=[0]",
        "backend._target_=tests.sweep_backends.PacedOracleBackend",
        "+backend.fail_variant=anger",
    )
    assert done.returncode == ExitCode.JOBS_FAILED + 1, done.stdout[-3000:] + done.stderr[-3000:]
    output = (done.stdout + done.stderr).splitlines()
    about_it = [
        line
        for line in output
        if "variant=anger" in line.replace("fail_variant=anger", "")
        or "anger-medium" in line
        or "deliberate" in line
    ]
    assert len(about_it) <= 5, "\n".join(about_it)
    [line] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert line.endswith(
        "anger-medium/seed0/error.txt: RuntimeError: deliberate test failure for variant anger"
    ), line
    assert "Traceback" not in done.stdout + done.stderr
    sacct = [line for line in output if "sacct" in line]
    assert len(sacct) <= 1, sacct  # once per sweep, not per poll
    listed = manifest(sweep_dir)
    assert only_nonzero(listed["counts"]) == {"complete": 2, "failed": 1}
    failed = next(job for job in listed["jobs"] if job["state"] == "failed")
    assert failed["dir"] == "oracle/toy-test/anger-medium/seed0"
    assert failed["error"] == "RuntimeError: deliberate test failure for variant anger"
    error_txt = (sweep_dir / failed["dir"] / "error.txt").read_text()
    assert error_txt.startswith("RuntimeError: deliberate test failure") and "Traceback" in error_txt
    for variant in ("control", "confusion"):
        summary = json.loads((sweep_dir / f"oracle/toy-test/{LABEL[variant]}/seed0/summary.json").read_text())
        assert summary["average_reward"] == 1.0


def test_a_request_no_node_can_meet_stops_at_submission_with_one_line(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "impossible"
    command = [
        arg
        for arg in sweep_command(sweep_dir, "hydra.launcher.cpus_per_task=8", "hydra.launcher.mem_gb=64")
        if arg not in ("hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1")
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=SWEEP_TIMEOUT_S)
    assert done.returncode == ExitCode.CONFIG, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [
        "error: no node of SLURM partition debug can run these jobs: hydra.launcher.cpus_per_task=8 "
        f"(its largest node has {node_cpus()} CPUs), hydra.launcher.mem_gb=64 (its largest node has "
        f"{node_memory_mb()} MB); lower cpus_per_task and mem_gb on the command line or in "
        "conf/local/slurm.yaml, or choose another partition"
    ]
    assert not (sweep_dir / ".submitit").exists()  # nothing was submitted


def node_cpus() -> int:
    return int(
        subprocess.run(["sinfo", "-h", "-p", "debug", "-o", "%c"], capture_output=True, text=True).stdout
    )


def node_memory_mb() -> int:
    return int(
        subprocess.run(["sinfo", "-h", "-p", "debug", "-o", "%m"], capture_output=True, text=True).stdout
    )


def test_a_pending_jobs_slurm_reason_shows_in_the_manifest_and_the_launcher_output(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "pending"
    job_dir = sweep_dir / "oracle" / "toy-test" / "control" / "seed0"
    sweep = start_sweep(
        sweep_dir,
        "variant=control",
        "env.tasks=[0]",
        NO_GPU,
        "+hydra.launcher.additional_parameters.begin=now+600",
    )
    try:
        entry = wait_for(
            lambda: (
                next(
                    (job for job in manifest(sweep_dir)["jobs"] if job.get("slurm_reason") == "BeginTime"),
                    None,
                )
                if (sweep_dir / "manifest.json").exists()
                else None
            ),
            "the job's pending reason in the manifest",
        )
        assert (entry["state"], entry["dir"]) == ("pending", "oracle/toy-test/control/seed0")
        status = run_module("harness.sweep", str(sweep_dir))
        assert status.returncode == ExitCode.INCOMPLETE
        assert f"SLURM job {entry['slurm_job_id']} pending (BeginTime)" in status.stdout
        assert not (job_dir / "conversations.jsonl").exists()
        subprocess.run(["scontrol", "update", f"JobId={entry['slurm_job_id']}", "StartTime=now"], check=True)
        output, _ = sweep.communicate(timeout=SWEEP_TIMEOUT_S)
    finally:
        stop_sweep(sweep)
    assert sweep.returncode == 0, output[-3000:]
    assert (
        f"SLURM job {entry['slurm_job_id']} (oracle/toy-test/control/seed0) is pending: BeginTime" in output
    )
    assert only_nonzero(manifest(sweep_dir)["counts"]) == {"complete": 1}


def test_an_incomplete_job_requeues_itself_and_comes_back_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("openai", reason="backend=openai needs `pip install -e '.[openai]'`")
    from tests.fake_openai_server import MODEL, Step, fake_openai_server

    monkeypatch.setenv("TAU_EMOTION_TEST_KEY", "sk-test")  # the SLURM job inherits the environment
    sweep_dir = tmp_path / "requeue"
    job_dir = sweep_dir / "gpt-4o" / "toy-test" / "control" / "seed0"
    with fake_openai_server([Step(content="Hello.")]) as server:
        server.go_down()
        openai = [
            "backend=openai",
            "model=gpt-4o",
            f"model.base_url={server.url}",
            f"model.api_model={MODEL}",
            "model.api_key_env=TAU_EMOTION_TEST_KEY",
            "backend.max_retries=0",
            "env.max_steps=2",
            "env.tasks=[0,1,2]",
            "retry.passes=1",
            "retry.cooldown_s=0.01",
            "retry.requeues=1",
        ]
        sweep = start_sweep(sweep_dir, "variant=control", NO_GPU, *openai)
        try:
            state = wait_for(
                lambda: (
                    (
                        json.loads(path.read_text()) if (path := job_dir / "job_state.json").exists() else {}
                    ).get("requeues")
                    and json.loads(path.read_text())
                ),
                "the incomplete job to requeue itself",
            )
            job_id = state["slurm_job_id"]
            wait_for(lambda: slurm_job_state(job_id) == "PENDING", "the job to wait in the queue again")
            assert count_lines(job_dir / "conversations.jsonl") == 6  # 3 infra errors, twice
            server.come_back()
            time.sleep(2)  # not in the second its old credential was revoked (see the preemption test)
            subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True)
            output, _ = sweep.communicate(timeout=SWEEP_TIMEOUT_S)
        finally:
            stop_sweep(sweep)
    assert sweep.returncode == 0, output[-4000:]
    entry = manifest(sweep_dir)["jobs"][0]
    assert (entry["state"], entry["attempt"], entry["missing"]) == ("complete", 2, 0)
    summary = json.loads((job_dir / "summary.json").read_text())
    assert (summary["state"], summary["scored"]) == ("complete", 3)
    records = [json.loads(line) for line in (job_dir / "conversations.jsonl").read_text().splitlines()]
    assert Counter((r["task_id"], r["trial"]) for r in records if r["scored"]) == Counter(
        {(0, 0): 1, (1, 0): 1, (2, 0): 1}
    )


@pytest.fixture(autouse=True)
def _sweep_name(request: pytest.FixtureRequest) -> Iterator[None]:
    """A name of this test's own, so its SLURM jobs can be cancelled if it fails half-way."""
    name = f"slurmtest-{request.node.name.removeprefix('test_')[:40]}-{os.getpid()}"
    LAUNCHER.append(f"name={name}")
    yield
    LAUNCHER.remove(f"name={name}")
    subprocess.run(["scancel", f"--name=tau-emotion-{name}"], check=False, capture_output=True)
