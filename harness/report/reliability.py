"""Agreement and classification quality of ratings, with intervals that resample whole conversations.

The turns of one conversation are rated from one text and share its context, so conversations, not
turns, are the independent units: every interval here is a percentile bootstrap over conversations.
Krippendorff's α takes any number of raters and missing ratings and has a level of measurement
(nominal emotion, ordinal intensity). It is computed here from its coincidence matrix because the
coincidences of separate conversations add up: a bootstrap resample is a weighted sum of
per-conversation matrices, thousands of times faster than recomputing α from the ratings (the
`krippendorff` package took 44 ms per α on 10,000 turns); the tests check it against that package.
The weighted κ (statsmodels, quadratic weights) is the familiar two-rater figure for an ordinal scale.
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


def coincidences(matrix: np.ndarray, clusters: np.ndarray, categories: int) -> np.ndarray:
    """Krippendorff's coincidence matrix of each cluster (clusters × categories × categories).

    A unit with m ≥ 2 ratings adds n_c·n_k/(m−1) to cell (c, k) (n_c(n_c−1)/(m−1) on the diagonal),
    where n_c counts its ratings of category c; units rated once add nothing. Coincidences add up
    over units, so a bootstrap over clusters is a weighted sum of these matrices.
    """
    _, group = np.unique(clusters, return_inverse=True)
    counts = np.zeros((matrix.shape[1], categories))
    rated = ~np.isnan(matrix)
    units, _ = np.nonzero(rated.T)
    np.add.at(counts, (units, matrix.T[rated.T].astype(int)), 1)
    pairable = counts.sum(axis=1)
    keep = pairable >= 2
    counts, pairable, group = counts[keep], pairable[keep], group[keep]
    per_unit = counts[:, :, None] * counts[:, None, :] - np.einsum("uc,ck->uck", counts, np.eye(categories))
    per_unit /= (pairable - 1)[:, None, None]
    out = np.zeros((int(group.max()) + 1 if group.size else 0, categories, categories))
    np.add.at(out, group, per_unit)
    return out


def alpha_from_coincidences(coincidence: np.ndarray, level: Level) -> float:
    """Krippendorff's α = 1 − D_o/D_e from one coincidence matrix (NaN where D_e is 0)."""
    marginals = coincidence.sum(axis=1)
    total = marginals.sum()
    categories = len(marginals)
    index = np.arange(categories)
    if level == "nominal":
        delta = (index[:, None] != index[None, :]).astype(float)
    elif level == "ordinal":
        cumulative = np.concatenate([[0.0], np.cumsum(marginals)])
        low, high = np.minimum.outer(index, index), np.maximum.outer(index, index)
        between = cumulative[high + 1] - cumulative[low]
        delta = (between - (marginals[low] + marginals[high]) / 2) ** 2
    else:  # interval and ratio on the codes 0..k-1 as numbers
        delta = (index[:, None] - index[None, :]).astype(float) ** 2
    expected = float(marginals @ delta @ marginals)
    if total < 2 or expected == 0:
        return NAN  # no unit rated twice, or one value only: expected disagreement is 0
    return float(1.0 - (total - 1) * float((coincidence * delta).sum()) / expected)


def alpha(matrix: np.ndarray, level: Level, categories: int) -> float:
    """Krippendorff's α of a raters × items matrix of codes 0..categories-1 (NaN: not rated)."""
    per_item = np.arange(matrix.shape[1])
    return alpha_from_coincidences(coincidences(matrix, per_item, categories).sum(axis=0), level)


def alpha_with_ci(
    matrix: np.ndarray,
    clusters: np.ndarray,
    level: Level,
    categories: int,
    rng: np.random.Generator,
    resamples: int,
    name: str = "alpha",
) -> dict[str, float]:
    """α with a percentile CI resampling clusters (conversations): `{name, name_ci_low, name_ci_high}`."""
    per_cluster = coincidences(matrix, clusters, categories)
    value = alpha_from_coincidences(per_cluster.sum(axis=0), level) if len(per_cluster) else NAN
    low = high = NAN
    if len(per_cluster) >= 2:
        draws = rng.multinomial(len(per_cluster), np.full(len(per_cluster), 1 / len(per_cluster)), resamples)
        values = np.array(
            [
                alpha_from_coincidences(m, level)
                for m in np.einsum("rc,cij->rij", draws.astype(float), per_cluster)
            ]
        )
        values = values[np.isfinite(values)]
        if values.size >= resamples / 2:
            low, high = percentile_ci(values)
    return {name: value, f"{name}_ci_low": low, f"{name}_ci_high": high}


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
