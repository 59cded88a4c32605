"""Conditional logistic regression of success on the arm, stratified by task.

Conditioning on each task's number of successes removes the task's own difficulty from the
likelihood, so no distribution of task effects has to be assumed or approximated: the
variational mixed model it replaces gave intervals that covered the true log-odds in 84 % of
simulated sweeps, this one in 94-95 % (benchmarks/report_coverage.py).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import norm

from harness.report.stats import ALPHA, MIN_TASKS_TEST, NAN


@dataclass(frozen=True)
class OddsRatio:
    informative_tasks: int
    """Tasks with both a success and a failure: the only ones the conditional likelihood uses."""
    log_odds: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    odds_ratio: float
    note: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _na(informative: int, note: str) -> OddsRatio:
    return OddsRatio(informative, NAN, NAN, NAN, NAN, NAN, NAN, note)


def conditional_logit(tasks: np.ndarray, treated: np.ndarray, success: np.ndarray) -> OddsRatio:
    """Log-odds of success in the treated arm against the baseline, within tasks (Wald 95 % CI).

    Not fitted, with the reason, when fewer than MIN_TASKS_TEST tasks carry information or when
    the maximum-likelihood estimate is infinite (the treated arm never wins, or never loses, a
    comparison within a task).
    """
    from statsmodels.discrete.conditional_models import ConditionalLogit

    y = success.astype(float)
    x = treated.astype(float)
    _, index = np.unique(tasks, return_inverse=True)
    successes = np.bincount(index, weights=y)
    sizes = np.bincount(index)
    mixed = (successes > 0) & (successes < sizes)
    informative = int(mixed.sum())
    if informative < MIN_TASKS_TEST:
        return _na(
            informative, f"{informative} tasks with both outcomes: too few to fit (needs {MIN_TASKS_TEST})"
        )
    treated_wins = np.bincount(index, weights=x * y)  # successes in the treated arm
    treated_n = np.bincount(index, weights=x)
    base_wins = successes - treated_wins
    base_n = sizes - treated_n
    # a finite estimate needs a task where the treated arm succeeds while the baseline fails, and vice versa
    treated_ahead = np.any(mixed & (treated_wins > 0) & (base_n - base_wins > 0))
    base_ahead = np.any(mixed & (base_wins > 0) & (treated_n - treated_wins > 0))
    if not (treated_ahead and base_ahead):
        side = (
            "never succeeds where the baseline fails"
            if not treated_ahead
            else "never fails where the baseline succeeds"
        )
        return _na(informative, f"within every task the arm {side}: the odds ratio is infinite")
    keep = mixed[index]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = ConditionalLogit(y[keep], x[keep][:, None], groups=index[keep]).fit(disp=0)
    except Exception as error:  # a degenerate design must not stop the report
        return _na(informative, f"fit failed ({type(error).__name__}: {error})")
    estimate, se = float(fit.params[0]), float(fit.bse[0])
    if not (np.isfinite(estimate) and np.isfinite(se) and se > 0):
        return _na(informative, "the fit did not converge to a finite estimate")
    z = norm.ppf(1 - ALPHA / 2)
    return OddsRatio(
        informative_tasks=informative,
        log_odds=estimate,
        se=se,
        ci_low=estimate - z * se,
        ci_high=estimate + z * se,
        p_value=float(2 * norm.sf(abs(estimate / se))),
        odds_ratio=float(np.exp(estimate)),
        note="",
    )
