"""Reactive users (`variant.dynamics`): reactive − static success, escalation paths, de-escalation.

A reactive user's intensity moves with what the agent does (`harness.episode.dynamics`); each of its
messages records the intensity it was written at. Per conversation, the path is the last message's
rung minus the first's (low 0, medium 1, high 2): > 0 escalated, < 0 calmed. The de-escalation
rate — the share of reactive conversations that end calmer than they began — is an agent's
measure: how often it talks an upset customer down. These tables are secondary (not in the
headline's family) and are shown only for sweeps with reactive arms.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from harness.episode.dynamics import LADDER
from harness.episode.record import ConversationRecord
from harness.report.design import FAMILY
from harness.report.render import Section
from harness.report.stats import NAN, holm, paired_delta

STATIC = "static"
PAIR_KEY = ["run_seed", "task_id", "trial"]


def reactive_columns(record: ConversationRecord) -> dict[str, Any]:
    """A conversation row's dynamics: its name (`static` when it never moves), first and last intensity, path."""
    levels = [
        str(c["intensity"])
        for c in record.get("calls") or []
        if c.get("role") == "user" and c.get("intensity")
    ]
    dynamics = record.get("dynamics") or STATIC
    if dynamics == STATIC or not levels or any(level not in LADDER for level in levels):
        return {
            "dynamics": dynamics,
            "initial_intensity": None,
            "final_intensity": None,
            "intensity_path": NAN,
        }
    return {
        "dynamics": dynamics,
        "initial_intensity": levels[0],
        "final_intensity": levels[-1],
        "intensity_path": float(LADDER.index(levels[-1]) - LADDER.index(levels[0])),
    }


def _wilson(successes: int, n: int) -> tuple[float, float]:
    if n == 0:
        return NAN, NAN
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(successes, n, alpha=0.05, method="wilson")
    return float(low), float(high)


def _reactive(conversations: pd.DataFrame) -> pd.DataFrame:
    if "dynamics" not in conversations:
        return conversations.iloc[0:0]
    return conversations[(conversations["dynamics"] != STATIC) & conversations["intensity_path"].notna()]


def reactive_vs_static(
    conversations: pd.DataFrame, rng: np.random.Generator, resamples: int, permutations: int
) -> pd.DataFrame:
    """Per emotion and starting intensity: reactive − static success over the same (task, trial) pairs."""
    rows: list[dict[str, Any]] = []
    scored = conversations[conversations["scored"]]
    for key, family in scored.groupby(FAMILY):
        reacting = _reactive(family)
        for (variant, intensity, dynamics), arm in reacting.groupby(["variant", "intensity", "dynamics"]):
            static = family[
                (family["variant"] == variant)
                & (family["intensity"] == intensity)
                & (family["dynamics"] == STATIC)
            ]
            if static.empty:
                continue
            pairs = arm.merge(static, on=PAIR_KEY, suffixes=("", "_static"))
            rows.append(
                {
                    **dict(zip(FAMILY, map(str, key), strict=True)),
                    "contrast": f"{variant}@{intensity},{dynamics} − {variant}@{intensity},{STATIC}",
                    "pairs": pairs,
                }
            )
    if not rows:
        return pd.DataFrame()
    family_size = len(rows)
    table = []
    for row in rows:
        pairs = row.pop("pairs")
        delta = paired_delta(
            pairs["task_id"].to_numpy(),
            pairs["success_static"].to_numpy(),
            pairs["success"].to_numpy(),
            rng,
            resamples,
            permutations,
            comparisons=family_size,
        )
        table.append(
            {
                **row,
                "tasks": delta.tasks,
                "pairs": delta.pairs,
                "static": delta.baseline_rate,
                "reactive": delta.variant_rate,
                "delta": delta.delta,
                "ci_low": delta.ci_low,
                "ci_high": delta.ci_high,
                "p_value": delta.p_value,
                "note": delta.note,
            }
        )
    frame = pd.DataFrame(table)
    frame["p_holm"] = holm(frame["p_value"].tolist())
    return frame


