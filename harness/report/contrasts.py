"""Paired contrasts between arms: the headline table with its bounds, Holm and verdicts, and the tables built on the same pairs.

Every row compares one arm with its baseline on the pairs of conversations that share
(run seed, task, trial). The headline delta uses the pairs scored on both sides. The worst-case (Manski) bounds
recount every pair with the unscored conversations cross-imputed: the arm's as failures and the
baseline's as successes (the lowest delta the data allow), then the reverse (the highest), each
with its bootstrap interval; a verdict is significant only when the whole worst-case interval
excludes 0. The same-direction imputations (every unscored conversation a failure, then a
success) are kept as a sensitivity: they assume the two arms lose alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from harness.report.clogit import conditional_logit
from harness.report.design import FAMILY, PAIR, PRIMARY, Contrast, refusal
from harness.report.stats import (
    ALPHA,
    MIN_TASKS_CI,
    MIN_TASKS_TEST,
    NAN,
    PairedDelta,
    bootstrap_sums,
    holm,
    holm_within,
    label_permutation_p,
    paired_delta,
    percentile_ci,
    task_sums,
)

BOUND_COLUMNS = [
    "all_pairs", "baseline_unscored", "variant_unscored", "unscored_delta", "unscored_ci_low", "unscored_ci_high",
    "unscored_p", "delta_if_failure", "ci_low_if_failure", "ci_high_if_failure", "p_if_failure",
    "delta_if_success", "ci_low_if_success", "ci_high_if_success", "p_if_success",
    "worst_low", "worst_low_ci_low", "worst_low_ci_high", "worst_high", "worst_high_ci_low",
    "worst_high_ci_high", "worst_ci_low", "worst_ci_high",
]  # fmt: skip
WORST_CASE = {"low": (0.0, 1.0), "high": (1.0, 0.0)}
"""Cross-imputation of the unscored conversations: (arm's as, baseline's as) for each end of the bounds."""


@dataclass(frozen=True)
class Options:
    resamples: int = 2000
    permutations: int = 20000

    def delta(
        self,
        tasks: np.ndarray,
        baseline: np.ndarray,
        variant: np.ndarray,
        rng: np.random.Generator,
        comparisons: int = 1,
        strata: np.ndarray | None = None,
    ) -> PairedDelta:
        """`paired_delta` with these resamples and permutations."""
        return paired_delta(
            tasks, baseline, variant, rng, self.resamples, self.permutations, comparisons, strata
        )


def paired_arms(family: pd.DataFrame, contrast: Contrast, extra: Sequence[str] = ()) -> pd.DataFrame:
    """One row per pair present in both arms: scored flag and success of each side (and of each `extra`
    column), task facts."""
    columns = [*PAIR, "scored", "success", "termination", "noop_task", "instruction_affect", *extra]
    base = family[family["condition"] == contrast.baseline][columns].set_index(PAIR)
    arm = family[family["condition"] == contrast.condition][columns].set_index(PAIR)
    pairs = base.merge(
        arm, how="inner", left_index=True, right_index=True, suffixes=("_base", "_arm")
    ).reset_index()
    return pairs.rename(
        columns={"noop_task_base": "noop_task", "instruction_affect_base": "instruction_affect"}
    )


def _scored(pairs: pd.DataFrame) -> pd.DataFrame:
    return pairs[pairs["scored_base"] & pairs["scored_arm"]]


def contrast_families(
    conversations: pd.DataFrame, contrasts: list[Contrast], refused: Collection[Contrast]
) -> Iterator[tuple[Contrast, pd.DataFrame]]:
    """Each contrast not refused, with the conversations of its family (every arm of its model, env, split)."""
    families = dict(tuple(conversations.groupby(FAMILY)))
    for contrast in contrasts:
        if contrast not in refused:
            yield contrast, families[contrast.family]


def contrast_pairs(
    conversations: pd.DataFrame,
    contrasts: list[Contrast],
    refused: Collection[Contrast],
    extra: Sequence[str] = (),
) -> Iterator[tuple[Contrast, pd.DataFrame]]:
    """Each contrast not refused, with its pairs (`paired_arms`), unscored ones included."""
    for contrast, family in contrast_families(conversations, contrasts, refused):
        yield contrast, paired_arms(family, contrast, extra)


@dataclass(frozen=True, eq=False)
class Comparisons:
    """What every paired table of the report reads: the conversations, the contrasts to draw on them, the
    ones refused, and the shared random state with its resampling settings."""

    conversations: pd.DataFrame
    """Every conversation the tables compare (`load.Sweep.conversations`, or a variant of it such as success
    scored at the step cap)."""
    contrasts: list[Contrast]
    """The planned contrasts (`design.plan`), in the order every table lists them."""
    rng: np.random.Generator
    """One generator shared by every table and consumed in the order they are built: building them in another
    order changes their intervals and p-values."""
    options: Options = Options()
    """Bootstrap resamples and sign-flip permutations."""
    refused: frozenset[Contrast] = frozenset()
    """The contrasts whose jobs may not be compared (`design.refusal`): no table draws them."""

    def with_conversations(self, conversations: pd.DataFrame) -> Comparisons:
        """The same contrasts, refusals, generator and options on other conversations."""
        return replace(self, conversations=conversations)

    def families(self, kind: str | None = None) -> Iterator[tuple[Contrast, pd.DataFrame]]:
        """Each contrast not refused (of `kind`, when given), with the conversations of its family."""
        return contrast_families(self.conversations, self._of_kind(kind), self.refused)

    def pairs(
        self, extra: Sequence[str] = (), kind: str | None = None
    ) -> Iterator[tuple[Contrast, pd.DataFrame]]:
        """Each contrast not refused (of `kind`, when given), with its pairs (`paired_arms`, carrying the
        `extra` columns), unscored ones included."""
        return contrast_pairs(self.conversations, self._of_kind(kind), self.refused, extra)

    def _of_kind(self, kind: str | None) -> list[Contrast]:
        return self.contrasts if kind is None else [c for c in self.contrasts if c.kind == kind]


Outcomes = Callable[[pd.DataFrame], Iterator[tuple[dict[str, object], np.ndarray, np.ndarray, np.ndarray]]]
"""From one contrast's pairs, per outcome compared: its label columns, then tasks, baseline and variant values."""


