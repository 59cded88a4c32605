"""Runs every (task, trial) conversation of one job concurrently on one event loop."""

from __future__ import annotations

import asyncio
import fcntl
import gc
import json
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.backends.base import Backend, ConversationSpec
from harness.conversation import LoopSettings, run_conversation
from harness.domains.base import Domain
from harness.errors import ConfigError
from harness.metrics import summarize
from harness.observers import JobObserver
from harness.seeds import conversation_seed
from harness.store import (
    JOB_FILE,
    RESULTS,
    SUMMARY,
    ConversationLog,
    latest_by_key,
    read_conversations,
    taubench_results,
    write_json,
)
from harness.types import Sampling, Termination
from harness.user import UserSimulator, UserStrategy
from harness.variants import Variant

USER_SEED_OFFSET = 1_000_003
JOB_LOCK = ".job.lock"


@dataclass
class UserSettings:
    strategy: UserStrategy = "llm"
    framing: str = "{persona}"
    sampling: Sampling = Sampling(temperature=1.0)


@dataclass
class Job:
    domain: Domain
    variant: Variant
    backend: Backend
    task_ids: list[int]
    trials: int
    output_dir: Path
    user_backend: Backend | None = None
    """A separate backend for the simulated user; None shares the agent's."""
    judge_backend: Backend | None = None
    """The backend judging scores that need an LLM (τ²'s NL assertions); None: the user's."""
    seed: int = 0
    concurrency: int = 32
    loop: LoopSettings = LoopSettings()
    user: UserSettings = field(default_factory=UserSettings)
    fingerprint: dict[str, Any] = field(default_factory=dict)
    """The config that defines this job's results; a rerun into the same directory must match it."""
    info: dict[str, Any] = field(default_factory=dict)
    observers: Sequence[JobObserver] = ()


def _check_same_job(job: Job) -> None:
    path = job.output_dir / JOB_FILE
    if path.exists():
        previous = json.loads(path.read_text()).get("fingerprint", {})
        if previous != job.fingerprint:
            differing = sorted(
                key
                for key in previous.keys() | job.fingerprint.keys()
                if previous.get(key) != job.fingerprint.get(key)
            )
            raise ConfigError(
                f"{job.output_dir} holds results of a different job (it differs in {', '.join(differing)}); "
                "choose another `name=` or remove that directory"
            )
    job.output_dir.mkdir(parents=True, exist_ok=True)
    write_json(path, {"fingerprint": job.fingerprint, "info": job.info})


@contextmanager
def _job_lock(directory: Path) -> Iterator[None]:
    """One process at a time in a job directory: a sweep over intensities launches control and
    neutral once per intensity into one directory; the later ones wait, then find the work done."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / JOB_LOCK).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


async def run_job(job: Job) -> dict[str, Any]:
    """Run what is not on disk yet, then rewrite `results.json` and `summary.json`."""
    with _job_lock(job.output_dir):
        return await _run_job(job)


async def _run_job(job: Job) -> dict[str, Any]:
    _check_same_job(job)
    wanted = [(task, trial) for trial in range(job.trials) for task in job.task_ids]
    with ConversationLog(job.output_dir) as log:
        existing = latest_by_key(read_conversations(log.path))
        finished = {
            key for key, record in existing.items() if not Termination(record["termination"]).redo_on_resume
        }
        pending = [key for key in wanted if key not in finished]
        for observer in job.observers:
            observer.on_start(job.info, total=len(wanted), already_done=len(wanted) - len(pending))
        if pending:
            try:
                await _run_pending(job, pending, log)
            except BaseException as error:
                for observer in job.observers:
                    observer.on_abort(error)
                raise
    records = latest_by_key(read_conversations(log.path))
    selected = [records[key] for key in wanted if key in records]
    summary = {
        **job.info,
        **summarize(selected, job.trials),
        "fingerprint_sha": _sha(job.fingerprint),
        "missing": len(wanted) - len(selected),
    }
    write_json(job.output_dir / RESULTS, taubench_results(selected))
    write_json(job.output_dir / SUMMARY, summary)
    job.domain.export_results(selected, job.output_dir, job.info, job.trials, job.loop.max_steps)
    for observer in job.observers:
        observer.on_end(summary)
    return summary


def _sha(value: Any) -> str:
    from hashlib import sha256

    return sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


async def _run_pending(job: Job, pending: list[tuple[int, int]], log: ConversationLog) -> None:
    semaphore = asyncio.Semaphore(job.concurrency)
    await asyncio.to_thread(job.domain.prepare)
    # The shared database lives as long as the job: keep the cyclic GC from scanning it again
    # and again (full collections over it stall the event loop for 100+ ms).
    gc.freeze()
    async with AsyncExitStack() as stack:
        agent_backend = await stack.enter_async_context(job.backend)
        user_backend = (
            await stack.enter_async_context(job.user_backend) if job.user_backend else agent_backend
        )
        judge_backend = (
            await stack.enter_async_context(job.judge_backend) if job.judge_backend else user_backend
        )

        async def one(task_id: int, trial: int) -> None:
            async with semaphore:
                seed = conversation_seed(job.seed, job.domain.name, task_id, trial)
                spec = ConversationSpec(
                    env=job.domain.name,
                    task_id=task_id,
                    trial=trial,
                    seed=seed,
                    variant=job.variant.name,
                    task=job.domain.tasks[task_id],
                    scripted_opening=job.variant.scripted_opening,
                )
                user = UserSimulator(
                    model=user_backend.model_for("user", spec),
                    instruction=job.domain.instruction(task_id),
                    variant=job.variant,
                    framing=job.user.framing,
                    sampling=job.user.sampling,
                    strategy=job.user.strategy,
                    seed=seed + USER_SEED_OFFSET,
                    base_prompt=job.domain.user_prompt(task_id, job.user.strategy),
                    tools=job.domain.user_tools_info(task_id),
                )
                record = await run_conversation(
                    spec,
                    job.domain,
                    agent_backend.model_for("agent", spec),
                    user,
                    job.loop,
                    judge=judge_backend.model_for("judge", spec),
                )
                record.update(job.info)
                await log.write(record)
                for observer in job.observers:
                    observer.on_conversation(record)

        await asyncio.gather(*(one(task, trial) for task, trial in pending))
