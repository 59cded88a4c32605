"""Agreement and classification quality of ratings, with intervals that resample whole conversations.

The turns of one conversation are rated from one text and share its context, so conversations, not
turns, are the independent units: every interval here is a percentile bootstrap over conversations.
Krippendorff's α (the `krippendorff` package) takes any number of raters and missing ratings and has
a level of measurement (nominal emotion, ordinal intensity); the weighted κ (statsmodels, quadratic
weights) is the familiar two-rater figure for an ordinal scale.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from harness.report.stats import NAN, percentile_ci

Level = Literal["nominal", "ordinal", "interval", "ratio"]
"""Krippendorff's level of measurement."""


def _codes(values: pd.Series, categories: Sequence[object] | None) -> tuple[np.ndarray, list[object]]:
    """Ratings as float codes (NaN where missing), in the order of `categories` when given."""
    present = values.dropna()
    labels = list(categories) if categories is not None else sorted(set(present), key=str)
    index = {label: float(i) for i, label in enumerate(labels)}
    return np.array([index.get(v, np.nan) if pd.notna(v) else np.nan for v in values], dtype=float), labels


def reliability_matrix(
    ratings: pd.DataFrame, item: str, rater: str, value: str, categories: Sequence[object] | None = None
) -> tuple[np.ndarray, list[object], np.ndarray]:
    """(raters × items matrix of codes, the categories, each column's item key) from long ratings."""
    wide = ratings.pivot_table(index=rater, columns=item, values=value, aggfunc="first", dropna=False)
    codes, labels = _codes(pd.Series(wide.to_numpy().ravel()), categories)
    return codes.reshape(wide.shape), labels, wide.columns.to_numpy()


def alpha(matrix: np.ndarray, level: Level, categories: int) -> float:
    """Krippendorff's α of a raters × items matrix of codes 0..categories-1 (NaN: not rated)."""
    import krippendorff

    pairable = np.sum(~np.isnan(matrix), axis=0) >= 2
    data = matrix[:, pairable]
    if data.shape[1] == 0 or len(np.unique(data[~np.isnan(data)])) < 2:
        return NAN  # no item rated twice, or one value only: expected disagreement is 0
    return float(
        krippendorff.alpha(
            reliability_data=data, level_of_measurement=level, value_domain=list(range(categories))
        )
    )


def weighted_kappa(
    first: np.ndarray, second: np.ndarray, categories: int, weights: str | None = "quadratic"
) -> float:
    """Cohen's κ of two raters' codes 0..categories-1; `weights` None (nominal), linear or quadratic."""
    from statsmodels.stats.inter_rater import cohens_kappa

    keep = ~(np.isnan(first) | np.isnan(second))
    a, b = first[keep].astype(int), second[keep].astype(int)
    if a.size == 0:
        return NAN
    table = np.zeros((categories, categories))
    np.add.at(table, (a, b), 1)
    expected = float(np.outer(table.sum(1), table.sum(0)).trace()) / a.size**2
    if np.isclose(expected, 1.0):
        return NAN  # both raters gave one and the same label throughout: chance agreement is 1
    return float(cohens_kappa(table, wt=weights, return_results=False))


def cluster_bootstrap(
    clusters: np.ndarray,
    statistic: Callable[[np.ndarray], float],
    rng: np.random.Generator,
    resamples: int,
) -> tuple[float, float]:
    """Percentile CI of `statistic(indices)`, the indices drawn by resampling whole clusters."""
    _, group = np.unique(clusters, return_inverse=True)
    members = [np.flatnonzero(group == g) for g in range(group.max() + 1)] if group.size else []
    if len(members) < 2:
        return NAN, NAN
    values = []
    for _ in range(resamples):
        drawn = rng.integers(0, len(members), len(members))
        value = statistic(np.concatenate([members[d] for d in drawn]))
        if np.isfinite(value):
            values.append(value)
    if len(values) < resamples / 2:
        return NAN, NAN  # most resamples had no defined value (one category only)
    return percentile_ci(np.asarray(values))


def with_ci(
    clusters: np.ndarray,
    statistic: Callable[[np.ndarray], float],
    rng: np.random.Generator,
    resamples: int,
    name: str,
) -> dict[str, float]:
    """`{name, name_ci_low, name_ci_high}`: the statistic on every item and its conversation bootstrap CI."""
    every = np.arange(len(clusters))
    low, high = cluster_bootstrap(clusters, statistic, rng, resamples)
    return {name: statistic(every), f"{name}_ci_low": low, f"{name}_ci_high": high}


def ratio_of_sums(numerator: np.ndarray, denominator: np.ndarray) -> Callable[[np.ndarray], float]:
    """Statistic Σ numerator / Σ denominator over the drawn items (a rate pooled over conversations)."""

    def statistic(index: np.ndarray) -> float:
        total = denominator[index].sum()
        return float(numerator[index].sum() / total) if total else NAN

    return statistic


def f1_scores(truth: np.ndarray, predicted: np.ndarray, label: object) -> tuple[float, float, float]:
    """(precision, recall, F1) of `predicted` against `truth` for one label; NaN where undefined."""
    hit = float(np.sum((truth == label) & (predicted == label)))
    said, real = float(np.sum(predicted == label)), float(np.sum(truth == label))
    precision = hit / said if said else NAN
    recall = hit / real if real else NAN
    f1 = 2 * hit / (said + real) if said + real else NAN
    return precision, recall, f1
