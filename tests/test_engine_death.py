"""A vLLM engine that dies mid-job stops the job (exit 4) instead of failing its conversations,
and under SLURM the job is requeued and finishes. The tiny model's engine core process is
killed with SIGKILL, as the kernel's OOM killer or a GPU fault would end it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ExitCode
from tests.helpers import TOY
from tests.test_slurm import LAUNCHER, _why_not, count_lines, keys_on_disk, slurm_job_state, wait_for
from tests.tinymodel import tiny_model, tiny_vllm_overrides

pytestmark = [
    pytest.mark.slow,
    pytest.mark.vllm,
    pytest.mark.skipif(
        find_spec("vllm") is None, reason="vLLM is not installed (CPU: `bash .ci/vllm-cpu.sh`)"
    ),
]

ROOT = Path(__file__).resolve().parents[1]
TASKS, TRIALS = 5, 3
EVERY_CONVERSATION_ONCE = Counter({(task, trial): 1 for task in range(TASKS) for trial in range(TRIALS)})


def job_overrides(model_dir: Path) -> list[str]:
    """Toy conversations of the tiny model, one at a time, a second or two each."""
    return [
        *tiny_vllm_overrides(model_dir, max_model_len=4096),
        *TOY,
        f"env.trials={TRIALS}",
        "env.max_steps=3",
        "concurrency=1",
        "agent.sampling.max_tokens=64",
        "user.sampling.max_tokens=16",
    ]


def engine_core(match: Callable[[Any], bool]) -> Any:
    """The one vLLM engine core process that `match` accepts."""
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if "EngineCore" in " ".join(process.info["cmdline"] or []) and match(process):
                found.append(process)
        except psutil.Error:
            continue
    return found[0] if len(found) == 1 else None


def kill_engine_after_first_conversation(log: Path, match: Callable[[Any], bool]) -> int:
    wait_for(lambda: count_lines(log) >= 1, "a finished conversation", timeout_s=400)
    core = wait_for(lambda: engine_core(match), "the engine core process")
    os.kill(core.pid, signal.SIGKILL)
    return count_lines(log)


def records(job_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (job_dir / "conversations.jsonl").read_text().splitlines()]


def test_a_dead_engine_stops_the_job_with_its_exit_code_and_a_rerun_finishes(tmp_path: Path) -> None:
    import psutil

    overrides = [*job_overrides(tiny_model()), f"hydra.run.dir={tmp_path}"]
    command = [sys.executable, "-m", "harness", *overrides]
    job = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        parent = psutil.Process(job.pid)
        done_before = kill_engine_after_first_conversation(
            tmp_path / "conversations.jsonl", lambda p: p in parent.children(recursive=True)
        )
        _, stderr = job.communicate(timeout=120)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert done_before < TASKS * TRIALS, "the job finished before the engine was killed"
    assert job.returncode == ExitCode.ENGINE_DIED, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: the vLLM engine of tiny died: "), stderr[-3000:]
    assert (tmp_path / "error.txt").read_text().startswith("the vLLM engine of tiny died")
    kept = records(tmp_path)
    assert kept and all(r["termination"] not in ("infra_error", "harness_error") for r in kept)

    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert keys_on_disk(tmp_path) == EVERY_CONVERSATION_ONCE
    assert records(tmp_path)[: len(kept)] == kept  # what finished before the death was kept, not redone


@pytest.mark.slurm
@pytest.mark.skipif(_why_not is not None, reason=_why_not or "")
def test_under_slurm_a_job_whose_engine_dies_is_requeued_and_finishes(tmp_path: Path) -> None:
    import psutil

    sweep_dir = tmp_path / "sweep"
    job_dir = sweep_dir / "tiny" / "toy-test" / "control" / "seed0"
    name = f"enginedeath-{os.getpid()}"
    command = [
        sys.executable,
        "-m",
        "harness",
        "-m",
        *[o for o in LAUNCHER if not o.startswith(("hydra.launcher.mem_gb", "name="))],
        "hydra.launcher.mem_gb=4",
        f"name={name}",
        f"hydra.sweep.dir={sweep_dir}",
        *job_overrides(tiny_model()),
    ]
    sweep = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:

        def started() -> bool:  # the launcher records the job as pending first; the job adds its pid
            path = job_dir / "job_state.json"
            return path.exists() and "pid" in json.loads(path.read_text())

        wait_for(started, "the job to start", timeout_s=300)
        state = json.loads((job_dir / "job_state.json").read_text())
        job_id, job_process = state["slurm_job_id"], psutil.Process(state["pid"])
        kill_engine_after_first_conversation(
            job_dir / "conversations.jsonl", lambda p: p in job_process.children(recursive=True)
        )
        wait_for(lambda: slurm_job_state(job_id) == "PENDING", "the job to be requeued")
        # SLURM holds a requeued job for a while before it may start again; let it start now, not in
        # the second its old credential was revoked (a relaunch then is killed: "credential revoked").
        time.sleep(2)
        subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True)
        output, _ = sweep.communicate(timeout=600)
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
            sweep.wait()
        subprocess.run(["scancel", f"--name=tau-emotion-{name}"], check=False, capture_output=True)
    assert sweep.returncode == 0, output[-4000:]
    assert keys_on_disk(job_dir) == EVERY_CONVERSATION_ONCE
    assert all(r["termination"] not in ("infra_error", "harness_error") for r in records(job_dir))
    entry = json.loads((sweep_dir / "manifest.json").read_text())["jobs"][0]
    assert (entry["state"], entry["attempt"]) == ("complete", 2)
    log = next((sweep_dir / ".submitit").glob(f"{job_id.split('_')[0]}*/*_log.err")).read_text()
    assert f"requeued SLURM job {job_id}" in log
