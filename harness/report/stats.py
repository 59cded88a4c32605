"""Paired statistics for comparisons between two arms, resampled and permuted by task.

Conversations of one task share its difficulty, so tasks, not conversations, are the
independent units: the bootstrap resamples tasks and the permutation test flips the sign of
a whole task's differences. Where a sample is too small for a method, the result is NaN with
the reason in `note`, never a made-up number.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binomtest, norm

ALPHA = 0.05
POWER = 0.80
EXACT_PERMUTATION_MAX_TASKS = 12
"""Up to this many tasks with a non-zero difference every sign pattern is enumerated; beyond, sampled."""
MIN_TASKS_TEST = 6
"""Below this many tasks no sign pattern can reach p < 0.05 (the smallest exact p is 2/2^tasks)."""
MIN_TASKS_CI = 10
"""Below this many tasks a bootstrap over tasks says little about the spread of the estimate."""
TAIL_SAMPLES = 50
"""Bootstrap resamples wanted beyond each end of a (simultaneous) percentile interval."""

NAN = float("nan")


@dataclass(frozen=True)
class PairedDelta:
    tasks: int
    pairs: int
    baseline_rate: float
    """The baseline arm's rate over the pairs (control, neutral, ... whichever the contrast names)."""
    variant_rate: float
    delta: float
    ci_low: float
    ci_high: float
    sim_ci_low: float
    """Bounds of the simultaneous interval (percentile bootstrap at level 1 − α/m)."""
    sim_ci_high: float
    p_value: float
    mde: float
    """Minimum detectable effect at 80% power and α = 0.05 (two-sided), from the per-task variance."""
    mde_adjusted: float
    """The same at α/m: the effect the family-corrected test would detect."""
    variant_only: int
    """Pairs where the variant succeeded and the baseline failed."""
    baseline_only: int
    """Pairs where the baseline succeeded and the variant failed."""
    mcnemar_p: float
    """Exact McNemar test on the pairs; NaN unless each task has one pair (one trial)."""
    note: str
    """Why a figure is NaN (too few tasks, no difference at all), empty when every figure is there."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def task_sums(tasks: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per task (in sorted task order): the sum of `values` and the number of values."""
    _, index = np.unique(tasks, return_inverse=True)
    return np.bincount(index, weights=values), np.bincount(index).astype(float)


