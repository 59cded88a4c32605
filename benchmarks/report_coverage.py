"""Coverage and false-positive rates of every estimator the report uses, on simulated sweeps.

Each simulated sweep draws its tasks (log-odds of success ~ N(0.5, 1.5²), mean success 0.6)
and each arm's conversations independently given the task, then runs the report's own code:
the paired bootstrap CI and sign-flip test (`harness.report.stats.paired_delta`), the
simultaneous intervals and Holm across a family, the conditional logit
(`harness.report.clogit`), the unscored bounds and verdicts (`harness.report.contrasts`), the
dose-response trend (`harness.report.dose`) and the instruction-mood interaction test.

    python benchmarks/report_coverage.py            # about 5 minutes of CPU (9 on 2 busy cores)
    python benchmarks/report_coverage.py --quick    # a tenth of the sweeps, for a smoke run

Targets: 95 % intervals cover 92-98 %; tests under the null reject 3-7 % at α = 0.05.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from scipy.special import expit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.report.clogit import conditional_logit
from harness.report.contrasts import Options, contrast_table
from harness.report.design import PRIMARY, Contrast
from harness.report.dose import slope_sums, trend_p
from harness.report.stats import (
    ALPHA,
    bootstrap_sums,
    holm,
    label_permutation_p,
    paired_delta,
    percentile_ci,
    sign_flip_p,
    task_sums,
)
from tests.report_frames import arm_conversations

MU, SD = 0.5, 1.5
EFFECT = -0.5
"""Log-odds shift of the simulated emotion: about −10 points of success."""


def true_delta(shift: float) -> float:
    """E over tasks of expit(a + shift) − expit(a), a ~ N(MU, SD²), by Gauss-Hermite quadrature."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    a = MU + SD * nodes
    return float(np.sum(weights * (expit(a + shift) - expit(a))) / np.sum(weights))


def mean_success() -> float:
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    return float(np.sum(weights * expit(MU + SD * nodes)) / np.sum(weights))


def arm(rng: np.random.Generator, logits: np.ndarray, trials: int, shift: float = 0.0) -> np.ndarray:
    return (rng.uniform(size=(len(logits), trials)) < expit(logits + shift)[:, None]).astype(float)


