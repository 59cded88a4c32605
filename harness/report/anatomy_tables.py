"""Failure anatomy and agent behaviour per arm, and their paired contrasts (secondary outcomes).

Each measure is compared between an arm and its baseline exactly as success is in the headline:
the pairs scored on both sides, `paired_delta` (task bootstrap, sign-flip test, simultaneous
intervals), the same guards, and Holm across the contrasts of one kind — one Holm family per
(kind, measure). A measure is a rate (the share of conversations with at least one such fault,
or with the flag) or a mean per conversation; `..._to_resolution` means are over the pairs solved in
both arms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.analysis.anatomy import CATEGORIES
from harness.report.contrasts import Comparisons
from harness.report.design import FAMILY, PAIR, condition_order
from harness.report.stats import MIN_TASKS_TEST, NAN, holm_within, percentile_ci, task_bootstrap
from harness.report.tables import CELL


@dataclass(frozen=True)
class Measure:
    name: str
    column: str
    rate: bool
    """True: the share of conversations where `column` > 0; False: the mean of `column`."""
    source: str
    """Where it comes from: `anatomy`, `record`, or `lexicon (proxy)`."""
    solved_only: bool = False
    """Counted on successful conversations only (effort to resolution)."""


MEASURES = [
    *(Measure(c, f"fault_{c}", True, "anatomy") for c in CATEGORIES),
    Measure("user_turns", "user_turns", False, "record"),
    Measure("user_turns_to_resolution", "user_turns", False, "record", solved_only=True),
    Measure("tool_calls", "tool_calls", False, "record"),
    Measure("tool_calls_to_resolution", "tool_calls", False, "record", solved_only=True),
    Measure("tool_errors", "tool_errors", False, "record"),
    Measure("agent_words_per_turn", "agent_words_per_turn", False, "record"),
    Measure("apologies", "apologies_lexicon", False, "lexicon (proxy)"),
    Measure("refusals", "refusals_lexicon", False, "lexicon (proxy)"),
    Measure("gave_in_after_refusal", "gave_in", True, "lexicon (proxy) + anatomy"),
]
"""Every secondary measure, in the order the report lists them."""

JUDGED_MEASURES = [
    Measure("apologies_judged", "apologies_judged", False, "judge"),
    Measure("empathy_judged", "empathy_judged", False, "judge"),
    Measure("refusals_judged", "refusals_judged", False, "judge"),
]
"""The agent's acts as the judge reads them (`harness.report.agent_acts`): listed when a judge judged them."""

GAVE_IN_SOURCES = {
    frozenset({"lexicon"}): "lexicon (proxy) + anatomy",
    frozenset({"judge"}): "judge + anatomy",
    frozenset({"judge", "lexicon"}): "judge where judged, else lexicon (proxy) + anatomy",
}


def measure_pairs(scored: pd.DataFrame, measure: Measure) -> pd.DataFrame:
    """Of a contrast's pairs scored on both sides (`paired_arms` with the measure's column), those with
    the measure known on both: `task_id`, `base`, `arm`."""

    def side(suffix: str) -> pd.Series:
        column = scored[f"{measure.column}_{suffix}"].astype(float)
        if measure.solved_only:
            column = column.where(scored[f"success_{suffix}"] == 1)
        return column.gt(0).astype(float).where(column.notna()) if measure.rate else column

    measured = scored[PAIR].assign(base=side("base"), arm=side("arm"))
    return measured.dropna().reset_index(drop=True)


def _source(measure: Measure, scored: pd.DataFrame) -> str:
    if measure.column != "gave_in" or scored.empty:
        return measure.source
    used = frozenset(scored["gave_in_source_base"]) | frozenset(scored["gave_in_source_arm"])
    return GAVE_IN_SOURCES.get(used, measure.source)


def secondary_table(comparisons: Comparisons) -> pd.DataFrame:
    """One row per (contrast, measure): the paired difference with its intervals, Holm per (kind, measure).
    The judged measures are listed when the conversations carry the judge's counts."""
    measures = [*MEASURES, *(JUDGED_MEASURES if "apologies_judged" in comparisons.conversations else [])]
    columns = sorted({m.column for m in measures} | {"gave_in_source"})
    prepared = []
    for contrast, pairs in comparisons.pairs(columns):
        scored = pairs[pairs["scored_base"] & pairs["scored_arm"]]
        for measure in measures:
            prepared.append((contrast, measure, measure_pairs(scored, measure), _source(measure, scored)))
    sizes: dict[tuple[str, str], int] = {}
    for contrast, measure, pairs, _ in prepared:
        key = (contrast.kind, measure.name)
        sizes[key] = sizes.get(key, 0) + int(pairs["task_id"].nunique() >= MIN_TASKS_TEST)
    rows = []
    for contrast, measure, pairs, source in prepared:
        result = comparisons.options.delta(
            pairs["task_id"].to_numpy(),
            pairs["base"].to_numpy(),
            pairs["arm"].to_numpy(),
            comparisons.rng,
            comparisons=max(sizes[(contrast.kind, measure.name)], 1),
        )
        row: dict[str, object] = {
            **contrast.key(),
            "measure": measure.name,
            "scale": "rate" if measure.rate else "mean",
            "source": source,
            **result.as_dict(),
        }
        for column in ("variant_only", "baseline_only", "mcnemar_p") if not measure.rate else ():
            row[column] = NAN  # counts of 0/1 pairs: meaningless for a mean
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    holm_within(table, ["kind", "measure"])
    table["detected"] = (table["ci_low"] > 0) | (table["ci_high"] < 0)
    return table


def anatomy_by_arm(conversations: pd.DataFrame, rng: np.random.Generator, resamples: int) -> pd.DataFrame:
    """Per arm: scored conversations, failure rate, the rate of each fault category, concession rate's CI."""
    scored = conversations[conversations["scored"]]
    rows = []
    for key, cell in scored.groupby(CELL, sort=False):
        row: dict[str, object] = dict(zip(CELL, key, strict=True))
        row["scored"] = len(cell)
        row["failure_rate"] = float((cell["success"] == 0).mean())
        for category in CATEGORIES:
            row[category] = float(cell[f"fault_{category}"].gt(0).mean())
        concession = cell["fault_concession"].gt(0).to_numpy(float)
        low = high = NAN
        if cell["task_id"].nunique() >= 2:
            low, high = percentile_ci(task_bootstrap(cell["task_id"].to_numpy(), concession, rng, resamples))
        row["concession_ci_low"], row["concession_ci_high"] = low, high
        row["gave_in_after_refusal"] = float(cell["gave_in"].gt(0).mean())
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    order = {c: i for i, c in enumerate(condition_order(list(table["condition"])))}
    return table.sort_values(
        [*FAMILY, "condition"], key=lambda c: c.map(order) if c.name == "condition" else c
    )


def main_fault_shares(conversations: pd.DataFrame) -> pd.DataFrame:
    """Per arm, the share of scored conversations that failed, split by the category that names their failure (`Anatomy.main_fault`)."""
    scored = conversations[conversations["scored"]]
    failed = scored[scored["success"] == 0].assign(
        main_fault=lambda f: f["main_fault"].replace("", "no fault found")
    )
    counts = failed.groupby([*CELL, "main_fault"]).size().rename("failed").reset_index()
    totals = scored.groupby(CELL).size().rename("scored").reset_index()
    shares = counts.merge(totals, on=CELL)
    return shares.assign(share=shares["failed"] / shares["scored"])
