"""The judge's tables: judged emotions, the manipulation test, fidelity, clean success deltas (agreement and
the validity of the manipulation check: `judge_validity`).

The baseline of every comparison is `neutral` where the sweep has it, else `control`; pairs are the
same (run seed, task, trial), intervals resample tasks and p-values flip the sign of whole tasks,
as in the rest of the report.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from harness.judge.schema import EMOTIONS, NO_EMOTION
from harness.report.design import CONTROL, FAMILY, NEUTRAL, PAIR
from harness.report.judgments import FLAGS, KEY
from harness.report.stats import holm, paired_delta, percentile_ci, task_bootstrap

CELL = [*FAMILY, "condition"]
BASELINES = (NEUTRAL, CONTROL)


def baseline_of(conditions: list[str]) -> str | None:
    return next((b for b in BASELINES if b in conditions), None)


def _arms(frame: pd.DataFrame) -> Iterator[tuple[Any, pd.DataFrame, str, list[str]]]:
    """Each family that has a baseline: its key, its rows, the baseline and the other conditions."""
    for key, family in frame.groupby(FAMILY):
        conditions = sorted(set(family["condition"]))
        baseline = baseline_of(conditions)
        if baseline is not None:
            yield key, family, baseline, [c for c in conditions if c != baseline]


def _own_emotion(condition: str) -> str | None:
    base = condition.split("@")[0]
    return base if base in EMOTIONS and base not in (NO_EMOTION, "other") else None


def paired(
    tasks: np.ndarray, baseline: np.ndarray, variant: np.ndarray, rng: np.random.Generator, resamples: int
) -> dict[str, Any]:
    """Variant minus baseline over pairs of per-conversation values: the headline's `paired_delta`,
    with its minimum-task guards (n/a and the reason in `note`, never a p of 1 when nothing differs)."""
    result = paired_delta(tasks, baseline, variant, rng, resamples, permutations=20000)
    fields = (
        "tasks",
        "pairs",
        "baseline_rate",
        "variant_rate",
        "delta",
        "ci_low",
        "ci_high",
        "p_value",
        "mde",
    )
    return {**{name: getattr(result, name) for name in fields}, "note": result.note}


def _with_holm(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    if frame.empty:
        return frame
    frame["p_holm"] = np.nan
    for _, index in frame.groupby(by).groups.items():
        frame.loc[index, "p_holm"] = holm(frame.loc[index, "p_value"].tolist())
    return frame


def judged_turns(turns: pd.DataFrame, conversations: pd.DataFrame) -> pd.DataFrame:
    """The judge's turns with their conversation's cell, pair key and onset."""
    facts = conversations[[*KEY, *CELL, "run_seed", "onset_after_turns"]]
    merged = turns.merge(facts, on=KEY, how="inner")
    merged["onset_after_turns"] = merged["onset_after_turns"].fillna(0).astype(int)
    return merged


def emotion_table(turns: pd.DataFrame) -> pd.DataFrame:
    """Per cell: active turns judged, and the share of them judged as each emotion."""
    active = turns[turns["turn"] >= turns["onset_after_turns"]]
    if active.empty:
        return pd.DataFrame()
    shares = pd.crosstab([active[c] for c in CELL], active["emotion"], normalize="index")
    shares = shares.reindex(columns=list(EMOTIONS), fill_value=0.0)
    shares.columns.name = None
    shares.insert(0, "active_turns", active.groupby(CELL).size())
    return shares.reset_index()


def intensity_table(turns: pd.DataFrame, rng: np.random.Generator, resamples: int) -> pd.DataFrame:
    active = turns[turns["turn"] >= turns["onset_after_turns"]]
    rows = []
    for key, cell in active.groupby(CELL):
        low, high = percentile_ci(
            task_bootstrap(cell["task_id"].to_numpy(), cell["intensity"].to_numpy(), rng, resamples)
        )
        rows.append(
            {**dict(zip(CELL, key, strict=True)), "active_turns": len(cell),
             "mean_intensity": cell["intensity"].mean(), "ci_low": low, "ci_high": high}
        )  # fmt: skip
    return pd.DataFrame(rows)


def _share_per_conversation(turns: pd.DataFrame, emotion: str, onset: int) -> pd.Series:
    scored = turns[turns["turn"] >= onset]
    return (scored["emotion"] == emotion).groupby([scored[c] for c in PAIR]).mean()


def manipulation_table(turns: pd.DataFrame, rng: np.random.Generator, resamples: int) -> pd.DataFrame:
    """Per variant: the share of its active turns judged as its own emotion, minus the baseline's, paired.

    The baseline's turns are taken from the variant's onset on, so both sides score the same positions.
    """
    rows = []
    for key, family, baseline, conditions in _arms(turns):
        base_turns = family[family["condition"] == baseline]
        for condition in conditions:
            emotion = _own_emotion(condition)
            if emotion is None:
                continue
            own = family[family["condition"] == condition]
            onset = int(own["onset_after_turns"].max())
            pairs = pd.concat(
                {
                    "baseline": _share_per_conversation(base_turns, emotion, onset),
                    "variant": _share_per_conversation(own, emotion, onset),
                },
                axis=1,
                join="inner",
            ).reset_index()
            result = paired(
                pairs["task_id"].to_numpy(),
                pairs["baseline"].to_numpy(),
                pairs["variant"].to_numpy(),
                rng,
                resamples,
            )
            rows.append(
                {**dict(zip(FAMILY, key, strict=True)), "condition": condition, "emotion": emotion,
                 "baseline": baseline, **result}
            )  # fmt: skip
    frame = _with_holm(pd.DataFrame(rows), FAMILY)
    if not frame.empty:
        frame["took_effect"] = (frame["ci_low"] > 0) & (frame["p_holm"] < 0.05)
    return frame


def fidelity_table(judged: pd.DataFrame) -> pd.DataFrame:
    """Per cell: conversations judged, judge errors, and the share of valid ones with each flag."""
    rows = []
    for key, cell in judged.groupby(CELL):
        valid = cell[cell["valid"]]
        rows.append(
            {
                **dict(zip(CELL, key, strict=True)),
                "judged": len(cell),
                "judge_errors": int((~cell["valid"]).sum()),
                **{
                    f"errors_{kind}": int((cell["error_kind"] == kind).sum())
                    for kind in sorted(set(judged["error_kind"].dropna()))
                },
                **{
                    f"{kind}_rate": valid[f"flag_{kind}"].mean() if len(valid) else float("nan")
                    for kind in FLAGS
                },
            }
        )
    return pd.DataFrame(rows)


def _pairs(family: pd.DataFrame, baseline: str, condition: str, column: str) -> pd.DataFrame:
    base = family[family["condition"] == baseline].set_index(PAIR)[column]
    variant = family[family["condition"] == condition].set_index(PAIR)[column]
    return pd.concat({"baseline": base, "variant": variant}, axis=1, join="inner").dropna().reset_index()


def judge_error_deltas(judged: pd.DataFrame, rng: np.random.Generator, resamples: int) -> pd.DataFrame:
    """Per arm: how often the judge gave no valid answer, and its paired difference from the baseline."""
    frame = judged.assign(judge_error=(~judged["valid"].astype(bool)).astype(float))
    rows = []
    for key, family, baseline, conditions in _arms(frame):
        for condition in conditions:
            pairs = _pairs(family, baseline, condition, "judge_error")
            rows.append(
                {**dict(zip(FAMILY, key, strict=True)), "condition": condition, "baseline": baseline,
                 **paired(pairs["task_id"].to_numpy(), pairs["baseline"].to_numpy(),
                          pairs["variant"].to_numpy(), rng, resamples)}
            )  # fmt: skip
    return _with_holm(pd.DataFrame(rows), FAMILY)


def fidelity_deltas(judged: pd.DataFrame, rng: np.random.Generator, resamples: int) -> pd.DataFrame:
    rows = []
    for key, family, baseline, conditions in _arms(judged[judged["valid"]]):
        for condition in conditions:
            for kind in FLAGS:
                pairs = _pairs(family, baseline, condition, f"flag_{kind}")
                rows.append(
                    {**dict(zip(FAMILY, key, strict=True)), "condition": condition, "flag": kind,
                     "baseline": baseline,
                     **paired(pairs["task_id"].to_numpy(), pairs["baseline"].to_numpy(),
                              pairs["variant"].to_numpy(), rng, resamples)}
                )  # fmt: skip
    return _with_holm(pd.DataFrame(rows), [*FAMILY, "flag"])


def clean_success_deltas(judged: pd.DataFrame, rng: np.random.Generator, resamples: int) -> pd.DataFrame:
    """Success deltas over all scored pairs, and again over pairs where both sides are fidelity-clean."""
    scored = judged[judged["scored"]]
    rows = []
    for key, family, baseline, conditions in _arms(scored):
        clean = family[family["valid"] & (family["flag_any"] == 0)]
        for condition in conditions:
            every = _pairs(family, baseline, condition, "success")
            kept = _pairs(clean, baseline, condition, "success")
            primary = paired(every["task_id"].to_numpy(), every["baseline"].to_numpy(),
                             every["variant"].to_numpy(), rng, resamples)  # fmt: skip
            sensitivity = paired(kept["task_id"].to_numpy(), kept["baseline"].to_numpy(),
                                 kept["variant"].to_numpy(), rng, resamples)  # fmt: skip
            rows.append(
                {
                    **dict(zip(FAMILY, key, strict=True)),
                    "condition": condition,
                    "baseline": baseline,
                    "pairs": primary["pairs"],
                    "delta": primary["delta"],
                    "ci_low": primary["ci_low"],
                    "ci_high": primary["ci_high"],
                    "clean_pairs": sensitivity["pairs"],
                    "clean_delta": sensitivity["delta"],
                    "clean_ci_low": sensitivity["ci_low"],
                    "clean_ci_high": sensitivity["ci_high"],
                    "clean_p_value": sensitivity["p_value"],
                }
            )
    return pd.DataFrame(rows)
