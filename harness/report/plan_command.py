"""`python -m harness.plan [SWEEP_DIR]`: from a pilot sweep (or stated task-difficulty assumptions), the
variance decomposition of the paired success difference, the MDE each planned trial count reaches
under the Holm family, what each would cost, and the trial count that reaches a target MDE."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from harness.job.study import Study
from harness.report.cost import cost_table
from harness.report.design import plan
from harness.report.estimand import study_of
from harness.report.load import ReportError, load_sweep
from harness.report.planning import (
    POWER,
    UnitCost,
    Variance,
    assumed_variance,
    pilot_variance,
    plan_table,
    trials_for,
    unit_cost,
)
from harness.report.stats import MIN_TASKS_TEST


def _counts(value: str) -> list[int]:
    try:
        counts = sorted({int(v) for v in value.split(",") if v.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--trials takes comma-separated whole numbers, got {value!r}"
        ) from None
    if not counts or counts[0] < 1:
        raise argparse.ArgumentTypeError(f"--trials takes counts of 1 or more, got {value!r}")
    return counts


def _number(value: float, spec: str) -> str:
    return format(value, spec) if math.isfinite(value) else "n/a"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m harness.plan", description=__doc__)
    parser.add_argument(
        "sweep_dir", type=Path, nargs="?", help="a pilot sweep directory (omit to plan from assumptions)"
    )
    parser.add_argument(
        "--trials", type=_counts, default=[1, 2, 4, 8, 16], help="planned trial counts, e.g. 1,2,4,8"
    )
    parser.add_argument(
        "--tasks",
        type=int,
        default=None,
        help="tasks per env in the study (default: the pilot's; 115 without one)",
    )
    parser.add_argument(
        "--envs", type=int, default=None, help="envs in the study (default: the pilot's; 1 without one)"
    )
    parser.add_argument(
        "--alpha", type=float, default=None, help="the family's α (default: the study block's, else 0.05)"
    )
    parser.add_argument(
        "--family-size",
        type=int,
        default=None,
        help="contrasts in the Holm family (default: the declared family's contrasts in the pilot)",
    )
    parser.add_argument(
        "--power", type=float, default=POWER, help="power the MDE is defined at (default 0.8)"
    )
    parser.add_argument(
        "--target-mde", type=float, default=None, help="MDE wanted, in points of success (e.g. 5)"
    )
    parser.add_argument(
        "--mean-success", type=float, default=None, help="without a pilot: mean success over tasks (e.g. 0.6)"
    )
    parser.add_argument(
        "--task-sd", type=float, default=1.5, help="without a pilot: SD of task log-odds (default 1.5)"
    )
    parser.add_argument("--arms", type=int, default=None, help="arms per env (default: the pilot's)")
    parser.add_argument(
        "--gpu-hours-per-conversation", type=float, default=None, help="without a pilot's cost"
    )
    parser.add_argument("--usd-per-conversation", type=float, default=None, help="without a pilot's cost")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        variance, tasks, envs, family, cost = _inputs(args)
    except (ReportError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    table = plan_table(variance, tasks, args.trials, args.alpha, family, cost, envs, args.power)
    print(args.declaration)
    print(f"variance of the paired success difference ({variance.source}, {variance.tasks} tasks):")
    print(
        f"  between tasks (effect spread) σ_b² = {variance.between_effect:.4f}; within a task (one pair) "
        f"σ_w² = {variance.within:.4f}; task difficulty (cancels in pairs) {variance.difficulty:.4f}"
    )
    print(
        f"family: Holm over {family} contrast(s) at α = {args.alpha:g} (first step α/m = {args.alpha / family:.4g}); "
        f"power {args.power:g}; {tasks} tasks × {envs} env(s) × {cost.arms} arm(s)"
    )
    print(f"cost per conversation: {_number(cost.gpu_hours, '.4g')} GPU-hours, ${_number(cost.usd, '.4g')}")
    print(
        f"{'trials':>6} {'conversations':>13} {'sd/task':>8} {'MDE points':>10} {'GPU-hours':>10} {'USD':>10}"
    )
    for row in table.itertuples():
        print(
            f"{row.trials:>6} {row.conversations:>13} {row.sd_per_task:>8.3f} {row.mde_points:>10.1f} "
            f"{_number(row.gpu_hours, '>10.1f'):>10} {_number(row.usd, '>10.2f'):>10}"
        )
    if args.target_mde is not None:
        needed = trials_for(variance, tasks, args.target_mde / 100, args.alpha, family, args.power)
        if needed is None:
            floor = 100 * math.sqrt(variance.between_effect / tasks) if variance.between_effect else 0.0
            print(
                f"target MDE {args.target_mde:g} points: not reached with up to 1000 trials (the effect spread alone gives {floor:.1f})"
            )
        else:
            row = plan_table(variance, tasks, [needed], args.alpha, family, cost, envs, args.power).iloc[0]
            print(
                f"target MDE {args.target_mde:g} points: {needed} trials (MDE {row.mde_points:.1f}, "
                f"{int(row.conversations)} conversations, {_number(row.gpu_hours, '.1f')} GPU-hours, ${_number(row.usd, '.2f')})"
            )
    return 0


def _inputs(args: argparse.Namespace) -> tuple[Variance, int, int, int, UnitCost]:
    conversations = None
    if args.sweep_dir is not None:
        if not args.sweep_dir.is_dir():
            raise ReportError(f"{args.sweep_dir} is not a directory")
        conversations = load_sweep(args.sweep_dir).conversations
        if conversations.empty:
            raise ReportError(f"{args.sweep_dir} holds no finished conversations")
    if conversations is None or args.mean_success is not None:
        if args.mean_success is None:
            raise ReportError("no pilot sweep: give --mean-success (and --task-sd) to plan from assumptions")
        pilot_tasks = (
            int(conversations.groupby("env")["task_id"].nunique().max()) if conversations is not None else 115
        )
        variance = assumed_variance(args.mean_success, args.task_sd, args.tasks or pilot_tasks)
    else:
        found = pilot_variance(conversations)
        if found is None:
            raise ReportError(
                f"{args.sweep_dir}: no contrast with two or more scored trials per task in both arms; "
                "give --mean-success to plan from assumptions"
            )
        variance = found
        if variance.within == 0 and variance.between_effect == 0:
            raise ReportError(
                f"{args.sweep_dir}: every task has the same result on every trial (a plumbing check?): "
                "no variance to plan from; give --mean-success and --task-sd"
            )
    study = study_of(args.sweep_dir) if args.sweep_dir is not None else Study.default()
    if args.alpha is None:
        args.alpha = study.alpha
    contrasts = plan(conversations)[0] if conversations is not None else []
    declared = [c for c in contrasts if c.kind == study.kind and study.in_family(c.condition.split("@")[0])]
    if study.scope == "pooled":
        declared = list({(c.model, c.split, c.condition): c for c in declared}.values())
    family = args.family_size or max(len(declared), 1)
    args.declaration = (
        f"declared study: {study.describe()}"
        if study.declared
        else "no declared study: today's default family"
    )
    tasks = args.tasks or variance.tasks
    envs = args.envs or (int(conversations["env"].nunique()) if conversations is not None else 1)
    if tasks < MIN_TASKS_TEST:
        raise ReportError(f"--tasks {tasks}: the report tests nothing below {MIN_TASKS_TEST} tasks")
    cost = (
        UnitCost(math.nan, math.nan, 0)
        if conversations is None
        else _pilot_cost(args.sweep_dir, conversations)
    )
    cost = UnitCost(
        args.gpu_hours_per_conversation if args.gpu_hours_per_conversation is not None else cost.gpu_hours,
        args.usd_per_conversation if args.usd_per_conversation is not None else cost.usd,
        args.arms or cost.arms or 1,
    )
    return variance, tasks, envs, family, cost


def _pilot_cost(sweep_dir: Path, conversations: pd.DataFrame) -> UnitCost:
    return unit_cost(cost_table(sweep_dir), conversations)