def outcome_deltas(
    comparisons: Comparisons,
    outcomes: Outcomes,
    extra: Sequence[str] = (),
    holm_by: str | list[str] | None = None,
) -> pd.DataFrame:
    """One row per contrast not refused and outcome `outcomes` yields from its pairs (`extra` columns carried):
    the outcome's labels and its paired delta; Holm within each group of `holm_by`, when given."""
    rows = []
    for contrast, pairs in comparisons.pairs(extra):
        for labels, tasks, baseline, variant in outcomes(pairs):
            result = comparisons.options.delta(tasks, baseline, variant, comparisons.rng)
            rows.append({**contrast.key(), **labels, **result.as_dict()})
    table = pd.DataFrame(rows)
    if holm_by and not table.empty:
        holm_within(table, holm_by)
    return table


def _imputed(pairs: pd.DataFrame, side: str, unscored_as: float) -> np.ndarray:
    return np.where(pairs[f"scored_{side}"], pairs[f"success_{side}"], unscored_as).astype(float)


def _imputed_delta(
    pairs: pd.DataFrame,
    arm_as: float,
    base_as: float,
    scored: PairedDelta,
    rng: np.random.Generator,
    options: Options,
    comparisons: int = 1,
) -> PairedDelta:
    """The delta over every pair, the arm's unscored conversations counted as `arm_as` and the baseline's as
    `base_as`; when no conversation is unscored, `scored` (the result over the scored pairs) itself."""
    if pairs["scored_base"].all() and pairs["scored_arm"].all():
        return scored
    base, arm = _imputed(pairs, "base", base_as), _imputed(pairs, "arm", arm_as)
    return options.delta(pairs["task_id"].to_numpy(), base, arm, rng, comparisons)


def _sign(value: float) -> int:
    return 0 if not np.isfinite(value) or value == 0 else (1 if value > 0 else -1)


