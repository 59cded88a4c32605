"""How much of each contrast's effect on success runs through each failure mechanism (exploratory).

On the pairs scored in both arms, with d = arm − baseline per pair: dY the difference in
success and dM_k the difference in mechanism k (a fault of that category, 0/1). The model is
dY = c + Σ_k b_k dM_k + e, fitted by least squares: a pair-fixed-effects linear model of success
on arm and mechanisms, so everything constant within a (task, trial) is removed. a_k = mean dM_k
is the arm's effect on the mechanism, a_k·b_k the effect through it, c the rest (direct), and
total = c + Σ a_k b_k is exactly the headline delta. share_k = a_k b_k / total.

Assumptions (not testable from these data): no unmeasured confounding of mechanism and success
given the arm and the pair; the mechanisms do not cause each other; effects are linear and
additive. `bias` is a sensitivity parameter: an unmeasured confounder that shifts b_k by `bias`
towards zero leaves a_k (b_k ∓ bias); `bias_to_zero` (= |b_k|) is the size of the confounding
that would explain the whole indirect effect away. Intervals: percentile bootstrap over tasks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.analysis.anatomy import CATEGORIES
from harness.report.contrasts import Comparisons
from harness.report.design import PAIR, Contrast
from harness.report.stats import MIN_TASKS_CI, NAN, percentile_ci

MECHANISMS = [f"fault_{c}" for c in CATEGORIES]
DEFAULT_BIAS = 0.1
MAX_RESAMPLES = 1000
"""Each bootstrap resample refits the model: at most this many, whatever `Options.resamples` says."""


def _differences(family: pd.DataFrame, contrast: Contrast) -> pd.DataFrame:
    scored = family[family["scored"]]
    columns = ["success", *MECHANISMS]

    def side(condition: str) -> pd.DataFrame:
        rows = scored[scored["condition"] == condition].set_index(PAIR)[columns].astype(float)
        return rows.assign(**{m: rows[m].gt(0).astype(float) for m in MECHANISMS})

    base, arm = side(contrast.baseline), side(contrast.condition)
    joined = arm.merge(base, left_index=True, right_index=True, suffixes=("_arm", "_base"))
    out = pd.DataFrame({c: joined[f"{c}_arm"] - joined[f"{c}_base"] for c in columns})
    return out.reset_index()


def _fit(dy: np.ndarray, dm: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Direct effect c, coefficients b and effects a of the mechanisms that vary (others: b = NaN)."""
    a = dm.mean(axis=0) if len(dm) else np.zeros(dm.shape[1])
    b = np.full(dm.shape[1], NAN)
    varying = [k for k in range(dm.shape[1]) if np.ptp(dm[:, k]) > 0] if len(dm) else []
    kept: list[int] = []
    for k in varying:  # drop a mechanism that moves exactly with others already in the model
        trial = np.column_stack([np.ones(len(dy)), dm[:, [*kept, k]]])
        if np.linalg.matrix_rank(trial) == trial.shape[1]:
            kept.append(k)
    design = np.column_stack([np.ones(len(dy)), dm[:, kept]])
    coefficients = np.linalg.lstsq(design, dy, rcond=None)[0] if len(dy) else np.array([NAN])
    b[kept] = np.where(np.abs(coefficients[1:]) < 1e-9, 0.0, coefficients[1:])  # least-squares round-off
    indirect = np.where(np.isnan(b), 0.0, a * np.nan_to_num(b))
    direct = float(dy.mean() - indirect.sum()) if len(dy) else NAN
    return (0.0 if abs(direct) < 1e-9 else direct), b, a


def mediation_table(comparisons: Comparisons, bias: float = DEFAULT_BIAS) -> pd.DataFrame:
    """One row per (contrast, mechanism that occurs in either arm), plus a `direct` row per contrast."""
    rng, resamples = comparisons.rng, min(comparisons.options.resamples, MAX_RESAMPLES)
    rows = []
    for contrast, family in comparisons.families():
        diffs = _differences(family, contrast)
        if diffs.empty:
            continue
        dy, dm = diffs["success"].to_numpy(), diffs[MECHANISMS].to_numpy()
        total = float(dy.mean())
        direct, b, a = _fit(dy, dm)
        tasks = diffs["task_id"].to_numpy()
        unique = np.unique(tasks)
        members = [np.flatnonzero(tasks == t) for t in unique]
        boot_indirect = np.full((resamples, len(MECHANISMS)), NAN)
        boot_share = np.full((resamples, len(MECHANISMS)), NAN)
        if len(unique) >= MIN_TASKS_CI:
            for r in range(resamples):
                picks = np.concatenate([members[i] for i in rng.integers(0, len(unique), len(unique))])
                _, rb, ra = _fit(dy[picks], dm[picks])
                effect = np.where(np.isnan(rb), 0.0, ra * np.nan_to_num(rb))
                boot_indirect[r] = effect
                boot_total = dy[picks].mean()
                boot_share[r] = effect / boot_total + 0.0 if boot_total != 0 else NAN
        for k, mechanism in enumerate(MECHANISMS):
            present = bool(np.any(dm[:, k] != 0)) or bool(diffs[mechanism].abs().sum())
            if not present:
                continue
            identified = not np.isnan(b[k])
            indirect = float(a[k] * b[k]) if identified else NAN
            low = high = share_low = share_high = NAN
            if len(unique) >= MIN_TASKS_CI and identified:
                low, high = percentile_ci(boot_indirect[:, k])
                finite = boot_share[:, k][np.isfinite(boot_share[:, k])]
                if finite.size:
                    share_low, share_high = percentile_ci(finite)
            shrunk = float(a[k] * (b[k] - np.sign(b[k]) * min(bias, abs(b[k])))) if identified else NAN
            rows.append(
                {
                    **contrast.key(),
                    "mechanism": mechanism.removeprefix("fault_"),
                    "tasks": len(unique),
                    "pairs": len(diffs),
                    "total": total,
                    "effect_on_mechanism": float(a[k]),
                    "mechanism_on_success": float(b[k]) if identified else NAN,
                    "indirect": indirect,
                    "ci_low": low,
                    "ci_high": high,
                    "share": indirect / total + 0.0 if identified and total != 0 else NAN,  # no -0.0
                    "share_ci_low": share_low,
                    "share_ci_high": share_high,
                    "bias_to_zero": abs(float(b[k])) if identified else NAN,
                    f"share_if_bias_{bias:g}": shrunk / total + 0.0 if identified and total != 0 else NAN,
                    "note": ""
                    if identified
                    else "moves with the arm or another mechanism in every pair: not separable",
                }
            )
        rows.append(
            {
                **contrast.key(),
                "mechanism": "direct (none of the above)",
                "tasks": len(unique),
                "pairs": len(diffs),
                "total": total,
                "indirect": direct,
                "share": direct / total + 0.0 if total != 0 else NAN,
                "note": "",
            }
        )
    return pd.DataFrame(rows)
