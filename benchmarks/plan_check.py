"""Does `python -m harness.plan` predict the MDE that simulation measures?

For each planned size it takes the MDE that `harness.report.planning` predicts, simulates sweeps
with the coverage benchmark's task model (task log-odds ~ N(0.5, 1.5²), each arm drawn
independently given the task) at effects around it, runs the report's sign-flip test at
Holm's first-step level α/m on each, and interpolates the effect the test detects with 80 %
power. Predictions come from the stated assumptions (no pilot) and from a simulated 2-trial pilot
(the variance decomposition the command makes from a sweep). Target: |predicted − simulated| ≤ 1.5 points.

    python benchmarks/plan_check.py            # about 2 minutes of CPU
    python benchmarks/plan_check.py --quick
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from report_coverage import MU, SD, arm, flat, mean_success, true_delta
from scipy.optimize import brentq

from harness.report.planning import POWER, assumed_variance, mde, pilot_variance
from harness.report.stats import ALPHA, sign_flip_p, task_sums

OFFSETS = (-0.03, -0.015, 0.0, 0.015, 0.03)
"""Effects simulated around the predicted MDE, in success (±3 points)."""


def shift_for(delta: float) -> float:
    """The log-odds shift whose mean effect over tasks is −delta."""
    return brentq(lambda s: true_delta(s) + delta, -10, 0)


def power(
    rng: np.random.Generator, sweeps: int, tasks: int, trials: int, delta: float, level: float
) -> float:
    shift = shift_for(delta)
    hits = 0
    for _ in range(sweeps):
        logits = rng.normal(MU, SD, tasks)
        sums, _ = task_sums(*flat(arm(rng, logits, trials, shift) - arm(rng, logits, trials)))
        hits += sign_flip_p(sums, rng, 2000) < level
    return hits / sweeps


def simulated_mde(
    rng: np.random.Generator, sweeps: int, tasks: int, trials: int, guess: float, level: float
) -> float:
    effects = [guess + o for o in OFFSETS]
    powers = [power(rng, sweeps, tasks, trials, e, level) for e in effects]
    return float(np.interp(POWER, np.maximum.accumulate(powers), effects))


def pilot(rng: np.random.Generator, tasks: int, trials: int) -> pd.DataFrame:
    """A simulated pilot sweep's conversation table: neutral and one emotion with no effect."""
    logits = rng.normal(MU, SD, tasks)
    rows = []
    for variant in ("neutral", "anger"):
        outcomes = arm(rng, logits, trials)
        for task in range(tasks):
            for trial in range(trials):
                rows.append(
                    {
                        "model": "m", "env": "retail", "split": "test", "variant": variant, "condition": variant,
                        "intensity": "medium", "run_seed": 0, "task_id": task, "trial": trial, "scored": True,
                        "success": outcomes[task, trial], "termination": "user_stop", "noop_task": False,
                        "instruction_affect": "",
                    }
                )  # fmt: skip
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=115)
    parser.add_argument("--sweeps", type=int, default=400, help="simulated sweeps per effect size")
    parser.add_argument("--quick", action="store_true", help="a quarter of the sweeps")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    sweeps = args.sweeps // 4 if args.quick else args.sweeps
    rng = np.random.default_rng(args.seed)
    start = time.process_time()
    assumed = assumed_variance(mean_success(), SD, args.tasks)
    from_pilot = pilot_variance(pilot(rng, args.tasks, 2))
    assert from_pilot is not None
    print(
        f"{args.tasks} tasks; task log-odds ~ N({MU}, {SD}²); {sweeps} simulated sweeps per effect, "
        f"5 effects around each prediction; power {POWER:g}"
    )
    print(
        f"pilot (2 trials, no effect): σ_b² = {from_pilot.between_effect:.4f}, σ_w² = {from_pilot.within:.4f} "
        f"(assumed: σ_b² = 0, σ_w² = {assumed.within:.4f})"
    )
    print(
        f"  {'source':<8} {'trials':>6} {'family':>6} {'predicted':>9} {'simulated':>9} {'diff':>6}  within ±1.5"
    )
    for source, variance in (("assumed", assumed), ("pilot", from_pilot)):
        for trials, family in ((1, 1), (4, 1), (4, 8), (16, 8)):
            predicted = mde(variance, args.tasks, trials, ALPHA, family)
            simulated = simulated_mde(rng, sweeps, args.tasks, trials, predicted, ALPHA / family)
            diff = 100 * (predicted - simulated)
            print(
                f"  {source:<8} {trials:>6} {family:>6} {100 * predicted:>8.1f}  {100 * simulated:>8.1f}  "
                f"{diff:>+5.1f}  {'yes' if abs(diff) <= 1.5 else 'NO'}",
                flush=True,
            )
    print(f"{time.process_time() - start:.0f} s CPU")


if __name__ == "__main__":
    main()