def _bounds_flag(row: dict[str, object]) -> str:
    low, high = float(row["delta_if_failure"]), float(row["delta_if_success"])  # type: ignore[arg-type]
    if low == high:  # no unscored conversation among the pairs: nothing to bound
        return ""
    p_low, p_high = float(row["p_holm_if_failure"]), float(row["p_holm_if_success"])  # type: ignore[arg-type]
    reasons = []
    if _sign(low) * _sign(high) < 0:
        reasons.append("sign")
    if np.isfinite(p_low) and np.isfinite(p_high) and (p_low < ALPHA) != (p_high < ALPHA):
        reasons.append("significance")
    return " and ".join(reasons)


def points(value: float) -> str:
    return f"{100 * value:.1f} points"


def verdict(row: dict[str, object]) -> str:
    """The one-line reading of a row: significant (and robust), inconclusive with its MDE, or n/a."""
    if row.get("refused"):
        return str(row["refused"])
    p_holm, delta = float(row["p_holm"]), float(row["delta"])  # type: ignore[arg-type]
    flag = str(row.get("bounds_flag") or "")
    if not np.isfinite(p_holm):
        return f"n/a: {row['note']}"
    worst_low, worst_high = float(row.get("worst_ci_low", NAN)), float(row.get("worst_ci_high", NAN))  # type: ignore[arg-type]
    bounded = bool(row.get("any_unscored"))
    robust = not bounded or worst_low > 0 or worst_high < 0
    if p_holm < ALPHA and not robust:
        return f"not robust to unscored conversations (worst case {worst_low:+.3f} to {worst_high:+.3f})"
    if p_holm < ALPHA:
        if flag:
            return (
                f"not robust: significant on scored pairs, but the bounds for unscored conversations "
                f"disagree in {flag} ({row['delta_if_failure']:+.3f} to {row['delta_if_success']:+.3f})"
            )
        return f"{points(abs(delta))} {'lower' if delta < 0 else 'higher'} (significant after Holm)"
    mde = float(row["mde_adjusted"])  # type: ignore[arg-type]
    text = f"inconclusive at this size (MDE {points(mde) if math.isfinite(mde) else 'n/a'})"
    if bounded:
        text += f"; worst case for unscored conversations {worst_low:+.3f} to {worst_high:+.3f}"
    return text + (f"; the same-direction imputations disagree in {flag}" if flag else "")


