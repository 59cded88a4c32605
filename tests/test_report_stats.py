"""The report's statistics on constructed data whose answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from harness.report.stats import holm, paired_delta, sign_flip_p
from harness.report.tables import pass_k


def _cell(successes: dict[int, list[int]]) -> pd.DataFrame:
    rows = [
        {"task_id": task, "trial": trial, "run_seed": 0, "scored": True, "success": float(s)}
        for task, outcomes in successes.items()
        for trial, s in enumerate(outcomes)
    ]
    return pd.DataFrame(rows)


def test_pass_k_matches_hand_computed_values() -> None:
    # tasks with 3/3, 2/3 and 0/3 successes: pass^1 = (1 + 2/3 + 0)/3, pass^2 = (1 + 1/3 + 0)/3, pass^3 = 1/3
    values, tasks = pass_k(_cell({0: [1, 1, 1], 1: [1, 0, 1], 2: [0, 0, 0]}))
    assert tasks == 3
    assert values == pytest.approx({1: 5 / 9, 2: 4 / 9, 3: 1 / 3})


def test_pass_k_leaves_out_tasks_with_an_unscored_trial() -> None:
    cell = _cell({0: [1, 1], 1: [0, 1]})
    cell.loc[(cell["task_id"] == 1) & (cell["trial"] == 0), "scored"] = False
    values, tasks = pass_k(cell)
    assert tasks == 1
    assert values == pytest.approx({1: 1.0, 2: 1.0})


def test_sign_flip_with_unit_differences_equals_the_exact_mcnemar_test() -> None:
    rng = np.random.default_rng(0)
    differences = np.array([1, 1, 1, 1, 1, -1, 0, 0])
    assert sign_flip_p(differences, rng) == pytest.approx(binomtest(5, 6, 0.5).pvalue)
    assert sign_flip_p(np.array([1, 1, 1]), rng) == pytest.approx(0.25)
    assert sign_flip_p(np.zeros(5), rng) == 1.0


def test_holm_matches_hand_computed_values() -> None:
    # sorted 0.01, 0.03, 0.04 -> 0.03, max(0.06, 0.03), max(0.04, 0.06)
    assert holm([0.01, 0.04, 0.03, float("nan")])[:3] == pytest.approx([0.03, 0.06, 0.06])


def test_a_known_delta_is_found() -> None:
    tasks = np.repeat(np.arange(40), 3)
    control = (tasks < 32).astype(float)  # 32 of 40 tasks succeed in every trial
    variant = (tasks < 16).astype(float)  # the variant loses half of them
    result = paired_delta(tasks, control, variant, np.random.default_rng(0))
    assert result.delta == pytest.approx(-0.4)
    assert result.ci_high < 0
    assert result.ci_low <= -0.4 <= result.ci_high
    assert result.p_value < 0.001
    assert (result.control_only, result.variant_only) == (48, 0)
    assert np.isnan(result.mcnemar_p)  # three trials per task: pairs are not independent


def test_mcnemar_is_given_with_one_trial_per_task() -> None:
    tasks = np.arange(10)
    control = np.array([1, 1, 1, 1, 1, 1, 0, 0, 1, 1])
    variant = np.array([0, 0, 0, 0, 0, 1, 1, 0, 1, 1])
    result = paired_delta(tasks, control, variant, np.random.default_rng(0))
    assert (result.control_only, result.variant_only) == (5, 1)
    assert result.mcnemar_p == pytest.approx(binomtest(1, 6, 0.5).pvalue)
    assert result.p_value == pytest.approx(result.mcnemar_p)


def _simulate(
    rng: np.random.Generator, tasks: int, trials: int, shift: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p_control = rng.uniform(0.3, 0.9, tasks)
    p_variant = p_control + shift
    ids = np.repeat(np.arange(tasks), trials)
    control = rng.uniform(size=ids.size) < p_control[ids]
    variant = rng.uniform(size=ids.size) < p_variant[ids]
    return ids, control, variant


@pytest.mark.slow
def test_identical_variants_are_not_called_significant_beyond_the_nominal_rate() -> None:
    rng = np.random.default_rng(1)
    simulations, alpha = 300, 0.05
    raw_rejections = family_rejections = 0
    for _ in range(simulations):
        p_values = []
        for _variant in range(4):
            ids, control, variant = _simulate(rng, 30, 3, 0.0)
            p_values.append(
                paired_delta(ids, control, variant, rng, resamples=200, permutations=2000).p_value
            )
        raw_rejections += p_values[0] < alpha
        family_rejections += min(holm(p_values)) < alpha
    # 300 simulations: the binomial sd at 5% is 1.3 points; allow three of them
    assert raw_rejections / simulations <= alpha + 0.04
    assert family_rejections / simulations <= alpha + 0.04


def test_the_bootstrap_ci_covers_the_true_delta() -> None:
    rng = np.random.default_rng(2)
    simulations, covered = 300, 0
    for _ in range(simulations):
        ids, control, variant = _simulate(rng, 40, 3, -0.2)
        result = paired_delta(ids, control, variant, rng, resamples=1000, permutations=200)
        covered += result.ci_low <= -0.2 <= result.ci_high
    # nominal 95%; the percentile bootstrap over 40 tasks runs slightly narrow
    assert covered / simulations >= 0.90


def test_a_real_effect_is_detected_most_of_the_time() -> None:
    rng = np.random.default_rng(3)
    detected = sum(
        paired_delta(*_simulate(rng, 40, 3, -0.2), rng, resamples=200, permutations=2000).p_value < 0.05
        for _ in range(50)
    )
    assert detected >= 40
