"""Reads a sweep directory: every job's conversations into one table, and each job's state."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness.analysis.measures import measure_columns
from harness.episode.record import ConversationRecord
from harness.episode.types import STOP_TOKEN
from harness.errors import HarnessError
from harness.job.metrics import agent_texts, is_success, user_texts, words_per_turn
from harness.report.dynamics import STATIC, reactive_columns
from harness.report.fidelity_facts import fidelity
from harness.report.independence import nl_assertion_scored
from harness.store import JobDir, JobProgress, Summary, find_job_dirs, job_state


class ReportError(HarnessError):
    """A sweep directory the report cannot read; the message is one line for the user."""


@dataclass(frozen=True)
class Sweep:
    conversations: pd.DataFrame
    """One row per conversation (the latest record of each (task, trial) in each job)."""
    user_turns: pd.DataFrame
    """One row per simulated-user message: the text the manipulation check scores."""
    jobs: pd.DataFrame
    """One row per job directory, with its state (`harness.store.job_state`: complete,
    accepted_incomplete, incomplete, running, failed, damaged or not_started)."""
    settings: dict[str, dict[str, Any]]
    """Per job directory: its `job.json` fingerprint, with `info.user_simulator` under `user_simulator`."""


def _expected(progress: JobProgress, summary: Summary | None) -> int | None:
    if progress.wanted is not None:
        return len(progress.wanted)
    if summary:
        return summary.conversations + summary.missing
    return None


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else value


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    return content if isinstance(content, str) else ""


def _conversation_row(record: ConversationRecord, job: str, run_seed: int) -> dict[str, Any]:
    messages = record["messages"]
    said, replied = user_texts(messages), agent_texts(messages)
    counts = record["counts"]
    usage = record["usage"]
    scored = record["scored"]
    return {
        "job": job,
        "model": record.get("model", "?"),
        "backend": record.get("backend", "?"),
        "env": record["env"],
        "split": record["split"],
        "variant": record["variant"],
        "variant_kind": record.get("variant_kind"),
        "persona_set": record.get("persona_set", "v1"),  # records before persona sets: the first set
        "intensity": record.get("intensity"),
        "onset_after_turns": record.get("onset_after_turns"),
        **reactive_columns(record),
        "run_seed": run_seed,
        "task_id": int(record["task_id"]),
        "trial": int(record["trial"]),
        "seed": record["seed"],
        "scored": scored,
        "success": float(is_success(record["reward"])) if scored else float("nan"),
        "reward": record["reward"],
        "success_at_cap": float(is_success(at_cap))
        if scored and (at_cap := record.get("reward_at_cap")) is not None
        else (float(is_success(record["reward"])) if scored else float("nan")),
        "termination": record["termination"],
        "error": record["error"],
        "instruction_affect": ",".join(record["instruction_affect"]),
        "noop_task": _optional_bool(record.get("noop_task")),
        "plumbing_check": bool(record.get("plumbing_check", False)),
        "steps": counts["steps"],
        "user_turns": counts["user_turns"],
        "tool_calls": counts["tool_calls"],
        "tool_errors": counts["tool_errors"],
        "malformed_tool_calls": counts["malformed_tool_calls"],
        "user_words_per_turn": _or_nan(words_per_turn(said)),
        "agent_words_per_turn": _or_nan(words_per_turn(replied)),
        "duration_s": record["duration_s"],
        "started_at": record["started_at"],
        "agent_tokens": (usage.get("agent_prompt_tokens") or 0) + (usage.get("agent_completion_tokens") or 0),
        "user_tokens": (usage.get("user_prompt_tokens") or 0) + (usage.get("user_completion_tokens") or 0),
        "nl_assertion_scored": nl_assertion_scored(record),
        **served_columns(record),
        **fidelity(record).as_row(),
        **measure_columns(record),
    }


def served_columns(record: ConversationRecord) -> dict[str, str]:
    """The agent's served model versions and `system_fingerprint`s over its calls ("" where none were given)."""
    calls = [c for c in record["calls"] if c.get("role") == "agent"]
    return {
        "served_models": ";".join(sorted({c["served_model"] for c in calls if c.get("served_model")})),
        "system_fingerprints": ";".join(
            sorted({c["system_fingerprint"] for c in calls if c.get("system_fingerprint")})
        ),
    }


