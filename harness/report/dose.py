"""Dose-response: success against the emotion's intensity, with neutral as dose 0.

The trend is the least-squares slope of success on dose within tasks (task fixed effects), in
points per intensity step; its interval resamples tasks, and its test permutes the dose labels
among each task's conversations (under no trend they are exchangeable).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.episode.variants import INTENSITIES
from harness.report.design import FAMILY, NEUTRAL, arm_kinds, arms
from harness.report.stats import (
    MIN_TASKS_CI,
    MIN_TASKS_TEST,
    NAN,
    bootstrap_sums,
    holm,
    percentile_ci,
    task_bootstrap,
)


def doses(family: pd.DataFrame, emotion: str) -> dict[str, int]:
    """Condition -> dose: every neutral arm 0, the emotion's arms 1.. in the order of `INTENSITIES`."""
    result = {}
    for condition, (variant, intensity) in arms(family).items():
        if variant == NEUTRAL:
            result[condition] = 0
        elif variant == emotion and intensity in INTENSITIES:
            result[condition] = INTENSITIES.index(intensity) + 1
    return result


def slope_sums(tasks: np.ndarray, dose: np.ndarray, success: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per task: Σ (dose − task mean dose)·success and Σ (dose − task mean dose)²."""
    _, index = np.unique(tasks, return_inverse=True)
    counts = np.bincount(index)
    centred = dose - (np.bincount(index, weights=dose) / counts)[index]
    return np.bincount(index, weights=centred * success), np.bincount(index, weights=centred**2)


def trend_p(
    tasks: np.ndarray, dose: np.ndarray, success: np.ndarray, rng: np.random.Generator, permutations: int
) -> float:
    """Two-sided test of no trend: doses permuted among each task's conversations."""
    order = np.argsort(tasks, kind="stable")
    tasks, dose, success = tasks[order], dose[order], success[order]
    sxy, _ = slope_sums(tasks, dose, success)
    observed = abs(sxy.sum()) - 1e-9
    # within a task the mean dose is fixed under permutation: only Σ dose·success moves
    base = float(dose @ success) - sxy.sum()
    hits = 0
    _, group = np.unique(tasks, return_inverse=True)
    for _ in range(permutations):
        shuffled = dose[np.lexsort((rng.random(dose.size), group))]
        hits += abs(float(shuffled @ success) - base) >= observed
    return (hits + 1) / (permutations + 1)


def dose_tables(
    conversations: pd.DataFrame, rng: np.random.Generator, resamples: int = 2000, permutations: int = 2000
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(success per dose, one trend row per emotion) for every (model, env, split)."""
    points, trends = [], []
    scored = conversations[conversations["scored"]]
    for key, family in scored.groupby(FAMILY):
        kinds = arm_kinds(family)  # a dose is an emotion's (or a cognitive variant's) intensity
        variants = {v for c, (v, _) in arms(family).items() if kinds[c] in ("emotion", "cognitive")}
        for emotion in sorted(variants):
            mapping = doses(family, emotion)
            data = family[family["condition"].isin(list(mapping))]
            dose = data["condition"].map(mapping).to_numpy(float)
            for level in sorted(set(dose)):
                at = data[dose == level]
                low = high = NAN
                if at["task_id"].nunique() >= MIN_TASKS_CI:
                    low, high = percentile_ci(
                        task_bootstrap(at["task_id"].to_numpy(), at["success"].to_numpy(), rng, resamples)
                    )
                points.append(
                    {
                        **dict(zip(FAMILY, key, strict=True)),
                        "emotion": emotion,
                        "dose": int(level),
                        "arm": NEUTRAL if level == 0 else INTENSITIES[int(level) - 1],
                        "conversations": len(at),
                        "success_rate": float(at["success"].mean()),
                        "ci_low": low,
                        "ci_high": high,
                    }
                )
            trends.append(
                {
                    **dict(zip(FAMILY, key, strict=True)),
                    "emotion": emotion,
                    **_trend(data, dose, rng, resamples, permutations),
                }
            )
    trend_table = pd.DataFrame(trends)
    if not trend_table.empty:
        trend_table["p_holm"] = holm(trend_table["p_value"].tolist())
    return pd.DataFrame(points), trend_table


def judged_dose_table(
    conversations: pd.DataFrame, rng: np.random.Generator, resamples: int = 2000, permutations: int = 2000
) -> pd.DataFrame:
    """Success against the *measured* dose: each conversation's mean judged intensity (0–3) over active turns.

    The same arms as the prompted dose-response (neutral and the emotion's intensities), the same
    within-task slope, CI and permutation test, with `judged_intensity` as the dose: the effect of the
    emotion the user expressed, beside the effect of the prompt.
    """
    rows = []
    scored = conversations[conversations["scored"] & conversations["judged_intensity"].notna()]
    for key, family in scored.groupby(FAMILY):
        kinds = arm_kinds(family)
        for emotion in sorted(
            {v for c, (v, _) in arms(family).items() if kinds[c] in ("emotion", "cognitive")}
        ):
            data = family[family["condition"].isin(list(doses(family, emotion)))]
            dose = data["judged_intensity"].to_numpy(float)
            rows.append(
                {
                    **dict(zip(FAMILY, key, strict=True)),
                    "emotion": emotion,
                    "conversations": len(data),
                    "mean_judged_intensity": float(dose.mean()) if dose.size else NAN,
                    **_trend(data, dose, rng, resamples, permutations, measured=True),
                }
            )
    table = pd.DataFrame(rows)
    if not table.empty:
        table = table.drop(columns=["doses"])
        table["p_holm"] = holm(table["p_value"].tolist())
    return table


def _trend(
    data: pd.DataFrame,
    dose: np.ndarray,
    rng: np.random.Generator,
    resamples: int,
    permutations: int,
    measured: bool = False,
) -> dict[str, object]:
    levels = sorted(set(dose))
    tasks = data["task_id"].to_numpy()
    row: dict[str, object] = {
        "doses": ",".join(str(int(d)) for d in levels),
        "tasks": int(data["task_id"].nunique()),
        "slope": NAN,
        "ci_low": NAN,
        "ci_high": NAN,
        "p_value": NAN,
        "intercept": NAN,
        "note": "",
    }
    emotion_levels = [d for d in levels if d > 0]
    if measured and len(levels) < 2:
        row["note"] = "every conversation has the same judged intensity: no dose to compare"
        return row
    if not measured and len(emotion_levels) < 2:
        row["note"] = (
            "one intensity of this emotion: sweep variant.intensity=low,medium,high for a dose-response"
        )
        return row
    if 0 not in levels and not measured:
        row["note"] = "no neutral arm: the trend runs over the intensities only"
    success = data["success"].to_numpy(float)
    sxy, sxx = slope_sums(tasks, dose, success)
    if sxx.sum() == 0:
        row["note"] = "no task has conversations at two doses"
        return row
    slope = float(sxy.sum() / sxx.sum())
    row["slope"] = slope
    row["intercept"] = float(success.mean() - slope * dose.mean())
    n_tasks = len(sxx)
    if n_tasks >= MIN_TASKS_CI:
        row["ci_low"], row["ci_high"] = percentile_ci(bootstrap_sums(sxy, sxx, rng, resamples))
    if n_tasks < MIN_TASKS_TEST:
        row["note"] = f"{n_tasks} tasks: too few for a trend test (needs {MIN_TASKS_TEST})"
    elif not np.any(sxy) and len(set(success)) == 1:
        row["note"] = "every conversation has the same outcome: nothing to test"
    else:
        row["p_value"] = trend_p(tasks, dose, success, rng, permutations)
    return row