def escalation_paths(conversations: pd.DataFrame) -> pd.DataFrame:
    """Per reactive arm: how the intensity moved (mean path, escalated / unchanged / calmed shares), by outcome."""
    reacting = _reactive(conversations)
    rows = []
    for (model, env, split, condition), arm in reacting.groupby([*FAMILY, "condition"]):
        path = arm["intensity_path"]
        scored = arm[arm["scored"]]
        rows.append(
            {
                "model": model,
                "env": env,
                "split": split,
                "condition": condition,
                "conversations": len(arm),
                "mean_path": float(path.mean()),
                "escalated": float((path > 0).mean()),
                "unchanged": float((path == 0).mean()),
                "calmed": float((path < 0).mean()),
                "mean_path_success": float(scored.loc[scored["success"] == 1, "intensity_path"].mean()),
                "mean_path_failure": float(scored.loc[scored["success"] == 0, "intensity_path"].mean()),
            }
        )
    return pd.DataFrame(rows)


def deescalation_rates(conversations: pd.DataFrame) -> pd.DataFrame:
    """Per agent model: the share of reactive conversations that end calmer than they began (Wilson 95%)."""
    reacting = _reactive(conversations)
    rows = []
    for model, arm in reacting.groupby("model"):
        calmed = int((arm["intensity_path"] < 0).sum())
        escalated = int((arm["intensity_path"] > 0).sum())
        low, high = _wilson(calmed, len(arm))
        rows.append(
            {
                "model": model,
                "conversations": len(arm),
                "deescalation_rate": calmed / len(arm),
                "ci_low": low,
                "ci_high": high,
                "escalation_rate": escalated / len(arm),
            }
        )
    return pd.DataFrame(rows)


def success_by_path(conversations: pd.DataFrame) -> pd.DataFrame:
    """Success of scored reactive conversations by where the intensity went (Wilson 95%)."""
    reacting = _reactive(conversations)
    reacting = reacting[reacting["scored"]]
    rows = []
    for (model, condition), arm in reacting.groupby(["model", "condition"]):
        for path_name, chosen in (
            ("escalated", arm["intensity_path"] > 0),
            ("unchanged", arm["intensity_path"] == 0),
            ("calmed", arm["intensity_path"] < 0),
        ):
            subset = arm[chosen]
            successes = int(subset["success"].sum())
            low, high = _wilson(successes, len(subset))
            rows.append(
                {
                    "model": model,
                    "condition": condition,
                    "path": path_name,
                    "conversations": len(subset),
                    "success": successes / len(subset) if len(subset) else NAN,
                    "ci_low": low,
                    "ci_high": high,
                }
            )
    return pd.DataFrame(rows)


def dynamics_tables(
    conversations: pd.DataFrame, rng: np.random.Generator, resamples: int, permutations: int
) -> dict[str, pd.DataFrame]:
    if _reactive(conversations).empty:
        return {}
    return {
        "reactive_vs_static": reactive_vs_static(conversations, rng, resamples, permutations),
        "escalation_paths": escalation_paths(conversations),
        "deescalation_rates": deescalation_rates(conversations),
        "success_by_path": success_by_path(conversations),
    }


def dynamics_section(tables: dict[str, pd.DataFrame]) -> list[Section]:
    if not tables:
        return []
    versus = tables["reactive_vs_static"]
    return [
        Section(
            "Users who react to the agent (secondary, not in the declared family)",
            "A reactive user's intensity moves after each agent turn by the rules of its dynamics "
            "(conf/variant/dynamics/): it escalates on repeated questions, tool errors, refusals, transfer "
            "attempts and long replies without progress, and calms on an apology with progress and on the "
            "change it asked for. Reactive − static compares the same emotion at the same starting intensity "
            "over the same (task, trial) pairs (95% CI by task bootstrap; p by sign-flip permutation, Holm over "
            "the rows). Path = last message's rung − first's (low 0, medium 1, high 2).",
            versus if not versus.empty else None,
            subsections=[
                Section(
                    "De-escalation rate per agent model",
                    "Share of reactive conversations that end calmer than they began (Wilson 95% interval); "
                    "the escalation rate beside it.",
                    tables["deescalation_rates"],
                ),
                Section("Escalation path per arm, by outcome", "", tables["escalation_paths"]),
                Section(
                    "Success by escalation path",
                    "Observational: the path is itself a consequence of what the agent did, so this shows "
                    "association, not the path's effect.",
                    tables["success_by_path"],
                ),
            ],
        )
    ]
