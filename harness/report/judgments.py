"""Reads a sweep's judgments: every judge set (`<job>/judgments/<judge>.jsonl`) into two tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.analysis.behaviour import judged_agent
from harness.judge.run import family_of
from harness.judge.schema import FLAG_KINDS, LEGACY_LABELS
from harness.store import DamagedFile, JobDir, read_json_object
from harness.store.judgments import read_judgments

KEY = ["job", "task_id", "trial"]
FLAGS = ("any", *FLAG_KINDS)


@dataclass(frozen=True)
class Judgments:
    sets: pd.DataFrame
    """One row per judge: hash, model, backend, conversations judged, errors, tokens."""
    conversations: pd.DataFrame
    """One row per (judge, job, task, trial): error, and one 0/1 column per fidelity flag kind."""
    turns: pd.DataFrame
    """One row per (judge, job, task, trial, turn): emotion, intensity."""
    agent: pd.DataFrame = field(default_factory=pd.DataFrame)
    """One row per (judge, job, task, trial) whose judgment judged the agent's messages (prompt
    version 3 on, valid answers): the record's `messages` indexes of the agent messages judged
    (`judged_at`) and of each act."""


def read_sweep_judgments(sweep_dir: Path, jobs: list[str]) -> Judgments:
    sets: dict[str, dict[str, Any]] = {}
    conversation_rows: list[dict[str, Any]] = []
    turn_rows: list[dict[str, Any]] = []
    agent_rows: list[dict[str, Any]] = []
    for job in jobs:
        directory = JobDir(sweep_dir / job)
        for judge in directory.judges():
            info = _read_info(directory.judge_info(judge))
            entry = sets.setdefault(
                judge,
                {
                    "judge": judge,
                    "judge_model": info.get("model"),
                    "judge_family": info.get("family") or family_of(info.get("model")),
                    "judge_backend": info.get("backend"),
                    "plumbing_check": bool(info.get("plumbing_check")),
                    "conversations": 0,
                    "judge_errors": 0,
                    "prompt_tokens": 0,
                    "completion_tokens": 0,
                },
            )
            for judgment in read_judgments(directory.judgments(judge)).values():
                valid = judgment.get("turns") is not None
                entry["conversations"] += 1
                entry["judge_errors"] += not valid
                entry["prompt_tokens"] += judgment["usage"]["prompt_tokens"]
                entry["completion_tokens"] += judgment["usage"]["completion_tokens"]
                kinds = {flag["kind"] for flag in judgment.get("fidelity") or []}
                conversation_rows.append(
                    {
                        "judge": judge,
                        "job": job,
                        "task_id": judgment["task_id"],
                        "trial": judgment["trial"],
                        "valid": valid,
                        "error_kind": judgment.get("error_kind"),
                        **{
                            f"flag_{kind}": float(bool(kinds) if kind == "any" else kind in kinds)
                            if valid
                            else float("nan")
                            for kind in FLAGS
                        },
                    }
                )
                acts = judged_agent(judgment)
                if acts is not None:
                    agent_rows.append(
                        {
                            "judge": judge,
                            "job": job,
                            "task_id": judgment["task_id"],
                            "trial": judgment["trial"],
                            "judged_at": acts.judged,
                            "apology_at": acts.apologies,
                            "empathy_at": acts.empathy,
                            "refusal_at": acts.refusals,
                        }
                    )
                for turn in judgment.get("turns") or []:
                    turn_rows.append(
                        {
                            "judge": judge,
                            "job": job,
                            "task_id": judgment["task_id"],
                            "trial": judgment["trial"],
                            "turn": turn["turn"],
                            "emotion": LEGACY_LABELS.get(turn["emotion"], turn["emotion"]),
                            "intensity": turn["intensity"],
                        }
                    )
    return Judgments(
        pd.DataFrame(list(sets.values())),
        pd.DataFrame(conversation_rows),
        pd.DataFrame(turn_rows),
        pd.DataFrame(agent_rows),
    )


def _read_info(path: Path) -> dict[str, Any]:
    """`<judge>.json`, rewritten whole by each judge run: a damaged one counts as absent."""
    try:
        return read_json_object(path) or {}
    except DamagedFile:
        return {}


def primary_judge(sets: pd.DataFrame) -> str:
    """The judge that judged the most conversations (the first by hash on a tie)."""
    return str(sets.sort_values(["conversations", "judge"], ascending=[False, True]).iloc[0]["judge"])


def agent_judge(judgments: Judgments) -> str | None:
    """The judge set that judged the agent's messages of the most conversations (the first by hash on a
    tie); None when no set did (judged before prompt version 3, or never a valid answer)."""
    if judgments.agent.empty:
        return None
    counts = judgments.agent.groupby("judge").size().rename("n").reset_index()
    return str(counts.sort_values(["n", "judge"], ascending=[False, True]).iloc[0]["judge"])
