"""Builds sweep directories from constructed conversation records, in the harness's own format."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from harness.job.metrics import summarize
from harness.store import CONVERSATIONS, SUMMARY

Outcome = Callable[[int, int], bool]
"""(task, trial) -> whether the conversation succeeds."""

USER_TEXT = {
    "control": "Hi, I need help with an exchange on my order.",
    "anger": "This is unacceptable and I am furious. Fix this now or I take my business elsewhere!",
    "frustration": "Seriously, again? I already told you this. It is getting ridiculous.",
    "anxiety": "I'm really worried and nervous about this, what if it goes wrong?",
    "confusion": "Sorry, what do you mean? I'm confused and not sure I understand.",
}


def record(
    env: str,
    variant: str,
    task: int,
    trial: int,
    success: bool,
    *,
    model: str = "toy-model",
    termination: str = "user_stop",
    scored: bool = True,
    affect: Iterable[str] = (),
    plumbing_check: bool = False,
    intensity: str | None = "medium",
    noop_task: bool | None = None,
) -> dict[str, Any]:
    text = USER_TEXT.get(variant, USER_TEXT["control"])
    return {
        "env": env,
        "split": "test",
        "task_id": task,
        "trial": trial,
        "seed": 1000 * task + trial,
        "variant": variant,
        "reward": 1.0 if success and scored else 0.0,
        "termination": termination,
        "scored": scored,
        "error": None if scored else "user simulator failed",
        "reward_info": None,
        "user_id": f"user_{task}",
        "instruction": "You want to exchange an item.",
        "instruction_affect": list(affect),
        "counts": {
            "steps": 4,
            "tool_calls": 2,
            "tool_errors": 0,
            "malformed_tool_calls": 0,
            "user_turns": 2,
            "agent_replies": 2,
        },
        "usage": {
            "agent_prompt_tokens": 100,
            "agent_completion_tokens": 20,
            "user_prompt_tokens": 50,
            "user_completion_tokens": 10,
        },
        "calls": [{"role": "user", "turn": 0, "affect_active": variant != "control"}],
        "started_at": 0.0,
        "duration_s": 1.5,
        "user_messages": [],
        "actions": [],
        "messages": [
            {"role": "system", "content": "policy"},
            {"role": "user", "content": text},
            {"role": "assistant", "content": "Let me look at that for you."},
            {"role": "user", "content": "###STOP###"},
        ],
        "model": model,
        "backend": "synthetic",
        "plumbing_check": plumbing_check,
        "intensity": None if variant == "control" else intensity,
        "onset_after_turns": 0,
        **({} if noop_task is None else {"noop_task": noop_task}),
    }


def write_job(
    sweep: Path,
    env: str,
    variant: str,
    tasks: int,
    trials: int,
    outcome: Outcome,
    *,
    model: str = "toy-model",
    affect_tasks: Iterable[int] = (),
    finished: bool = True,
    intensity: str | None = "medium",
    noop_tasks: Iterable[int] | None = None,
    user_simulator: dict[str, Any] | None = None,
    ending: Callable[[int, int], str] | None = None,
    study: dict[str, Any] | None = None,
    **extra: Any,
) -> Path:
    """One job of `tasks` × `trials` conversations; `ending(task, trial)` gives an unscored termination
    (e.g. "user_error") or "" for a scored one."""
    folder = variant if variant == "control" or intensity in (None, "medium") else f"{variant}-{intensity}"
    job = sweep / model / f"{env}-test" / folder / "seed0"
    job.mkdir(parents=True, exist_ok=True)
    affect = set(affect_tasks)
    noop = None if noop_tasks is None else set(noop_tasks)

    def unscored(task: int, trial: int) -> dict[str, Any]:
        termination = ending(task, trial) if ending else ""
        return {"scored": False, "termination": termination} if termination else {}

    records = [
        record(
            env,
            variant,
            task,
            trial,
            outcome(task, trial),
            model=model,
            affect=["impatient"] if task in affect else [],
            intensity=intensity,
            noop_task=None if noop is None else task in noop,
            **{**extra, **unscored(task, trial)},
        )
        for trial in range(trials)
        for task in range(tasks)
    ]
    (job / CONVERSATIONS).write_text("".join(json.dumps(r) + "\n" for r in records))
    simulator = user_simulator or {"backend": "synthetic", "model": "user-model", "temperature": 1.0}
    info = {
        "model": model,
        "env": env,
        "variant": variant,
        "intensity": None if variant == "control" else intensity,
        "plumbing_check": extra.get("plumbing_check", False),
        "user_simulator": simulator,
    }
    fingerprint = {
        "seed": 0,
        "variant": {"name": variant, "intensity": intensity},
        "model": {"name": model},
        "user": {"strategy": "llm", "sampling": {"temperature": simulator.get("temperature", 1.0)}},
    }
    (job / "job.json").write_text(json.dumps({"fingerprint": fingerprint, "info": info, "study": study}))
    if finished:
        summary = {**info, **summarize(records, trials), "missing": 0}
        (job / SUMMARY).write_text(json.dumps(summary))
    return job