def _family_sizes(prepared: list[tuple[Contrast, pd.DataFrame, str]]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for contrast, pairs, refused in prepared:
        testable = not refused and _scored(pairs)["task_id"].nunique() >= MIN_TASKS_TEST
        sizes[contrast.kind] = sizes.get(contrast.kind, 0) + int(testable)
    return sizes


def contrast_table(
    conversations: pd.DataFrame,
    contrasts: list[Contrast],
    settings: dict[str, dict[str, object]],
    rng: np.random.Generator,
    options: Options,
    allowed: tuple[str, ...] = (),
) -> pd.DataFrame:
    """The headline table: one row per contrast, Holm and simultaneous intervals within each kind."""
    families = dict(tuple(conversations.groupby(FAMILY)))
    prepared = []
    for contrast in contrasts:
        family = families[contrast.family]
        prepared.append(
            (contrast, paired_arms(family, contrast), refusal(contrast, family, settings, allowed))
        )
    sizes = _family_sizes(prepared)
    rows = []
    for contrast, pairs, refused in prepared:
        row: dict[str, object] = {**contrast.key(), "refused": refused, "comparisons": sizes[contrast.kind]}
        if refused:
            rows.append(row)
            continue
        scored = _scored(pairs)
        comparisons = sizes[contrast.kind]
        result = options.delta(
            scored["task_id"].to_numpy(),
            scored["success_base"].to_numpy(),
            scored["success_arm"].to_numpy(),
            rng,
            comparisons,
        )
        row.update(result.as_dict())
        if scored.empty and not pairs.empty:
            row["note"] = "no pair is scored in both arms: see the bounds for unscored conversations"
        unscored = options.delta(
            pairs["task_id"].to_numpy(),
            (~pairs["scored_base"]).to_numpy(float),
            (~pairs["scored_arm"]).to_numpy(float),
            rng,
        )
        row.update(
            {
                "all_pairs": len(pairs),
                "baseline_unscored": unscored.baseline_rate,
                "variant_unscored": unscored.variant_rate,
                "unscored_delta": unscored.delta,
                "unscored_ci_low": unscored.ci_low,
                "unscored_ci_high": unscored.ci_high,
                "unscored_p": unscored.p_value,
            }
        )
        row["any_unscored"] = bool((~pairs["scored_base"]).any() or (~pairs["scored_arm"]).any())
        for end, (arm_as, base_as) in WORST_CASE.items():
            bound = _imputed_delta(pairs, arm_as, base_as, result, rng, options, comparisons)
            row[f"worst_{end}"] = bound.delta
            row[f"worst_{end}_ci_low"] = bound.sim_ci_low
            row[f"worst_{end}_ci_high"] = bound.sim_ci_high
        row["worst_ci_low"], row["worst_ci_high"] = row["worst_low_ci_low"], row["worst_high_ci_high"]
        for name, value in (("failure", 0.0), ("success", 1.0)):
            bound = _imputed_delta(pairs, value, value, result, rng, options)
            values = (bound.delta, bound.ci_low, bound.ci_high, bound.p_value)
            for column, value_ in zip(("delta", "ci_low", "ci_high", "p"), values, strict=True):
                row[f"{column}_if_{name}"] = value_
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table = table.reindex(
        columns=list(dict.fromkeys([*table.columns, *PairedDelta.__dataclass_fields__, *BOUND_COLUMNS]))
    )
    for raw, adjusted in (
        ("p_value", "p_holm"),
        ("p_if_failure", "p_holm_if_failure"),
        ("p_if_success", "p_holm_if_success"),
    ):
        holm_within(table, "kind", raw, adjusted)
    records = table.to_dict("records")
    table["bounds_flag"] = [_bounds_flag(r) if not r["refused"] else "" for r in records]
    table["verdict"] = [
        verdict({**r, "bounds_flag": f}) for r, f in zip(records, table["bounds_flag"], strict=True)
    ]
    return table


def pooled_table(comparisons: Comparisons) -> pd.DataFrame:
    """Each primary contrast pooled over the envs that have it: tasks of every env together, resampled within env."""
    groups: dict[tuple[str, str, str, str], list[tuple[Contrast, pd.DataFrame]]] = {}
    for contrast, pairs in comparisons.pairs(kind=PRIMARY):
        groups.setdefault((contrast.model, contrast.split, contrast.condition, contrast.baseline), []).append(
            (contrast, _scored(pairs))
        )
    pooled = {key: members for key, members in groups.items() if len(members) > 1}
    rows = []
    for (model, split, condition, baseline), members in pooled.items():
        tasks = np.concatenate([f"{c.env}:" + p["task_id"].astype(str).to_numpy() for c, p in members])
        strata = np.concatenate([np.full(len(p), c.env) for c, p in members])
        result = comparisons.options.delta(
            tasks,
            np.concatenate([p["success_base"].to_numpy() for _, p in members]),
            np.concatenate([p["success_arm"].to_numpy() for _, p in members]),
            comparisons.rng,
            comparisons=len(pooled),
            strata=strata,
        )
        rows.append(
            {
                "model": model,
                "envs": ",".join(c.env for c, _ in members),
                "split": split,
                "contrast": f"{condition} − {baseline}",
                "comparisons": len(pooled),
                **result.as_dict(),
            }
        )
    table = pd.DataFrame(rows)
    if not table.empty:
        table["p_holm"] = holm(table["p_value"].tolist())
        table["verdict"] = [verdict(r) for r in table.to_dict("records")]
    return table


def model_table(comparisons: Comparisons) -> pd.DataFrame:
    """Conditional logit per contrast: log-odds of success in the arm against its baseline, within tasks."""
    rows = []
    for contrast, family in comparisons.families():
        arm = family[family["condition"].isin([contrast.condition, contrast.baseline]) & family["scored"]]
        fit = conditional_logit(
            arm["task_id"].to_numpy(),
            (arm["condition"] == contrast.condition).to_numpy(),
            arm["success"].to_numpy(),
        )
        rows.append({**contrast.key(), **fit.as_dict()})
    return pd.DataFrame(rows)


def _pass_hat(successes: np.ndarray, trials: int, k: int) -> np.ndarray:
    return np.array([math.comb(int(c), k) / math.comb(trials, k) for c in successes])


def pass_k_table(comparisons: Comparisons) -> pd.DataFrame:
    """pass^k of both arms over the tasks whose every trial is scored in both, and its paired difference.

    Keeping only complete tasks still selects: an arm that loses its would-be failures to unscored
    endings keeps its easy tasks. So the difference is also given over every task with all trials
    present in both arms: worst case (the arm's unscored as failures and the baseline's as
    successes, then the reverse), each end with its bootstrap interval, and the same-direction
    imputations (all unscored as failures, as successes) as a sensitivity.
    """
    rng, options = comparisons.rng, comparisons.options
    rows = []
    for contrast, pairs in comparisons.pairs():
        if pairs.empty:
            continue
        imputed = pairs.assign(
            **{
                f"{side}_if_{name}": _imputed(pairs, side, value)
                for side in ("base", "arm")
                for name, value in (("failure", 0.0), ("success", 1.0))
            }
        )
        per_task = imputed.groupby("task_id").agg(
            n=("trial", "size"),
            complete=("scored_base", "all"),
            complete_arm=("scored_arm", "all"),
            base=("success_base", "sum"),
            arm=("success_arm", "sum"),
            **{
                f"{side}_if_{name}": (f"{side}_if_{name}", "sum")
                for side in ("base", "arm")
                for name in ("failure", "success")
            },
        )
        trials = int(per_task["n"].max())
        present = per_task[per_task["n"] == trials]
        whole = present[present["complete"] & present["complete_arm"]]
        for k in range(1, trials + 1):
            base = _pass_hat(whole["base"].to_numpy(), trials, k)
            arm = _pass_hat(whole["arm"].to_numpy(), trials, k)
            low = high = NAN
            if len(whole) >= MIN_TASKS_CI:
                difference = arm - base
                low, high = percentile_ci(
                    bootstrap_sums(difference, np.ones(len(whole)), rng, options.resamples)
                )
            bounds: dict[str, object] = {
                f"delta_if_{name}": float(
                    (
                        _pass_hat(present[f"arm_if_{name}"].to_numpy(), trials, k)
                        - _pass_hat(present[f"base_if_{name}"].to_numpy(), trials, k)
                    ).mean()
                )
                if len(present)
                else NAN
                for name in ("failure", "success")
            }
            for end, arm_as, base_as in (("low", "failure", "success"), ("high", "success", "failure")):
                worst = _pass_hat(present[f"arm_if_{arm_as}"].to_numpy(), trials, k) - _pass_hat(
                    present[f"base_if_{base_as}"].to_numpy(), trials, k
                )
                bounds[f"worst_{end}"] = float(worst.mean()) if len(present) else NAN
                interval = (NAN, NAN)
                if len(present) >= MIN_TASKS_CI:
                    interval = percentile_ci(
                        bootstrap_sums(worst, np.ones(len(present)), rng, options.resamples)
                    )
                bounds[f"worst_{end}_ci_low"], bounds[f"worst_{end}_ci_high"] = interval
            bounds["worst_ci_low"] = bounds["worst_low_ci_low"]
            bounds["worst_ci_high"] = bounds["worst_high_ci_high"]
            rows.append(
                {
                    **contrast.key(),
                    "k": k,
                    "tasks_complete_in_both": len(whole),
                    "tasks_left_out": len(per_task) - len(whole),
                    "baseline_pass_k": float(base.mean()) if len(whole) else NAN,
                    "variant_pass_k": float(arm.mean()) if len(whole) else NAN,
                    "delta": float((arm - base).mean()) if len(whole) else NAN,
                    "ci_low": low,
                    "ci_high": high,
                    **bounds,
                }
            )
    return pd.DataFrame(rows)


def mood_interaction_table(comparisons: Comparisons) -> pd.DataFrame:
    """Does the contrast differ between instructions that state a mood and those that do not?"""
    rng, options = comparisons.rng, comparisons.options
    rows = []
    for contrast, all_pairs in comparisons.pairs():
        pairs = _scored(all_pairs)
        if pairs.empty:
            continue
        difference = pairs["success_arm"].to_numpy(float) - pairs["success_base"].to_numpy(float)
        sums, counts = task_sums(pairs["task_id"].to_numpy(), difference)
        mood = pairs.groupby("task_id")["instruction_affect"].first().sort_index().to_numpy() != ""
        row: dict[str, object] = {
            **contrast.key(),
            "tasks_with_mood": int(mood.sum()),
            "tasks_without": int((~mood).sum()),
        }
        row["delta_with_mood"] = sums[mood].sum() / counts[mood].sum() if mood.any() else NAN
        row["delta_without"] = sums[~mood].sum() / counts[~mood].sum() if (~mood).any() else NAN
        row["interaction"] = row["delta_with_mood"] - row["delta_without"]  # type: ignore[operator]
        row["ci_low"] = row["ci_high"] = row["p_value"] = NAN
        smaller = int(min(mood.sum(), (~mood).sum()))
        if smaller < MIN_TASKS_TEST:
            row["note"] = (
                f"{smaller} tasks in the smaller group: too few to test the interaction (needs {MIN_TASKS_TEST})"
            )
        elif not np.any(sums):
            row["note"] = "every task has the same result in both arms: nothing to test"
        else:
            row["note"] = ""
            row["p_value"] = label_permutation_p(sums / counts, mood, rng, min(options.permutations, 10000))
            if smaller >= MIN_TASKS_CI:
                with_mood = bootstrap_sums(sums[mood], counts[mood], rng, options.resamples)
                without = bootstrap_sums(sums[~mood], counts[~mood], rng, options.resamples)
                row["ci_low"], row["ci_high"] = percentile_ci(with_mood - without)
        rows.append(row)
    table = pd.DataFrame(rows)
    if not table.empty:
        holm_within(table, "kind")
    return table


def termination_table(comparisons: Comparisons) -> pd.DataFrame:
    """Paired change in how often each arm ends one way, for every ending the sweep has, unscored ones included."""
    endings = sorted(comparisons.conversations["termination"].unique())

    def each_ending(
        pairs: pd.DataFrame,
    ) -> Iterator[tuple[dict[str, object], np.ndarray, np.ndarray, np.ndarray]]:
        for ending in endings:
            base = (pairs["termination_base"] == ending).to_numpy(float)
            arm = (pairs["termination_arm"] == ending).to_numpy(float)
            if base.any() or arm.any():
                yield {"termination": ending}, pairs["task_id"].to_numpy(), base, arm

    return outcome_deltas(comparisons, each_ending)


def failure_examples(comparisons: Comparisons) -> pd.DataFrame:
    """Scored conversations an arm failed where its baseline succeeded on the same (run seed, task, trial)."""
    frames = []
    for contrast, family in comparisons.families():
        scored = family[family["scored"]]
        base = scored[scored["condition"] == contrast.baseline][[*PAIR, "success", "job"]]
        arm = scored[scored["condition"] == contrast.condition][[*PAIR, "success", "job", "termination"]]
        merged = arm.merge(base, on=PAIR, suffixes=("", "_baseline"))
        failed = merged[(merged["success"] == 0) & (merged["success_baseline"] == 1)]
        if not failed.empty:
            frames.append(failed.assign(**contrast.key()))
    columns = [
        "model",
        "env",
        "split",
        "contrast",
        "task_id",
        "trial",
        "run_seed",
        "termination",
        "job",
        "job_baseline",
    ]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns].sort_values(
        ["model", "env", "contrast", "task_id", "trial"]
    )


def without_noop(conversations: pd.DataFrame) -> tuple[pd.DataFrame | None, str]:
    """The conversations of tasks that are not no-op tasks, or None and why that table is not given."""
    flags = conversations["noop_task"]
    if flags.isna().all():
        return None, "unknown: the records carry no `noop_task` flag (a sweep from before it was recorded)"
    noop = conversations[flags.eq(True)].groupby(FAMILY)["task_id"].unique()
    if noop.empty:
        return None, "none of the tasks run is a no-op task, so the table without them is the same"
    listed = "; ".join(
        f"{'/'.join(map(str, key))}: tasks {', '.join(map(str, sorted(ids)))}" for key, ids in noop.items()
    )
    unknown = int(flags.isna().sum())
    extra = f" ({unknown} conversations carry no flag and are kept)" if unknown else ""
    return conversations[~flags.eq(True)], f"no-op tasks left out: {listed}{extra}"
