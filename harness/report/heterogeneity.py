"""Does the primary effect differ between tasks? Spread, a test, leave-one-task-out, the worst tasks.

Per primary contrast on the pairs scored in both arms: each task's effect (its mean difference in
success over trials), their spread (standard deviation and interquartile range), a test of
heterogeneity, the headline delta recomputed leaving each task out, and the tasks where the arm
loses most, each with the viewer's side-by-side link to one of its pairs.

The test's statistic is the variance of the per-task effects; under homogeneity every pair's
difference is drawn from one distribution, so the reference distribution redraws each task's
pairs from the pooled differences. With one trial per task a task's effect is one pair and the
test has no power (it says so).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.report.contrasts import Comparisons
from harness.report.design import PAIR, PRIMARY, Contrast
from harness.report.stats import MIN_TASKS_TEST, NAN, task_sums
from harness.view.links import PAGE, side_by_side_link

WORST_SHOWN = 3


def _pairs(family: pd.DataFrame, contrast: Contrast) -> pd.DataFrame:
    scored = family[family["scored"]]
    base = scored[scored["condition"] == contrast.baseline][[*PAIR, "success", "job"]]
    arm = scored[scored["condition"] == contrast.condition][[*PAIR, "success", "job"]]
    return arm.merge(base, on=PAIR, suffixes=("_arm", "_base"))


def heterogeneity_tables(comparisons: Comparisons, draws: int = 2000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per primary contrast, the worst tasks of each); `draws` redraws for the test."""
    rng = comparisons.rng
    rows, worst_rows = [], []
    for contrast, family in comparisons.families(PRIMARY):
        pairs = _pairs(family, contrast)
        if pairs.empty:
            continue
        difference = (pairs["success_arm"] - pairs["success_base"]).to_numpy(float)
        tasks = pairs["task_id"].to_numpy()
        sums, counts = task_sums(tasks, difference)
        effects = sums / counts
        unique = np.unique(tasks)
        row: dict[str, object] = {
            **contrast.key(),
            "tasks": len(unique),
            "delta": float(difference.mean()),
            "task_effect_sd": float(np.std(effects, ddof=1)) if len(effects) > 1 else NAN,
            "task_effect_iqr": float(np.subtract(*np.percentile(effects, [75, 25]))),
            "tasks_hurt": int((effects < 0).sum()),
            "tasks_helped": int((effects > 0).sum()),
            "heterogeneity_p": NAN,
            "note": "",
        }
        if counts.max() < 2:
            row["note"] = "one pair per task: heterogeneity cannot be told from chance (run more trials)"
        elif len(unique) < MIN_TASKS_TEST:
            row["note"] = f"{len(unique)} tasks: too few for a test"
        elif np.ptp(difference) == 0:
            row["note"] = "every pair has the same difference: no heterogeneity"
        else:
            observed = np.var(effects)
            index = np.repeat(np.arange(len(counts)), counts.astype(int))
            null = np.empty(draws)
            for d in range(draws):
                drawn = rng.choice(difference, size=len(index))
                null[d] = np.var(np.bincount(index, weights=drawn) / counts)
            row["heterogeneity_p"] = float((np.sum(null >= observed - 1e-12) + 1) / (draws + 1))
        total, n = sums.sum(), counts.sum()
        left_out = (total - sums) / np.where(n - counts > 0, n - counts, np.nan)
        row["loo_min"], row["loo_max"] = float(np.nanmin(left_out)), float(np.nanmax(left_out))
        swing = np.abs(left_out - total / n)
        row["loo_most_influential_task"] = int(unique[int(np.nanargmax(swing))])
        row["loo_same_sign"] = bool(np.all(np.sign(left_out[np.isfinite(left_out)]) == np.sign(total / n)))
        rows.append(row)
        for t in np.argsort(effects, kind="stable")[:WORST_SHOWN]:
            if effects[t] >= 0:
                break
            task_pairs = pairs[pairs["task_id"] == unique[t]]
            lost = task_pairs[task_pairs["success_arm"] < task_pairs["success_base"]].iloc[0]
            worst_rows.append(
                {
                    **contrast.key(),
                    "task_id": int(unique[t]),
                    "task_effect": float(effects[t]),
                    "pairs": int(counts[t]),
                    "trial": int(lost["trial"]),
                    "side_by_side": side_by_side_link(
                        str(lost["job_base"]), str(lost["job_arm"]), int(unique[t]), int(lost["trial"]), PAGE
                    ),
                }
            )
    return pd.DataFrame(rows), pd.DataFrame(worst_rows)