def bootstrap_sums(
    sums: np.ndarray,
    counts: np.ndarray,
    rng: np.random.Generator,
    resamples: int,
    strata: np.ndarray | None = None,
) -> np.ndarray:
    """Bootstrap distribution of sum(values)/count, resampling whole tasks (within each stratum)."""
    out = np.empty(resamples)
    groups = (
        [np.arange(len(sums))] if strata is None else [np.flatnonzero(strata == s) for s in np.unique(strata)]
    )
    chunk = max(1, 2_000_000 // max(len(sums), 1))
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        total = np.zeros(size)
        count = np.zeros(size)
        for members in groups:
            picks = members[rng.integers(0, len(members), size=(size, len(members)))]
            total += sums[picks].sum(axis=1)
            count += counts[picks].sum(axis=1)
        out[start : start + size] = total / count
    return out


def task_bootstrap(
    tasks: np.ndarray, values: np.ndarray, rng: np.random.Generator, resamples: int = 2000
) -> np.ndarray:
    """Bootstrap distribution of the mean of `values`, resampling whole tasks with replacement."""
    sums, counts = task_sums(tasks, values.astype(float))
    return bootstrap_sums(sums, counts, rng, resamples)


def percentile_ci(samples: np.ndarray, level: float = 1 - ALPHA) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def resamples_for(level: float, resamples: int) -> int:
    """Enough resamples that each tail of a percentile interval at `level` holds TAIL_SAMPLES."""
    return max(resamples, math.ceil(TAIL_SAMPLES / ((1 - level) / 2)))


def sign_flip_p(task_differences: np.ndarray, rng: np.random.Generator, permutations: int = 20000) -> float:
    """Two-sided paired permutation test: under no effect, each task's difference is as likely negated."""
    d = task_differences[task_differences != 0].astype(float)
    if d.size == 0:
        return 1.0
    observed = abs(d.sum()) - 1e-9
    if d.size <= EXACT_PERMUTATION_MAX_TASKS:
        patterns = np.arange(2**d.size)[:, None] >> np.arange(d.size)
        signs = 1.0 - 2.0 * (patterns & 1)
        return float(np.mean(np.abs(signs @ d) >= observed))
    hits = 0
    chunk = max(1, 2_000_000 // d.size)
    for start in range(0, permutations, chunk):
        signs = rng.choice((1.0, -1.0), size=(min(chunk, permutations - start), d.size))
        hits += int(np.sum(np.abs(signs @ d) >= observed))
    return (hits + 1) / (permutations + 1)


def mcnemar_exact_p(variant_only: int, baseline_only: int) -> float:
    discordant = variant_only + baseline_only
    return 1.0 if discordant == 0 else float(binomtest(variant_only, discordant, 0.5).pvalue)


def mde(task_means: np.ndarray, alpha: float = ALPHA, power: float = POWER) -> float:
    """Smallest true difference a two-sided test at `alpha` detects with `power`, from the spread of tasks."""
    if task_means.size < 2:
        return NAN
    se = float(np.std(task_means, ddof=1)) / math.sqrt(task_means.size)
    return (norm.ppf(1 - alpha / 2) + norm.ppf(power)) * se


def test_note(tasks: int, differing: int) -> str:
    """Why no p-value is given, or "" when the sign-flip test can run."""
    if tasks < MIN_TASKS_TEST:
        return f"{tasks} tasks: too few for a test (the smallest possible p is {2 / 2**tasks:.3g})"
    if differing == 0:
        return "every task has the same result in both arms: nothing to test"
    return ""


def paired_delta(
    tasks: np.ndarray,
    baseline: np.ndarray,
    variant: np.ndarray,
    rng: np.random.Generator,
    resamples: int = 2000,
    permutations: int = 20000,
    comparisons: int = 1,
    strata: np.ndarray | None = None,
) -> PairedDelta:
    """Variant minus baseline over pairs of 0/1 outcomes on the same (task, trial).

    `comparisons` is the size m of the family the comparison belongs to: the simultaneous
    interval is at level 1 − α/m (Bonferroni) and `mde_adjusted` at α/m. `strata` (one label
    per pair, constant within a task) makes the bootstrap resample tasks within each stratum.
    """
    baseline = baseline.astype(float)
    variant = variant.astype(float)
    difference = variant - baseline
    if difference.size == 0:
        return PairedDelta(0, 0, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, 0, 0, NAN, "no pairs")
    sums, counts = task_sums(tasks, difference)
    means = sums / counts
    variant_only = int(np.sum((variant == 1) & (baseline == 0)))
    baseline_only = int(np.sum((variant == 0) & (baseline == 1)))
    n_tasks = len(sums)
    notes = []
    ci_low = ci_high = sim_low = sim_high = NAN
    if n_tasks < MIN_TASKS_CI:
        notes.append(f"{n_tasks} tasks: too few for a bootstrap interval (needs {MIN_TASKS_CI})")
    else:
        level = 1 - ALPHA / max(comparisons, 1)
        task_strata = None
        if strata is not None:
            _, first = np.unique(tasks, return_index=True)
            task_strata = np.asarray(strata)[first]
        samples = bootstrap_sums(sums, counts, rng, resamples_for(level, resamples), task_strata)
        ci_low, ci_high = percentile_ci(samples)
        sim_low, sim_high = percentile_ci(samples, level)
    why_no_test = test_note(n_tasks, int(np.count_nonzero(sums)))
    if why_no_test:
        notes.append(why_no_test)
    p_value = NAN if why_no_test else sign_flip_p(sums, rng, permutations)
    spread = NAN if n_tasks < MIN_TASKS_TEST else mde(means)
    spread_adjusted = NAN if n_tasks < MIN_TASKS_TEST else mde(means, ALPHA / max(comparisons, 1))
    if n_tasks >= MIN_TASKS_TEST and not np.any(means != means[0]):
        spread = spread_adjusted = NAN  # no spread between tasks to size the test from
        if means[0] != 0:
            notes.append("every task differs by the same amount: no spread to size the test from")
    return PairedDelta(
        tasks=n_tasks,
        pairs=int(difference.size),
        baseline_rate=float(baseline.mean()),
        variant_rate=float(variant.mean()),
        delta=float(difference.mean()),
        ci_low=ci_low,
        ci_high=ci_high,
        sim_ci_low=sim_low,
        sim_ci_high=sim_high,
        p_value=p_value,
        mde=spread,
        mde_adjusted=spread_adjusted,
        variant_only=variant_only,
        baseline_only=baseline_only,
        # with several trials per task the pairs are not independent, and McNemar would overstate
        mcnemar_p=mcnemar_exact_p(variant_only, baseline_only) if n_tasks == difference.size else NAN,
        note="; ".join(dict.fromkeys(notes)),
    )


def holm(p_values: list[float]) -> list[float]:
    """Holm-adjusted p-values (statsmodels); NaN entries stay NaN and do not count as tests."""
    from statsmodels.stats.multitest import multipletests

    values = np.asarray(p_values, dtype=float)
    adjusted = np.full(values.shape, np.nan)
    finite = np.isfinite(values)
    if finite.any():
        adjusted[finite] = multipletests(values[finite], method="holm")[1]
    return adjusted.tolist()


def holm_within(
    table: pd.DataFrame, by: str | list[str] | None, raw: str = "p_value", adjusted: str = "p_holm"
) -> None:
    """Holm over the `raw` p-values of each group of `by` (the whole table when None), written into `adjusted`."""
    table[adjusted] = NAN
    for index in table.groupby(by).groups.values() if by else [table.index]:
        table.loc[index, adjusted] = holm(table.loc[index, raw].tolist())


def label_permutation_p(
    values: np.ndarray, labels: np.ndarray, rng: np.random.Generator, permutations: int = 10000
) -> float:
    """Two-sided test that the mean of `values` is the same under both labels (True/False), by permuting labels."""
    labels = labels.astype(bool)
    observed = abs(values[labels].mean() - values[~labels].mean()) - 1e-12
    n_true = int(labels.sum())
    keys = rng.random((permutations, values.size))
    picks = np.argsort(keys, axis=1)[:, :n_true]
    chosen = values[picks].sum(axis=1)
    rest = values.sum() - chosen
    diffs = np.abs(chosen / n_true - rest / (values.size - n_true))
    return float((np.sum(diffs >= observed) + 1) / (permutations + 1))
