"""Sample-size planning: variance of a paired success difference, the MDE per planned trial count, its cost.

For a paired contrast over T tasks with n trials per arm, the report's test works on each task's
mean difference D_t. Its variance across tasks is σ_b² + σ_w²/n: σ_b² is the between-task
variance of the true effect (task difficulty itself cancels in the pairing), σ_w² the
within-task variance of one pair's difference, p_arm(1 − p_arm) + p_base(1 − p_base) averaged over
tasks. The MDE at power 1 − β and family size m (Holm's first step, α/m) is then
(z_{1−α/2m} + z_{1−β}) · sqrt((σ_b² + σ_w²/n) / T), the formula of `harness.report.stats.mde`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit
from scipy.stats import norm

from harness.report.contrasts import contrast_pairs
from harness.report.design import FAMILY, PRIMARY, plan

POWER = 0.80


@dataclass(frozen=True)
class Variance:
    tasks: int
    between_effect: float
    """σ_b²: between-task variance of the true paired difference."""
    within: float
    """σ_w²: within-task variance of one pair's difference."""
    difficulty: float
    """Between-task variance of success itself (information: it cancels in the paired difference)."""
    source: str


def _unbiased(p: pd.Series, n: pd.Series) -> pd.Series:
    return (p * (1 - p) * n / (n - 1)).where(n > 1)


def pilot_variance(conversations: pd.DataFrame) -> Variance | None:
    """σ_b² and σ_w² from a pilot's primary contrasts (every contrast when it has none), pooled over contrasts."""
    contrasts, _ = plan(conversations)
    chosen = [c for c in contrasts if c.kind == PRIMARY] or contrasts
    within, between, difficulty, tasks = [], [], [], []
    for _, pairs in contrast_pairs(conversations, chosen, set()):
        pairs = pairs[pairs["scored_base"] & pairs["scored_arm"]]
        per_task = pairs.groupby("task_id").agg(
            n=("trial", "size"), base=("success_base", "mean"), arm=("success_arm", "mean")
        )
        per_task = per_task[per_task["n"] > 1]
        if len(per_task) < 2:
            continue
        w = float(
            (_unbiased(per_task["base"], per_task["n"]) + _unbiased(per_task["arm"], per_task["n"])).mean()
        )
        d = per_task["arm"] - per_task["base"]
        n_pilot = float(per_task["n"].mean())
        within.append(w)
        between.append(max(0.0, float(d.var(ddof=1)) - w / n_pilot))
        difficulty.append(float(((per_task["base"] + per_task["arm"]) / 2).var(ddof=1)))
        tasks.append(len(per_task))
    if not within:
        return None
    return Variance(
        tasks=int(np.median(tasks)),
        between_effect=float(np.mean(between)),
        within=float(np.mean(within)),
        difficulty=float(np.mean(difficulty)),
        source=f"pilot: {len(within)} contrasts ({', '.join(sorted({c.label for c in chosen}))})",
    )


def _nodes() -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    return nodes, weights / weights.sum()


def assumed_variance(mean_success: float, task_sd: float, tasks: int) -> Variance:
    """No pilot: task log-odds ~ N(μ, task_sd²) with μ set so that mean success is `mean_success`; no effect spread."""
    if not 0 < mean_success < 1:
        raise ValueError(f"--mean-success must be strictly between 0 and 1, got {mean_success}")
    nodes, weights = _nodes()

    def gap(mu: float) -> float:
        return float(np.sum(weights * expit(mu + task_sd * nodes))) - mean_success

    mu = brentq(gap, -20, 20)
    p = expit(mu + task_sd * nodes)
    mean = float(np.sum(weights * p))
    return Variance(
        tasks=tasks,
        between_effect=0.0,
        within=float(2 * np.sum(weights * p * (1 - p))),
        difficulty=float(np.sum(weights * (p - mean) ** 2)),
        source=f"assumed: task log-odds ~ N({mu:.2f}, {task_sd:g}²), mean success {mean_success:g}",
    )


def mde(
    variance: Variance, tasks: int, trials: int, alpha: float, family: int, power: float = POWER
) -> float:
    z = norm.ppf(1 - alpha / (2 * max(family, 1))) + norm.ppf(power)
    return float(z * math.sqrt((variance.between_effect + variance.within / trials) / tasks))


def trials_for(
    variance: Variance,
    tasks: int,
    target: float,
    alpha: float,
    family: int,
    power: float = POWER,
    most: int = 1000,
) -> int | None:
    """The fewest trials whose MDE is at most `target`; None when even `most` trials (or infinitely many) do not reach it."""
    for trials in range(1, most + 1):
        if mde(variance, tasks, trials, alpha, family, power) <= target:
            return trials
    return None


@dataclass(frozen=True)
class UnitCost:
    gpu_hours: float
    """GPU-hours per conversation (NaN unknown)."""
    usd: float
    """US dollars per conversation (NaN unknown)."""
    arms: int
    """Arms per (model, env, split) the study runs."""


def unit_cost(cost: pd.DataFrame, conversations: pd.DataFrame | None) -> UnitCost:
    arms = int(conversations.groupby(FAMILY)["condition"].nunique().max()) if conversations is not None else 0
    if cost.empty or not cost["conversations"].sum():
        return UnitCost(math.nan, math.nan, arms)
    count = float(cost["conversations"].sum())
    gpu = cost["gpu_hours"]
    usd = cost["usd"]
    return UnitCost(
        float(gpu.sum()) / count if gpu.notna().all() else math.nan,
        float(usd.sum()) / count if usd.notna().all() else math.nan,
        arms,
    )


def plan_table(
    variance: Variance,
    tasks: int,
    trial_counts: list[int],
    alpha: float,
    family: int,
    cost: UnitCost,
    envs: int = 1,
    power: float = POWER,
) -> pd.DataFrame:
    rows = []
    for trials in trial_counts:
        conversations = tasks * trials * max(cost.arms, 1) * envs
        rows.append(
            {
                "trials": trials,
                "tasks": tasks,
                "conversations": conversations,
                "sd_per_task": math.sqrt(variance.between_effect + variance.within / trials),
                "mde_points": 100 * mde(variance, tasks, trials, alpha, family, power),
                "gpu_hours": conversations * cost.gpu_hours,
                "usd": conversations * cost.usd,
            }
        )
    return pd.DataFrame(rows)