def _optional_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _user_turn_rows(record: ConversationRecord, row: dict[str, Any]) -> list[dict[str, Any]]:
    active = {c.get("turn"): c.get("affect_active") for c in record["calls"] if c.get("role") == "user"}
    turns = [m for m in record["messages"] if m.get("role") == "user" and not m.get("tool_calls")]
    rows = []
    for turn, message in enumerate(turns):
        text = _text(message).replace(STOP_TOKEN, "").strip()
        if text:
            rows.append(
                {
                    **{k: row[k] for k in ("job", "model", "env", "split", "condition", "task_id", "trial")},
                    "turn": turn,
                    "affect_active": active.get(turn),
                    "text": text,
                }
            )
    return rows


def _condition(
    variant: str,
    intensity: Any,
    onset: Any,
    persona_set: str,
    intensities: set[str],
    onsets: set[str],
    sets: set[str],
    dynamics: Any = None,
    reacting: frozenset[str] = frozenset(),
) -> str:
    """The variant's name, with its intensity, onset, persona set and dynamics where the sweep has several."""
    parts = []
    if variant in intensities:
        parts.append(str(intensity))
    if variant in onsets:
        parts.append(f"onset{onset}")
    if variant in sets:
        parts.append(persona_set)
    if variant in reacting:
        parts.append(str(dynamics or STATIC))
    return f"{variant}@{','.join(parts)}" if parts else variant


def load_sweep(sweep_dir: Path) -> Sweep:
    job_rows: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    records_by_row: list[ConversationRecord] = []
    settings: dict[str, dict[str, Any]] = {}
    for job_dir in find_job_dirs(sweep_dir):
        name = str(job_dir.relative_to(sweep_dir))
        status = job_state(job_dir)
        job, progress, summary = status.job, status.progress, status.summary
        if progress is None:  # job.json is damaged: its conversations cannot be placed, leave them out
            job_rows.append({"job": name, "state": status.state, "detail": status.detail, "conversations": 0})
            continue
        run_seed = int(job.fingerprint.get("seed", 0)) if job else 0
        records = list(progress.records.values())
        info = job.info if job else {}
        simulator = info.get("user_simulator")
        if simulator is None and records:
            simulator = records[0].get("user_simulator")
        settings[name] = {**(job.fingerprint if job else {}), "user_simulator": simulator}
        job_rows.append(
            {
                "job": name,
                "state": status.state,
                "detail": status.detail,
                "model": info.get("model"),
                "backend": info.get("backend"),
                "env": info.get("env"),
                "variant": info.get("variant"),
                "conversations": len(records),
                "expected": _expected(progress, summary),
                "damaged_lines": len(progress.damaged),
                "set_aside_lines": progress.set_aside,
            }
        )
        for record in records:
            try:
                rows.append(_conversation_row(record, name, run_seed))
            except (KeyError, TypeError, ValueError) as error:
                raise ReportError(
                    f"{JobDir(job_dir).conversations}: task {record.get('task_id')!r} trial {record.get('trial')!r} "
                    f"is not a conversation record ({type(error).__name__}: {error})"
                ) from error
            records_by_row.append(record)
    conversations = pd.DataFrame(rows)
    jobs = pd.DataFrame(job_rows)
    if conversations.empty:
        return Sweep(conversations, pd.DataFrame(), jobs, settings)
    by_variant = conversations.groupby("variant")
    intensities = {v for v, n in by_variant["intensity"].nunique(dropna=False).items() if n > 1}
    onsets = {v for v, n in by_variant["onset_after_turns"].nunique(dropna=False).items() if n > 1}
    sets = {v for v, n in by_variant["persona_set"].nunique(dropna=False).items() if n > 1}
    reacting = frozenset(v for v, n in by_variant["dynamics"].nunique(dropna=False).items() if n > 1)
    conversations["condition"] = [
        _condition(v, i, o, p, intensities, onsets, sets, d, reacting)
        for v, i, o, p, d in zip(
            conversations["variant"],
            conversations["intensity"],
            conversations["onset_after_turns"],
            conversations["persona_set"],
            conversations["dynamics"],
            strict=True,
        )
    ]
    key = ["model", "env", "split", "condition", "run_seed", "task_id", "trial"]
    duplicated = conversations.duplicated(key, keep="last")
    turn_rows = [
        turn
        for keep, record, row in zip(
            ~duplicated, records_by_row, conversations.to_dict("records"), strict=True
        )
        if keep
        for turn in _user_turn_rows(record, row)
    ]
    conversations = conversations[~duplicated].reset_index(drop=True)
    conversations.attrs["duplicates_dropped"] = int(duplicated.sum())
    return Sweep(conversations, pd.DataFrame(turn_rows), jobs, settings)
