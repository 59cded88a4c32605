"""Deterministic fidelity as outcomes: rates per arm, paired deltas per contrast, and worst-case bounds.

Fidelity is affected by the emotion, so it is an outcome, never a filter: keeping only the
pairs where both sides were faithful selects on a consequence of the arm. The bounds instead
treat a conversation with a fidelity failure (an asked fact given wrong or withheld, an invented
fact) like an unscored one, and recount success in the worst case for each direction: the
arm's as failures with the baseline's as successes, and the reverse.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pandas as pd

from harness.report.contrasts import Comparisons, outcome_deltas
from harness.report.stats import NAN
from harness.report.tables import CELL, ordered

OUTCOMES = {
    "fact_wrong": "an identifying fact the agent asked for given wrong",
    "fact_withheld": "an identifying fact the agent asked for never given",
    "invented": "an identifying value stated that no instruction or earlier message holds",
    "authenticated": "an identity tool of the agent succeeded",
    "stop_goal_unmet": "the user stopped while the database goal was unmet",
}
"""Per-conversation 0/1 outcomes (record columns `fid_<name>`), NaN where unknown."""

OUTCOME_COLUMNS = [
    "model", "env", "split", "contrast", "outcome", "family", "tasks", "pairs", "baseline_rate",
    "variant_rate", "delta", "ci_low", "ci_high", "p_value", "p_holm", "note",
]  # fmt: skip
BOUND_COLUMNS = [
    "model", "env", "split", "contrast", "pairs", "baseline_unfaithful", "variant_unfaithful", "baseline_unknown",
    "variant_unknown", "delta_scored",
    "delta_worst_low", "ci_low_worst_low", "ci_high_worst_low", "delta_worst_high", "ci_low_worst_high",
    "ci_high_worst_high", "reading",
]  # fmt: skip


def fidelity_rates(conversations: pd.DataFrame) -> pd.DataFrame:
    """Per arm: facts asked and how they were given, and the rate of each outcome (over conversations where known)."""
    rows = []
    for key, cell in conversations.groupby(CELL):
        asked = int(cell["fid_facts_asked"].sum())
        row = dict(zip(CELL, key, strict=True))
        row.update(
            {
                "conversations": len(cell),
                "facts_asked": asked,
                "given_correctly": cell["fid_facts_correct"].sum() / asked if asked else NAN,
                "given_wrong": cell["fid_facts_wrong"].sum() / asked if asked else NAN,
                "withheld": cell["fid_facts_withheld"].sum() / asked if asked else NAN,
            }
        )
        for outcome in OUTCOMES:
            values = cell[f"fid_{outcome}"].astype(float)
            row[f"{outcome}_rate"] = float(values.mean()) if values.notna().any() else NAN
        row["unfaithful_rate"] = float(cell["fid_failure"].mean())
        rows.append(row)
    return ordered(pd.DataFrame(rows))


FIDELITY_COLUMNS = (*(f"fid_{o}" for o in OUTCOMES), "fid_failure")
"""The per-conversation fidelity columns each contrast's pairs carry for both sides."""


def fidelity_outcome_table(comparisons: Comparisons) -> pd.DataFrame:
    """Per contrast and outcome: the paired delta over the pairs where both sides are known; Holm per outcome."""
    table = outcome_deltas(comparisons, _known_outcomes, FIDELITY_COLUMNS, "outcome")
    return table[[c for c in [*OUTCOME_COLUMNS, "kind"] if c in table.columns]] if not table.empty else table


def _known_outcomes(
    pairs: pd.DataFrame,
) -> Iterator[tuple[dict[str, object], np.ndarray, np.ndarray, np.ndarray]]:
    """Each fidelity outcome over the pairs where both sides are known (no pairs: `paired_delta`'s note says so)."""
    for outcome in OUTCOMES:
        base, arm = pairs[f"fid_{outcome}_base"].astype(float), pairs[f"fid_{outcome}_arm"].astype(float)
        known = base.notna() & arm.notna()
        labels: dict[str, object] = {"outcome": outcome, "family": f"fidelity: {outcome}"}
        yield labels, pairs.loc[known, "task_id"].to_numpy(), base[known].to_numpy(), arm[known].to_numpy()


def _filled(pairs: pd.DataFrame, side: str, unknown_as: float) -> np.ndarray:
    known = pairs[f"scored_{side}"].astype(bool) & (pairs[f"fid_failure_{side}"] == 0)
    return np.where(known, pairs[f"success_{side}"], unknown_as).astype(float)


def _excludes_zero(low: float, high: float) -> int:
    if not (math.isfinite(low) and math.isfinite(high)):
        return 0
    return 1 if low > 0 else -1 if high < 0 else 0


def reading(row: dict[str, float]) -> str:
    """Whether the success difference survives the worst case for fidelity failures and unscored conversations."""
    low = _excludes_zero(row["ci_low_worst_low"], row["ci_high_worst_low"])
    high = _excludes_zero(row["ci_low_worst_high"], row["ci_high_worst_high"])
    span = f"worst case {row['delta_worst_low']:+.3f} to {row['delta_worst_high']:+.3f}"
    if row["baseline_unknown"] == 0 and row["variant_unknown"] == 0:
        return "nothing to bound: no fidelity failure and no unscored conversation in these pairs"
    if low == high != 0:
        return f"robust to fidelity failures ({span}, both intervals exclude 0)"
    if not math.isfinite(row["ci_low_worst_low"]):
        return f"n/a: too few tasks for intervals ({span})"
    return f"not robust to fidelity failures ({span})"


def fidelity_bounds(comparisons: Comparisons) -> pd.DataFrame:
    """Success delta with unfaithful and unscored conversations filled in the worst case for each direction."""
    rows = []
    for contrast, pairs in comparisons.pairs(FIDELITY_COLUMNS):
        if pairs.empty:
            continue
        tasks = pairs["task_id"].to_numpy()
        scored = pairs[pairs["scored_base"].astype(bool) & pairs["scored_arm"].astype(bool)]
        row: dict[str, object] = {
            **contrast.key(),
            "pairs": len(pairs),
            "baseline_unfaithful": float(pairs["fid_failure_base"].mean()),
            "variant_unfaithful": float(pairs["fid_failure_arm"].mean()),
            **{
                f"{side}_unknown": float(
                    (~(pairs[f"scored_{s}"].astype(bool) & (pairs[f"fid_failure_{s}"] == 0))).mean()
                )
                for side, s in (("baseline", "base"), ("variant", "arm"))
            },
            "delta_scored": float((scored["success_arm"] - scored["success_base"]).mean())
            if len(scored)
            else NAN,
        }
        for name, arm_as, base_as in (("worst_low", 0.0, 1.0), ("worst_high", 1.0, 0.0)):
            base, arm = _filled(pairs, "base", base_as), _filled(pairs, "arm", arm_as)
            result = comparisons.options.delta(tasks, base, arm, comparisons.rng)
            row[f"delta_{name}"] = result.delta
            row[f"ci_low_{name}"] = result.ci_low
            row[f"ci_high_{name}"] = result.ci_high
        row["reading"] = reading(row)  # type: ignore[arg-type]
        rows.append(row)
    table = pd.DataFrame(rows)
    return table[[c for c in [*BOUND_COLUMNS, "kind"] if c in table.columns]] if not table.empty else table