def flat(outcomes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    tasks = np.repeat(np.arange(outcomes.shape[0]), outcomes.shape[1])
    return tasks, outcomes.ravel()


class Tally:
    def __init__(self) -> None:
        self.rows: list[tuple[str, int, float, str]] = []

    def add(self, name: str, hits: list[bool], target: str) -> None:
        self.rows.append((name, len(hits), 100 * float(np.mean(hits)), target))
        print(f"  {name:<68} {len(hits):>5} {self.rows[-1][2]:6.1f}%   {target}", flush=True)


T = TypeVar("T")


def repeat(sweeps: int, one: Callable[[np.random.Generator], T], rng: np.random.Generator) -> list[T]:
    return [one(rng) for _ in range(sweeps)]


def paired_tests(tally: Tally, sweeps: int, tasks: int, trials: int, rng: np.random.Generator) -> None:
    truth = true_delta(EFFECT)

    def one(shift: float) -> Callable[[np.random.Generator], tuple[bool, bool]]:
        def run(rng: np.random.Generator) -> tuple[bool, bool]:
            logits = rng.normal(MU, SD, tasks)
            ids, base = flat(arm(rng, logits, trials))
            _, variant = flat(arm(rng, logits, trials, shift))
            result = paired_delta(ids, base, variant, rng, resamples=1000, permutations=2000)
            target = truth if shift else 0.0
            return bool(result.ci_low <= target <= result.ci_high), bool(result.p_value < ALPHA)

        return run

    effect = repeat(sweeps, one(EFFECT), rng)
    null = repeat(sweeps, one(0.0), rng)
    tally.add(
        f"paired delta: bootstrap 95% CI covers the true delta ({100 * truth:+.1f} pts)",
        [c for c, _ in effect],
        "92-98",
    )
    tally.add("paired delta: bootstrap 95% CI covers 0 under the null", [c for c, _ in null], "92-98")
    tally.add("sign-flip test: false positives under the null", [p for _, p in null], "3-7")
    tally.add(
        f"sign-flip test: power at {100 * truth:+.1f} points (information)", [p for _, p in effect], "-"
    )


def family_tests(tally: Tally, sweeps: int, tasks: int, trials: int, rng: np.random.Generator) -> None:
    """8 primary contrasts per sweep (env × emotion): all null, then 4 null and 4 with the effect."""
    null_fwer = []
    for _ in range(sweeps * 4):
        p_values = []
        for _ in range(8):
            logits = rng.normal(MU, SD, tasks)
            ids, base = flat(arm(rng, logits, trials))
            _, variant = flat(arm(rng, logits, trials))
            p_values.append(sign_flip_p(task_sums(ids, variant - base)[0], rng, 4000))
        null_fwer.append(min(holm(p_values)) < ALPHA)
    tally.add("Holm over 8 contrasts, all null: any rejection (family-wise error)", null_fwer, "≤ 5")
    shifts = [0.0] * 4 + [EFFECT] * 4
    truths = [true_delta(s) if s else 0.0 for s in shifts]
    fwer, covered = [], []
    for _ in range(sweeps):
        results = []
        for shift in shifts:
            logits = rng.normal(MU, SD, tasks)
            ids, base = flat(arm(rng, logits, trials))
            _, variant = flat(arm(rng, logits, trials, shift))
            results.append(
                paired_delta(ids, base, variant, rng, resamples=1000, permutations=4000, comparisons=8)
            )
        adjusted = holm([r.p_value for r in results])
        fwer.append(any(a < ALPHA for a, s in zip(adjusted, shifts, strict=True) if s == 0))
        covered.append(all(r.sim_ci_low <= t <= r.sim_ci_high for r, t in zip(results, truths, strict=True)))
    tally.add("Holm over 8 contrasts, 4 null + 4 effects: a null rejected", fwer, "≤ 5")
    tally.add("simultaneous (Bonferroni) intervals: all 8 cover at once", covered, "≥ 95 (92-98)")


def model_tests(tally: Tally, sweeps: int, tasks: int, trials: int, rng: np.random.Generator) -> None:
    def one(shift: float) -> Callable[[np.random.Generator], tuple[bool, bool]]:
        def run(rng: np.random.Generator) -> tuple[bool, bool]:
            logits = rng.normal(MU, SD, tasks)
            ids, base = flat(arm(rng, logits, trials))
            _, variant = flat(arm(rng, logits, trials, shift))
            fit = conditional_logit(
                np.r_[ids, ids], np.r_[np.zeros(ids.size), np.ones(ids.size)], np.r_[base, variant]
            )
            return bool(fit.ci_low <= shift <= fit.ci_high), bool(fit.p_value < ALPHA)

        return run

    effect = repeat(sweeps, one(EFFECT), rng)
    null = repeat(sweeps, one(0.0), rng)
    tally.add(
        f"conditional logit: 95% CI covers the true log-odds ({EFFECT})", [c for c, _ in effect], "92-98"
    )
    tally.add("conditional logit: false positives under the null", [p for _, p in null], "3-7")


def _conversations(
    base: np.ndarray, variant: np.ndarray, base_lost: np.ndarray, lost: np.ndarray
) -> pd.DataFrame:
    arms = [arm_conversations("neutral", base, base_lost), arm_conversations("anger", variant, lost)]
    return pd.concat(arms, ignore_index=True)


def bounds_tests(tally: Tally, sweeps: int, tasks: int, trials: int, rng: np.random.Generator) -> None:
    """Arms losing conversations to user_error, through the report's own contrast table and verdict.

    The truth is the delta had every conversation been scored: 0, or the simulated effect. Each
    loss rule is (share of failures lost, share of successes lost) per arm.
    """
    contrast = [Contrast(PRIMARY, "m", "retail", "test", "anger", "neutral")]
    options = Options(resamples=1000, permutations=2000)
    Loss = tuple[float, float]

    def one(
        arm_loss: Loss, base_loss: Loss, shift: float = 0.0
    ) -> Callable[[np.random.Generator], dict[str, Any]]:
        def run(rng: np.random.Generator) -> dict[str, Any]:
            logits = rng.normal(MU, SD, tasks)
            base, variant = arm(rng, logits, trials), arm(rng, logits, trials, shift)

            def lose(outcomes: np.ndarray, loss: Loss) -> np.ndarray:
                return rng.uniform(size=outcomes.shape) < np.where(outcomes == 1, loss[1], loss[0])

            conversations = _conversations(base, variant, lose(base, base_loss), lose(variant, arm_loss))
            table = contrast_table(conversations, contrast, {}, rng, options)
            return {**table.iloc[0].to_dict(), "full_delta": float((variant - base).mean())}

        return run

    significant = "significant after Holm"
    truth = true_delta(EFFECT)
    scenarios = [
        ("differential: arm loses 15% of failures, 2% of successes", one((0.15, 0.02), (0, 0)), 0.0),
        ("one arm only: arm loses 20% of its failures", one((0.2, 0.0), (0, 0)), 0.0),
        ("opposite: baseline loses 20% of successes, arm 20% of failures", one((0.2, 0), (0, 0.2)), 0.0),
        ("5% user_error in both arms at random", one((0.05, 0.05), (0.05, 0.05)), 0.0),
        (
            f"effect {100 * truth:+.1f} pts, 5% user_error at random",
            one((0.05, 0.05), (0.05, 0.05), EFFECT),
            truth,
        ),
    ]
    for name, scenario, target in scenarios:
        rows = repeat(sweeps, scenario, rng)
        print(f"  {name}", flush=True)
        if target == 0.0:
            tally.add(
                "  ... scored pairs alone: p < .05 (the trap)", [r["p_value"] < ALPHA for r in rows], "(trap)"
            )
            tally.add(
                "  ... the report claims an effect (verdict significant)",
                [significant in str(r["verdict"]) for r in rows],
                "≤ 5",
            )
        else:
            tally.add(
                "  ... the report claims the effect (power)",
                [significant in str(r["verdict"]) for r in rows],
                "-",
            )
        if "at random" in name:
            tally.add(
                "  ... scored-pairs 95% CI covers the true delta (losses at random: identified)",
                [r["ci_low"] <= target <= r["ci_high"] for r in rows],
                "92-98",
            )
        tally.add(
            "  ... worst-case 95% interval covers the true delta",
            [r["worst_ci_low"] <= target <= r["worst_ci_high"] for r in rows],
            "≥ 95 (a bound: conservative)",
        )
        tally.add(
            "  ... worst-case interval covers the full-data delta of the sweep",
            [r["worst_ci_low"] <= r["full_delta"] <= r["worst_ci_high"] for r in rows],
            "≥ 95",
        )
        tally.add(
            "  ... same-direction imputations (old bounds) disagree",
            [bool(r["bounds_flag"]) for r in rows],
            "(information)",
        )
        width = 100 * np.mean([r["worst_ci_high"] - r["worst_ci_low"] for r in rows])
        print(f"    worst-case interval: {width:.1f} points wide on average", flush=True)


def dose_and_mood_tests(tally: Tally, sweeps: int, tasks: int, trials: int, rng: np.random.Generator) -> None:
    """Neutral + three intensities with no trend; an emotion effect that is the same with and without a mood."""
    trend_fp, trend_cover, mood_fp, mood_cover = [], [], [], []
    for _ in range(sweeps):
        logits = rng.normal(MU, SD, tasks)
        outcomes = np.stack([arm(rng, logits, trials) for _ in range(4)], axis=1)  # task × dose × trial
        ids = np.repeat(np.arange(tasks), 4 * trials)
        dose = np.tile(np.repeat(np.arange(4.0), trials), tasks)
        success = outcomes.ravel()
        sxy, sxx = slope_sums(ids, dose, success)
        low, high = percentile_ci(bootstrap_sums(sxy, sxx, rng, 1000))
        trend_cover.append(low <= 0 <= high)
        trend_fp.append(trend_p(ids, dose, success, rng, 500) < ALPHA)
        base, variant = outcomes[:, 0], arm(rng, logits, trials, EFFECT)
        mood = rng.uniform(size=tasks) < 0.45
        sums, counts = task_sums(*flat(variant - base))
        mood_fp.append(label_permutation_p(sums / counts, mood, rng, 2000) < ALPHA)
        with_mood = bootstrap_sums(sums[mood], counts[mood], rng, 1000)
        without = bootstrap_sums(sums[~mood], counts[~mood], rng, 1000)
        low, high = percentile_ci(with_mood - without)
        mood_cover.append(low <= 0 <= high)
    tally.add("dose-response: false positives of the trend test (no trend)", trend_fp, "3-7")
    tally.add("dose-response: slope 95% CI covers 0 (no trend)", trend_cover, "92-98")
    tally.add("instruction mood: false positives of the interaction test", mood_fp, "3-7")
    tally.add("instruction mood: interaction 95% CI covers 0", mood_cover, "92-98")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=115)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument(
        "--sweeps", type=int, default=1000, help="simulated sweeps for the paired tests; the others use fewer"
    )
    parser.add_argument("--quick", action="store_true", help="a tenth of the sweeps")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--only", default="", help="comma-separated: paired,family,model,bounds,dose")
    args = parser.parse_args()
    sweeps = max(args.sweeps // 10, 20) if args.quick else args.sweeps
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    print(
        f"simulated sweeps of {args.tasks} tasks × {args.trials} trials; task log-odds ~ N({MU}, {SD}²) "
        f"(mean success {mean_success():.2f}); "
        f"effect {EFFECT} log-odds = {100 * true_delta(EFFECT):+.1f} points"
    )
    print(f"  {'estimator / test':<68} {'sweeps':>5} {'rate':>7}   target %")
    tally = Tally()
    sections = {
        "paired": (paired_tests, sweeps),
        "family": (family_tests, sweeps // 10),
        "model": (model_tests, sweeps // 5),
        "bounds": (bounds_tests, sweeps // 5),
        "dose": (dose_and_mood_tests, sweeps // 2),
    }
    for name, (section, count) in sections.items():
        if args.only and name not in args.only.split(","):
            continue
        cpu = time.process_time()
        section(tally, max(count, 10), args.tasks, args.trials, rng)
        print(
            f"  ({max(count, 10)} simulated sweeps each, {time.process_time() - cpu:.0f} s CPU)", flush=True
        )
    print(f"{time.perf_counter() - start:.0f} s in all (wall clock)")


if __name__ == "__main__":
    main()
