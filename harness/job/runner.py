"""Runs every (task, trial) conversation of one job concurrently on one event loop."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from harness.backends.base import Backend, ConversationSpec, comparable_fingerprint
from harness.domains.base import Domain, FinishedJob
from harness.episode.conversation import LoopSettings, run_conversation
from harness.episode.record import ConversationRecord
from harness.episode.seeds import conversation_seed
from harness.episode.types import Sampling
from harness.episode.user import UserSimulator, UserStrategy
from harness.episode.variants import Variant
from harness.errors import ConfigError
from harness.job.capacity import KVTokens, concurrency_cap
from harness.job.cost import job_cost, previous_wall_s
from harness.job.metrics import summarize
from harness.job.observers import JobObserver
from harness.job.retry import RetryPolicy, backend_down, outcome, to_redo
from harness.store import (
    ConversationLog,
    JobDir,
    Key,
    Summary,
    latest_by_key,
    read_conversations,
    read_job_file,
    write_json,
)

logger = logging.getLogger(__name__)

USER_SEED_OFFSET = 1_000_003


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
    before_onset: Variant | None = None
    """The persona the user speaks with before the variant's onset; None: no such turns, or the control prompt."""
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
    retry: RetryPolicy = RetryPolicy()
    study: dict[str, Any] | None = None
    """The sweep's declared estimand (`harness.job.study.Study`), None when it declares none."""
    kv_tokens: KVTokens | None = None
    """Expected KV-cache tokens per conversation (`env.kv_tokens`): caps `concurrency` to what the
    engines' KV caches hold once they start (`harness.job.capacity`); None: no cap."""


def _check_same_job(job: Job) -> None:
    path = JobDir(job.output_dir).job_file
    recorded = read_job_file(job.output_dir)
    if recorded is not None:
        previous = comparable_fingerprint(recorded.fingerprint)  # written before a key became a runtime key
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
    write_json(
        path,
        {
            "fingerprint": job.fingerprint,
            "info": job.info,
            "tasks": job.task_ids,
            "trials": job.trials,
            "study": job.study,
        },
    )


async def run_job(job: Job) -> dict[str, Any]:
    """Run what is not on disk yet (with retry passes), then rewrite `summary.json` and the
    environment's own results export. The job's lock is held throughout (`JobDir.hold`)."""
    with JobDir(job.output_dir).hold():
        return await _run_job(job)


async def _run_job(job: Job) -> dict[str, Any]:
    started = time.perf_counter()
    _check_same_job(job)
    wanted = [(task, trial) for trial in range(job.trials) for task in job.task_ids]
    with ConversationLog(job.output_dir) as log:
        pending = to_redo(wanted, latest_by_key(read_conversations(log.path)))
        for observer in job.observers:
            observer.on_start(job.info, total=len(wanted), already_done=len(wanted) - len(pending))
        if pending:
            try:
                await _run_passes(job, pending, log)
            except BaseException as error:
                for observer in job.observers:
                    observer.on_abort(error)
                raise
    records = latest_by_key(read_conversations(log.path))
    selected = [records[key] for key in wanted if key in records]
    directory = JobDir(job.output_dir)
    summary = {
        **job.info,
        **summarize(selected, job.trials),
        "fingerprint_sha": _sha(job.fingerprint),
        **outcome(wanted, records, job.retry.accept_incomplete),
        "cost": job_cost(selected, job.info, previous_wall_s(job.output_dir) + time.perf_counter() - started),
    }
    Summary.model_validate(summary)  # what the readers of summary.json rely on
    write_json(directory.summary, summary)
    job.domain.export_results(FinishedJob(selected, job.output_dir, job.info, job.trials, job.loop.max_steps))
    for observer in job.observers:
        observer.on_end(summary)
    return summary


def _sha(value: Any) -> str:
    from hashlib import sha256

    return sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


