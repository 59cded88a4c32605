"""`python -m harness.plan` on a constructed pilot with a known variance decomposition, and from assumptions."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from harness.report.planning import Variance, assumed_variance, mde, trials_for
from tests.helpers import run_module
from tests.report_synthetic import write_job

TASKS, TRIALS = 60, 4


def _pilot(sweep: Path) -> np.ndarray:
    """Neutral and anger with no effect; task success rates uniform on [0.2, 0.8]."""
    rng = np.random.default_rng(3)
    p = rng.uniform(0.2, 0.8, TASKS)
    for variant in ("neutral", "anger"):
        draws = rng.uniform(size=(TASKS, TRIALS)) < p[:, None]
        write_job(sweep, "retail", variant, TASKS, TRIALS, lambda task, trial, d=draws: bool(d[task, trial]))
    return p


def _rows(output: str) -> dict[int, float]:
    return {int(t): float(m) for t, m in re.findall(r"^\s+(\d+)\s+\d+\s+[\d.]+\s+([\d.]+)", output, re.M)}


def test_the_plan_from_a_pilot_matches_the_known_variance(tmp_path: Path) -> None:
    p = _pilot(tmp_path)
    result = run_module("harness.plan", str(tmp_path), "--trials", "1,4,16", "--target-mde", "10")
    assert result.returncode == 0, result.stderr
    truth = Variance(TASKS, 0.0, float(np.mean(2 * p * (1 - p))), 0.0, "truth")
    rows = _rows(result.stdout)
    assert sorted(rows) == [1, 4, 16]
    for trials, shown in rows.items():
        expected = 100 * mde(truth, TASKS, trials, 0.05, 1)
        assert abs(shown - expected) < 0.15 * expected, (trials, shown, expected)
    assert rows[1] > rows[4] > rows[16]
    assert "Holm over 1 contrast(s)" in result.stdout
    needed = re.search(r"target MDE 10 points: (\d+) trials", result.stdout)
    assert needed is not None and int(needed.group(1)) >= 4


def test_the_family_size_and_alpha_widen_the_mde() -> None:
    variance = assumed_variance(0.6, 1.5, 115)
    assert mde(variance, 115, 4, 0.05, 8) > mde(variance, 115, 4, 0.05, 1) > mde(variance, 115, 4, 0.10, 1)
    assert math.isclose(mde(variance, 115, 4, 0.05, 1), 0.077, abs_tol=0.002)


def test_a_target_below_the_effect_spread_is_never_reached() -> None:
    variance = Variance(115, between_effect=0.05, within=0.3, difficulty=0.0, source="x")
    assert trials_for(variance, 115, 0.05, 0.05, 1) is None
    assert trials_for(variance, 115, 0.10, 0.05, 1) is not None


def test_without_a_pilot_it_needs_assumptions(tmp_path: Path) -> None:
    result = run_module("harness.plan")
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "error: no pilot sweep: give --mean-success (and --task-sd) to plan from assumptions"
    )
    result = run_module("harness.plan", "--mean-success", "0.6", "--trials", "4", "--family-size", "8")
    assert result.returncode == 0, result.stderr
    assert _rows(result.stdout) == {4: 9.7}
