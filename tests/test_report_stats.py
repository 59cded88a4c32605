"""The report's statistics on constructed data whose answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from harness.report.clogit import conditional_logit
from harness.report.dose import slope_sums, trend_p
from harness.report.stats import holm, holm_within, label_permutation_p, mde, paired_delta, sign_flip_p
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


def test_holm_within_adjusts_each_group_as_its_own_family() -> None:
    table = pd.DataFrame(
        {"kind": ["a", "b", "a", "a", "b"], "p_value": [0.01, 0.02, 0.04, 0.03, float("nan")]}
    )
    holm_within(table, "kind")
    assert table["p_holm"].tolist()[:4] == pytest.approx([0.03, 0.02, 0.06, 0.06])
    assert np.isnan(table.loc[4, "p_holm"])  # NaN is no test: b's 0.02 is alone in its family
    holm_within(table, None, adjusted="p_all")
    assert table["p_all"].tolist()[:4] == pytest.approx(holm([0.01, 0.02, 0.04, 0.03]))


def test_a_known_delta_is_found() -> None:
    tasks = np.repeat(np.arange(40), 3)
    control = (tasks < 32).astype(float)  # 32 of 40 tasks succeed in every trial
    variant = (tasks < 16).astype(float)  # the variant loses half of them
    result = paired_delta(tasks, control, variant, np.random.default_rng(0))
    assert result.delta == pytest.approx(-0.4)
    assert result.ci_high < 0
    assert result.ci_low <= -0.4 <= result.ci_high
    assert result.p_value < 0.001
    assert (result.baseline_only, result.variant_only) == (48, 0)
    assert np.isnan(result.mcnemar_p)  # three trials per task: pairs are not independent


def test_mcnemar_is_given_with_one_trial_per_task() -> None:
    tasks = np.arange(10)
    control = np.array([1, 1, 1, 1, 1, 1, 0, 0, 1, 1])
    variant = np.array([0, 0, 0, 0, 0, 1, 1, 0, 1, 1])
    result = paired_delta(tasks, control, variant, np.random.default_rng(0))
    assert (result.baseline_only, result.variant_only) == (5, 1)
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


def test_too_few_tasks_give_no_test_and_no_interval_with_the_reason() -> None:
    tasks = np.repeat(np.arange(5), 2)
    result = paired_delta(tasks, np.ones(10), np.zeros(10), np.random.default_rng(0))
    assert result.delta == -1.0
    assert np.isnan(result.p_value) and np.isnan(result.ci_low) and np.isnan(result.mde)
    assert "5 tasks: too few for a test" in result.note and "too few for a bootstrap interval" in result.note


def test_identical_arms_give_no_p_value_of_one() -> None:
    tasks = np.repeat(np.arange(20), 2)
    outcome = (tasks % 3 == 0).astype(float)
    result = paired_delta(tasks, outcome, outcome, np.random.default_rng(0))
    assert result.delta == 0 and np.isnan(result.p_value) and np.isnan(result.mde)
    assert "same result in both arms" in result.note


def test_the_mde_matches_the_normal_formula() -> None:
    # per-task differences with sd 0.5 over 100 tasks: se 0.05, MDE = (1.960 + 0.842) * 0.05
    means = np.tile([0.5, -0.5], 50)
    sd = np.std(means, ddof=1)
    assert mde(means) == pytest.approx(2.8016 * sd / 10, rel=1e-3)
    assert mde(means, alpha=0.05 / 8) > mde(means)


def test_simultaneous_intervals_are_wider_and_contain_the_95_interval() -> None:
    rng = np.random.default_rng(4)
    ids, control, variant = _simulate(rng, 60, 3, -0.1)
    single = paired_delta(ids, control, variant, np.random.default_rng(0), comparisons=1)
    family = paired_delta(ids, control, variant, np.random.default_rng(0), comparisons=8)
    assert family.sim_ci_low < single.ci_low and family.sim_ci_high > single.ci_high
    assert family.mde_adjusted > family.mde


def test_the_conditional_logit_recovers_a_known_log_odds_ratio() -> None:
    rng = np.random.default_rng(5)
    tasks = np.repeat(np.arange(300), 8)
    treated = np.tile(np.r_[np.zeros(4), np.ones(4)], 300)
    difficulty = rng.normal(0, 1.5, 300)
    p = 1 / (1 + np.exp(-(difficulty[tasks] - 0.8 * treated)))
    fit = conditional_logit(tasks, treated, (rng.uniform(size=tasks.size) < p).astype(float))
    assert fit.ci_low <= -0.8 <= fit.ci_high
    assert fit.ci_high < 0 and fit.p_value < 0.001


def test_the_conditional_logit_says_why_it_cannot_fit() -> None:
    tasks = np.repeat(np.arange(10), 4)
    treated = np.tile([0, 0, 1, 1], 10)
    always_worse = np.tile([1, 0, 0, 0], 10).astype(float)  # the arm never wins within a task
    fit = conditional_logit(tasks, treated, always_worse)
    assert np.isnan(fit.log_odds) and "odds ratio is infinite" in fit.note
    few = conditional_logit(tasks[:12], treated[:12], always_worse[:12])
    assert np.isnan(few.log_odds) and "too few to fit" in few.note


def test_the_trend_slope_and_test_find_a_dose_response() -> None:
    rng = np.random.default_rng(6)
    tasks = np.repeat(np.arange(60), 8)
    dose = np.tile([0, 0, 1, 1, 2, 2, 3, 3], 60).astype(float)
    base = rng.uniform(0.5, 0.9, 60)
    success = (rng.uniform(size=tasks.size) < base[tasks] - 0.1 * dose).astype(float)
    sxy, sxx = slope_sums(tasks, dose, success)
    assert sxy.sum() / sxx.sum() == pytest.approx(-0.1, abs=0.04)
    assert trend_p(tasks, dose, success, rng, 2000) < 0.01
    flat = (rng.uniform(size=tasks.size) < base[tasks]).astype(float)
    assert trend_p(tasks, dose, flat, rng, 2000) > 0.01


def test_label_permutation_finds_a_difference_between_groups() -> None:
    rng = np.random.default_rng(7)
    values = np.r_[np.full(20, -0.3), np.full(20, 0.0)] + rng.normal(0, 0.05, 40)
    labels = np.r_[np.ones(20), np.zeros(20)]
    assert label_permutation_p(values, labels, rng, 2000) < 0.001
    assert label_permutation_p(rng.normal(0, 1, 40), labels, rng, 2000) > 0.01
