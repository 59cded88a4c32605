"""Who played the user and graded the conversation, and what served the agent, per contrast.

A contrast whose simulated user is the agent's own model confounds the agent's ability with the
simulator's; arms served by different engine versions or GPU types, or, on an API, by different
model versions (the response's `model`), by disjoint sets of `system_fingerprint`s (OpenAI's name
for the configuration behind a reply: several serve at once, so only arms that share none are
marked), or at times that do not overlap (the model behind an endpoint may change), may differ for
reasons other than the variant. None of these refuses a comparison; each is marked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from harness.episode.record import ConversationRecord
from harness.report.design import FAMILY, Contrast
from harness.store import DamagedFile, find_job_dirs, read_job_file

API_BACKENDS = ("openai", "openai_responses", "anthropic", "gemini")


def job_infos(sweep_dir: Path) -> dict[str, dict[str, Any]]:
    """Per job directory (relative to the sweep): its `job.json` info."""
    infos: dict[str, dict[str, Any]] = {}
    for job_dir in find_job_dirs(sweep_dir):
        try:
            job = read_job_file(job_dir)
        except DamagedFile:
            continue
        if job is not None:
            infos[str(job_dir.relative_to(sweep_dir))] = job.info
    return infos


def _own_user(info: dict[str, Any]) -> bool:
    """The agent's model plays the user; a plumbing check's scripted user is no model's ability."""
    if info.get("plumbing_check"):
        return False
    simulator = info.get("user_simulator") or {}
    return simulator.get("model") == info.get("model") and simulator.get("backend") == info.get("backend")


def _span(rows: pd.DataFrame) -> tuple[float, float]:
    started = pd.to_numeric(rows["started_at"], errors="coerce")
    ended = started + pd.to_numeric(rows["duration_s"], errors="coerce").fillna(0)
    return float(started.min()), float(ended.max())


def _served(rows: pd.DataFrame, column: str) -> set[str]:
    if column not in rows.columns:
        return set()
    return {value for joined in rows[column].dropna() for value in str(joined).split(";") if value}


def independence_table(
    conversations: pd.DataFrame, contrasts: list[Contrast], infos: dict[str, dict[str, Any]]
) -> pd.DataFrame:
    families = dict(tuple(conversations.groupby(FAMILY)))
    rows = []
    for contrast in contrasts:
        family = families[contrast.family]
        sides = {
            side: family[family["condition"] == condition]
            for side, condition in (("baseline", contrast.baseline), ("variant", contrast.condition))
        }
        jobs = {side: [infos.get(job, {}) for job in rows["job"].unique()] for side, rows in sides.items()}
        all_infos = jobs["baseline"] + jobs["variant"]
        engines = {str((i.get("engine") or {}).get("vllm_version")) for i in all_infos if i.get("engine")}
        gpus = {str((i.get("engine") or {}).get("gpu")) for i in all_infos if i.get("engine")}
        api = any(i.get("backend") in API_BACKENDS for i in all_infos)
        (b_start, b_end), (v_start, v_end) = _span(sides["baseline"]), _span(sides["variant"])
        overlap = not (b_end < v_start or v_end < b_start)
        users = {str((i.get("user_simulator") or {}).get("model")) for i in all_infos}
        served = {side: _served(rows, "served_models") for side, rows in sides.items()}
        prints = {side: _served(rows, "system_fingerprints") for side, rows in sides.items()}
        warnings = []
        own = any(_own_user(i) for i in all_infos)
        if own:
            warnings.append(
                "the simulated user is the agent's own model: agent and simulator ability are confounded"
            )
        if len(engines) > 1:
            warnings.append(f"arms served by different vLLM versions ({', '.join(sorted(engines))})")
        if len(gpus) > 1:
            warnings.append(f"arms served on different GPU types ({', '.join(sorted(gpus))})")
        if served["baseline"] and served["variant"] and served["baseline"] != served["variant"]:
            warnings.append(
                f"arms answered by different model versions (baseline {', '.join(sorted(served['baseline']))}; "
                f"variant {', '.join(sorted(served['variant']))})"
            )
        if prints["baseline"] and prints["variant"] and not prints["baseline"] & prints["variant"]:
            warnings.append(
                "arms share no system_fingerprint: the provider changed what serves the model between them"
            )
        if api and not overlap:
            warnings.append(
                "API backend and the arms did not run at overlapping times: the model behind it may have changed"
            )
        rows.append(
            {
                **contrast.key(),
                "user_model": ",".join(sorted(users)),
                "user_is_agent_model": own,
                "vllm_versions": ",".join(sorted(engines)) or "unknown",
                "gpus": ",".join(sorted(gpus)) or "unknown",
                "served_models": ",".join(sorted(served["baseline"] | served["variant"])) or "unknown",
                "system_fingerprints": len(prints["baseline"] | prints["variant"]),
                "api_backend": api,
                "arms_overlap_in_time": overlap,
                "warning": "; ".join(warnings),
            }
        )
    return pd.DataFrame(rows)


def independence_lines(table: pd.DataFrame) -> list[str]:
    if table.empty:
        return []
    marked = table[table["warning"] != ""]
    return [f"{r.model}/{r.env}/{r.split} {r.contrast}: {r.warning}" for r in marked.itertuples()]


def nl_assertion_tasks(conversations: pd.DataFrame) -> pd.DataFrame:
    """Per (model, env, split): the tasks whose reward rests on τ²'s NL assertions (an LLM judge's verdicts)."""
    if "nl_assertion_scored" not in conversations.columns:
        return pd.DataFrame()
    judged = conversations[conversations["nl_assertion_scored"].eq(True)]
    if judged.empty:
        return pd.DataFrame()
    return (
        judged.groupby(FAMILY)["task_id"]
        .agg(lambda ids: ", ".join(map(str, sorted(set(ids)))))
        .rename("tasks_scored_on_nl_assertions")
        .reset_index()
    )


def nl_assertion_scored(record: ConversationRecord) -> bool:
    """Whether the record's reward counted τ²'s NL assertions."""
    info = record.get("reward_info") or {}
    basis = info.get("reward_basis") or []
    return bool(info.get("nl_assertions")) and any("NL_ASSERTION" in str(b).upper() for b in basis)
