"""Builds the judge from the composed `conf/judge.yaml` and runs it over a sweep. `DictConfig` stops here."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from harness.errors import ExitCode, HarnessError, validated
from harness.job.app import build
from harness.judge.run import (
    JobWork,
    Judge,
    JudgeSettings,
    Tally,
    find_work,
    no_conversations,
    simulator_model,
)
from harness.store import JobDir
from harness.store.judgments import read_judgments

log = logging.getLogger(__name__)


def settings_from(cfg: DictConfig) -> JudgeSettings:
    return validated(JudgeSettings, OmegaConf.to_container(cfg, resolve=True))


def run(cfg: DictConfig) -> ExitCode:
    settings = settings_from(cfg)
    sweep_dir = settings.sweep_dir
    if not sweep_dir.is_dir():
        raise HarnessError(f"sweep_dir={sweep_dir} is not a directory")
    judge = Judge(settings, build(settings.backend))
    work = find_work(sweep_dir, judge.hash)
    if not work:
        raise no_conversations(sweep_dir)
    judge_model = settings.model.get("name")
    same = sorted(
        {str(j.job_dir.relative_to(sweep_dir)) for j in work if simulator_model(j.job_dir) == judge_model}
    )
    if same and not judge.backend.plumbing_check:
        log.warning(
            "the judge %s is also the simulated user's model in %d jobs: its verdicts may favour its own text",
            judge_model,
            len(same),
        )
    pending = sum(len(j.pending) for j in work)
    log.info(
        "judge %s (%s on %s): %d conversations to judge in %d jobs",
        judge.hash,
        judge_model,
        judge.backend.name,
        pending,
        len(work),
    )
    tally = asyncio.run(judge.run([j for j in work if j.pending])) if pending else Tally()
    tally.already = sum(len(j.conversations) - len(j.pending) for j in work)
    _log_wandb(settings, judge, work)
    log.info(
        "judge %s: %d judged now, %d already judged, judge errors %s, tokens %d prompt + %d completion -> %s",
        judge.hash, tally.judged, tally.already, tally.errors or "none", tally.prompt_tokens,
        tally.completion_tokens, f"<job>/judgments/{judge.hash}.jsonl",
    )  # fmt: skip
    outcomes = Counter(
        judgment.get("error_kind") or "valid"
        for job in work
        for judgment in read_judgments(JobDir(job.job_dir).judgments(judge.hash)).values()
    )
    log.info(
        "judge %s now holds %d judgments: %s",
        judge.hash,
        sum(outcomes.values()),
        dict(sorted(outcomes.items())),
    )
    return ExitCode.INCOMPLETE if tally.redo else ExitCode.OK


def _log_wandb(settings: JudgeSettings, judge: Judge, work: list[JobWork]) -> None:
    from harness.judge.wandb_log import log_judgments

    for job in work:
        log_judgments(settings.wandb, job.job_dir, judge.hash)


def sweep_dir_override(argument: str) -> str:
    """`SWEEP_DIR` given first on the command line, as the Hydra override `sweep_dir=...`."""
    path = str(Path(argument).expanduser().resolve())
    escaped = path.replace("\\", "\\\\").replace("'", "\\'")
    return f"sweep_dir='{escaped}'"