async def _run_passes(job: Job, pending: list[Key], log: ConversationLog) -> None:
    """The first pass over `pending`, then retry passes over what ended in a redoable error."""
    await asyncio.to_thread(job.domain.prepare)
    # The shared database lives as long as the job: keep the cyclic GC from scanning it again
    # and again (full collections over it stall the event loop for 100+ ms).
    gc.freeze()
    async with AsyncExitStack() as stack:
        agent_backend = await stack.enter_async_context(job.backend)
        user_backend = (
            await stack.enter_async_context(job.user_backend) if job.user_backend else agent_backend
        )
        _cap_concurrency(job, agent_backend, user_backend)
        # τ²'s NL assertions: env.judge, else the user's own backend; the agent's model never grades
        # itself, except a plumbing check's (oracle, scripted), which judges every assertion as scripted.
        judge_backend: Backend | None = (
            await stack.enter_async_context(job.judge_backend)
            if job.judge_backend
            else user_backend
            if job.user_backend or agent_backend.plumbing_check
            else None
        )

        async def run_pass(keys: list[Key]) -> list[ConversationRecord]:
            return await _run_pass(job, keys, log, agent_backend, user_backend, judge_backend)

        records = await run_pass(pending)
        policy = job.retry
        first_pass_ended = time.monotonic()
        down_in_a_row = 0
        for number in range(1, policy.passes + 1):
            redo = to_redo(pending, {(r["task_id"], r["trial"]): r for r in records})
            if not redo:
                return
            pending = redo
            cooldown = policy.cooldown(number)
            if time.monotonic() + cooldown - first_pass_ended > policy.max_total_s:
                logger.warning(
                    "retry.max_total_s=%g spent: %d conversations left unfinished",
                    policy.max_total_s,
                    len(redo),
                )
                return
            logger.info(
                "retry pass %d/%d in %.1f s: %d conversations ended in infra_error or harness_error",
                number,
                policy.passes,
                cooldown,
                len(redo),
            )
            for observer in job.observers:
                observer.on_retry_pass(number, policy.passes, len(redo))
            await asyncio.sleep(cooldown)
            records = await run_pass(redo)
            down_in_a_row = down_in_a_row + 1 if backend_down(records) else 0
            if down_in_a_row >= policy.down_passes:
                logger.warning(
                    "the backend looks down for good: every call to the agent's model in the last %d retry passes failed; "
                    "stopping retries with %d conversations unfinished",
                    down_in_a_row,
                    len(records),
                )
                return
        left = to_redo(pending, {(r["task_id"], r["trial"]): r for r in records})
        if left:
            logger.warning(
                "retry.passes=%d spent: %d conversations left unfinished", policy.passes, len(left)
            )


def _cap_concurrency(job: Job, agent_backend: Backend, user_backend: Backend) -> None:
    """Cap `job.concurrency` to the started engines' KV caches; job.json records the cap."""
    in_force, record = concurrency_cap(
        job.concurrency, job.kv_tokens, agent_backend, user_backend, job.domain.name
    )
    if record is None:
        return
    job.concurrency = in_force
    path = JobDir(job.output_dir).job_file
    recorded = json.loads(path.read_text())
    write_json(path, {**recorded, "concurrency": record})


async def _run_pass(
    job: Job,
    keys: list[Key],
    log: ConversationLog,
    agent_backend: Backend,
    user_backend: Backend,
    judge_backend: Backend | None,
) -> list[ConversationRecord]:
    semaphore = asyncio.Semaphore(job.concurrency)

    async def one(task_id: int, trial: int) -> ConversationRecord:
        async with semaphore:
            seed = conversation_seed(job.seed, job.domain.name, task_id, trial)
            spec = ConversationSpec(
                env=job.domain.name,
                task_id=task_id,
                trial=trial,
                seed=seed,
                variant=job.variant.name,
                task=job.domain.tasks[task_id],
                scripted_opening=(job.before_onset or job.variant).opening(),
                oracle=job.domain.oracle,
                nl_assertions=job.domain.nl_assertions(task_id),
            )
            user = UserSimulator(
                model=user_backend.model_for("user", spec),
                instruction=job.domain.instruction(task_id),
                variant=job.variant,
                before_onset=job.before_onset,
                framing=job.user.framing,
                sampling=job.user.sampling,
                strategy=job.user.strategy,
                seed=seed + USER_SEED_OFFSET,
                base_prompt=job.domain.user_prompt(task_id, job.user.strategy),
                tools=job.domain.user_tools_info(task_id),
                writes=job.domain.tool_roles.writes,
            )
            episode = await run_conversation(
                spec,
                job.domain,
                agent_backend.model_for("agent", spec),
                user,
                job.loop,
                judge=judge_backend.model_for("judge", spec) if judge_backend else None,
            )
            record = cast(ConversationRecord, {**episode, **job.info})
            await log.write(record)
            for observer in job.observers:
                observer.on_conversation(record)
            return record

    return list(await asyncio.gather(*(one(task, trial) for task, trial in keys)))
