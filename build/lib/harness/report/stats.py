"""Paired statistics for variant-versus-control comparisons, resampled and permuted by task.

Conversations of one task share its difficulty, so tasks, not conversations, are the
independent units: the bootstrap resamples tasks and the permutation test flips the sign of
a whole task's differences.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import binomtest

EXACT_PERMUTATION_MAX_TASKS = 12
"""Up to this many tasks with a non-zero difference every sign pattern is enumerated; beyond, sampled."""


@dataclass(frozen=True)
class PairedDelta:
    tasks: int
    pairs: int
    control_rate: float
    variant_rate: float
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    variant_only: int
    """Pairs where the variant succeeded and control failed."""
    control_only: int
    """Pairs where control succeeded and the variant failed."""
    mcnemar_p: float
    """Exact McNemar test on the pairs; NaN unless each task has one pair (one trial)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _task_sums(tasks: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _, index = np.unique(tasks, return_inverse=True)
    return np.bincount(index, weights=values), np.bincount(index).astype(float)


def task_bootstrap(
    tasks: np.ndarray, values: np.ndarray, rng: np.random.Generator, resamples: int = 2000
) -> np.ndarray:
    """Bootstrap distribution of the mean of `values`, resampling whole tasks with replacement."""
    sums, counts = _task_sums(tasks, values.astype(float))
    picks = rng.integers(0, len(sums), size=(resamples, len(sums)))
    return sums[picks].sum(axis=1) / counts[picks].sum(axis=1)


def percentile_ci(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


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
    signs = rng.choice((1.0, -1.0), size=(permutations, d.size))
    hits = int(np.sum(np.abs(signs @ d) >= observed))
    return (hits + 1) / (permutations + 1)


def mcnemar_exact_p(variant_only: int, control_only: int) -> float:
    discordant = variant_only + control_only
    return 1.0 if discordant == 0 else float(binomtest(variant_only, discordant, 0.5).pvalue)


def paired_delta(
    tasks: np.ndarray,
    control: np.ndarray,
    variant: np.ndarray,
    rng: np.random.Generator,
    resamples: int = 2000,
    permutations: int = 20000,
) -> PairedDelta:
    """Variant minus control over pairs of 0/1 outcomes on the same (task, trial)."""
    control = control.astype(float)
    variant = variant.astype(float)
    difference = variant - control
    if difference.size == 0:
        nan = float("nan")
        return PairedDelta(0, 0, nan, nan, nan, nan, nan, nan, 0, 0, nan)
    low, high = percentile_ci(task_bootstrap(tasks, difference, rng, resamples))
    per_task, _ = _task_sums(tasks, difference)
    variant_only = int(np.sum((variant == 1) & (control == 0)))
    control_only = int(np.sum((variant == 0) & (control == 1)))
    return PairedDelta(
        tasks=len(per_task),
        pairs=int(difference.size),
        control_rate=float(control.mean()),
        variant_rate=float(variant.mean()),
        delta=float(difference.mean()),
        ci_low=low,
        ci_high=high,
        p_value=sign_flip_p(per_task, rng, permutations),
        variant_only=variant_only,
        control_only=control_only,
        # with several trials per task the pairs are not independent, and McNemar would overstate
        mcnemar_p=mcnemar_exact_p(variant_only, control_only)
        if len(per_task) == difference.size
        else float("nan"),
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
