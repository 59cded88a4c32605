"""Judges every finished conversation of a sweep: bounded concurrency, resumable, blind to the variant."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from harness.backends.base import Backend, ConversationSpec, without_runtime_keys
from harness.episode.record import ConversationRecord
from harness.episode.types import Sampling, Termination
from harness.errors import BackendUnavailable, ContextWindowExceeded, HarnessError, StrictModel
from harness.judge.prompt import PROMPT_VERSION, RETRY, SYSTEM, judge_messages, render_transcript
from harness.judge.schema import InvalidVerdict, Limits, Verdict, parse_verdict, verdict_schema
from harness.judge.store import is_done
from harness.store import (
    DamagedFile,
    JobDir,
    find_job_dirs,
    latest_by_key,
    read_conversations,
    read_job_file,
    write_json,
)
from harness.store.judgments import JudgmentLog, read_judgments

log = logging.getLogger(__name__)

AGENT_ONLY_KEYS = frozenset({"agent_output_constraint"})
"""Backend keys that apply to an agent's replies only, never to the judge's: left out of its hash
(with the backend's own `RUNTIME_KEYS`, `harness.backends.base.runtime_keys`)."""


class JudgeSampling(StrictModel):
    temperature: float = Field(0.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(2048, ge=16)
    seed: int = 0


class LimitSettings(StrictModel):
    reason_chars: int = Field(300, ge=10)
    quote_chars: int = Field(200, ge=10)
    flags: int = Field(8, ge=0)


class JudgeSettings(StrictModel):
    """The typed view of `conf/judge.yaml`."""

    sweep_dir: Path
    name: str = "judge"
    family: str | None = None
    """The judge model's family (`qwen`, `llama`, `gpt`, ...): agreement is only between families."""
    concurrency: int = Field(16, ge=1)
    retries: int = Field(2, ge=0)
    sampling: JudgeSampling = JudgeSampling(temperature=0.0, top_p=1.0, max_tokens=2048, seed=0)
    limits: LimitSettings = LimitSettings(reason_chars=300, quote_chars=200, flags=8)
    backend: dict[str, Any]
    model: dict[str, Any]
    wandb: dict[str, Any] = Field(default_factory=dict)

    def identity(self) -> dict[str, Any]:
        """Everything that defines a judgment; its hash names the judgment set."""
        return {
            "prompt_version": PROMPT_VERSION,
            "prompt": SYSTEM,
            "schema": Verdict.model_json_schema(),
            "sampling": self.sampling.model_dump(),
            "limits": self.limits.model_dump(),
            "model": self.model,
            "backend": {
                k: v for k, v in without_runtime_keys(self.backend).items() if k not in AGENT_ONLY_KEYS
            },
        }

    def model_family(self) -> str:
        """`family`, or the first word of the model's name (`qwen2.5-72b-instruct` -> `qwen`)."""
        return self.family or family_of(self.model.get("name"))

    def judge_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:12]


def family_of(model_name: object) -> str:
    """A model's family from its name: its first word (`qwen2.5-72b-instruct` -> `qwen`, `gpt-4o` -> `gpt`)."""
    match = re.match(r"[A-Za-z]+", str(model_name or ""))
    return match.group(0).lower() if match else "unknown"


ErrorKind = Literal["invalid_output", "too_long", "unavailable", "crash"]


@dataclass
class Tally:
    judged: int = 0
    already: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def redo(self) -> int:
        return self.errors.get("unavailable", 0) + self.errors.get("crash", 0)


@dataclass(frozen=True)
class JobWork:
    job_dir: Path
    conversations: list[ConversationRecord]
    pending: list[ConversationRecord]


def judgeable(record: ConversationRecord) -> bool:
    """Finished conversations with at least one customer message to judge."""
    if Termination(record["termination"]).redo_on_resume:
        return False
    return bool(render_transcript(record).judged)


def find_work(sweep_dir: Path, judge: str) -> list[JobWork]:
    work = []
    for job_dir in find_job_dirs(sweep_dir):
        records = [
            r
            for r in latest_by_key(read_conversations(JobDir(job_dir).conversations)).values()
            if judgeable(r)
        ]
        if not records:
            continue
        done = read_judgments(JobDir(job_dir).judgments(judge))
        pending = [r for r in records if not is_done(done.get((r["task_id"], r["trial"])), r)]
        work.append(JobWork(job_dir, records, pending))
    return work


def simulator_model(job_dir: Path) -> str | None:
    """The model that played the simulated user in this job (the agent's unless the user had its own)."""
    try:
        job = read_job_file(job_dir)
    except DamagedFile:
        return None
    fingerprint = job.fingerprint if job else {}
    user_backend = (fingerprint.get("user") or {}).get("backend") or {}
    model = user_backend.get("model") or fingerprint.get("model") or {}
    return model.get("name") if isinstance(model, dict) else None


class Judge:
    def __init__(self, settings: JudgeSettings, backend: Backend) -> None:
        self.settings = settings
        self.backend = backend
        self.hash = settings.judge_hash()
        self.limits = Limits(**settings.limits.model_dump())
        self.tally = Tally()

    def info(self) -> dict[str, Any]:
        return {
            "judge": self.hash,
            "name": self.settings.name,
            "model": self.settings.model.get("name"),
            "family": self.settings.model_family(),
            "backend": self.backend.name,
            "plumbing_check": self.backend.plumbing_check,
            "prompt_version": PROMPT_VERSION,
            "identity": self.settings.identity(),
        }

    async def judge_conversation(self, record: ConversationRecord) -> dict[str, Any]:
        transcript = render_transcript(record)
        agent = len(transcript.agent_messages)
        schema = verdict_schema(transcript.judged, transcript.turns, self.limits, agent)
        messages = judge_messages(record, transcript, schema)
        spec = ConversationSpec(
            env=record["env"], task_id=record["task_id"], trial=record["trial"], seed=record["seed"],
            variant="", task=None,  # the judge is blind to the variant
        )  # fmt: skip
        from harness.judge.structured import json_chat

        model = json_chat(self.backend, schema, spec)
        sampling = self.settings.sampling
        seed = (sampling.seed * 1_000_003 + int(record["seed"])) % 2**31
        usage = {"prompt_tokens": 0, "completion_tokens": 0}
        verdict: Verdict | None = None
        error: str | None = None
        kind: ErrorKind | None = None
        attempts = 0
        started = time.perf_counter()
        try:
            for attempts in range(1, self.settings.retries + 2):
                reply = await model.chat(
                    messages, None, Sampling(sampling.temperature, sampling.top_p, sampling.max_tokens, seed)
                )
                usage["prompt_tokens"] += reply.prompt_tokens or 0
                usage["completion_tokens"] += reply.completion_tokens or 0
                try:
                    verdict = parse_verdict(
                        reply.content, transcript.judged, transcript.turns, self.limits, agent
                    )
                    break
                except InvalidVerdict as problem:
                    error, kind = f"after {attempts} attempts: {problem}", "invalid_output"
                    messages = [
                        *messages,
                        {"role": "assistant", "content": reply.content or ""},
                        {"role": "user", "content": RETRY.format(problem=problem)},
                    ]
        except BackendUnavailable as problem:
            error, kind = str(problem), "unavailable"
        except ContextWindowExceeded as problem:
            error, kind = f"the conversation does not fit the judge's context: {problem}", "too_long"
        except Exception as problem:  # one conversation's failure must not stop the others
            error, kind = f"{type(problem).__name__}: {problem}", "crash"
            log.debug("judge crashed on task %s trial %s", record["task_id"], record["trial"], exc_info=True)
        if verdict is not None:
            error = kind = None
        return {
            "task_id": record["task_id"],
            "trial": record["trial"],
            "conversation_started_at": record.get("started_at"),
            "judge": self.hash,
            "judge_model": self.settings.model.get("name"),
            "judged_turns": transcript.judged,
            "turns": [t.model_dump() for t in verdict.turns] if verdict else None,
            "fidelity": [f.model_dump() for f in verdict.fidelity] if verdict else None,
            "agent_messages": transcript.agent_messages,
            "agent": [a.model_dump() for a in verdict.agent] if verdict else None,
            "error": error,
            "error_kind": kind,
            "attempts": attempts,
            "usage": usage,
            "latency_s": round(time.perf_counter() - started, 6),
            "judged_at": time.time(),
        }

    async def run(self, work: list[JobWork]) -> Tally:
        slots = asyncio.Semaphore(self.settings.concurrency)
        info = self.info()
        logs = {}
        for job in work:
            directory = JobDir(job.job_dir)
            logs[job.job_dir] = JudgmentLog(directory.judgments(self.hash))
            write_json(directory.judge_info(self.hash), info)

        total = sum(len(job.pending) for job in work)
        every = max(1, total // 10)

        async def one(job_dir: Path, record: ConversationRecord) -> None:
            async with slots:
                judgment = await self.judge_conversation(record)
            await logs[job_dir].write(judgment)
            self.tally.judged += 1
            if judgment["error_kind"]:
                self.tally.errors[judgment["error_kind"]] = (
                    self.tally.errors.get(judgment["error_kind"], 0) + 1
                )
            self.tally.prompt_tokens += judgment["usage"]["prompt_tokens"]
            self.tally.completion_tokens += judgment["usage"]["completion_tokens"]
            if self.tally.judged % every == 0 and self.tally.judged < total:
                log.info("judged %d/%d conversations", self.tally.judged, total)

        from harness.judge.structured import prepare

        prepare(self.backend)
        try:
            async with self.backend:
                await asyncio.gather(*(one(job.job_dir, r) for job in work for r in job.pending))
        finally:
            for judgment_log in logs.values():
                judgment_log.close()
        return self.tally


def no_conversations(sweep_dir: Path) -> HarnessError:
    return HarnessError(
        f"{sweep_dir} holds no finished conversations to judge (no conversations.jsonl under it with a "
        "user message); pass a sweep directory such as outputs/sweeps/<name>"
    )
