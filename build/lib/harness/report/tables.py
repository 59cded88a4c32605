"""The report's tables, each a DataFrame computed from the conversation table."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from harness.metrics import pass_hat_k
from harness.report.stats import holm, paired_delta, percentile_ci, task_bootstrap

CELL = ["model", "env", "split", "condition"]
FAMILY = ["model", "env", "split"]
PAIR = ["run_seed", "task_id", "trial"]
VARIANT_ORDER = ["control", "frustration", "anxiety", "anger", "confusion"]
TRACKED_TERMINATIONS = ["transfer_to_human", "step_cap", "agent_error"]


def condition_order(conditions: list[str]) -> list[str]:
    def key(condition: str) -> tuple[int, str]:
        base = condition.split("@")[0]
        return (VARIANT_ORDER.index(base) if base in VARIANT_ORDER else len(VARIANT_ORDER), condition)

    return sorted(set(conditions), key=key)


def ordered(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return frame
    order = {c: i for i, c in enumerate(condition_order(list(frame["condition"])))}
    return (
        frame.assign(_order=frame["condition"].map(order))
        .sort_values([*FAMILY, "_order"])
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def trials_of(cell: pd.DataFrame) -> int:
    return int(cell[["run_seed", "trial"]].drop_duplicates().shape[0])


def pass_k(cell: pd.DataFrame) -> tuple[dict[int, float], int]:
    """pass^k over the tasks whose every trial was scored, as `harness.metrics` defines it."""
    scored = cell[cell["scored"]]
    trials = trials_of(cell)
    per_task = scored.groupby("task_id")["success"].agg(["sum", "count"])
    complete = per_task[per_task["count"] == trials]
    return pass_hat_k({t: int(s) for t, s in complete["sum"].items()}, trials), len(complete)


def cell_summary(
    conversations: pd.DataFrame, rng: np.random.Generator, resamples: int = 2000
) -> pd.DataFrame:
    """Per (model, env, split, condition): success, pass^k and conversation statistics."""
    rows = []
    for key, cell in conversations.groupby(CELL):
        scored = cell[cell["scored"]]
        per_trial = scored.groupby(["run_seed", "trial"])["success"].mean()
        ks, complete = pass_k(cell)
        low = high = float("nan")
        if len(scored):
            low, high = percentile_ci(
                task_bootstrap(scored["task_id"].to_numpy(), scored["success"].to_numpy(), rng, resamples)
            )
        terminations = cell["termination"]
        rows.append(
            {
                **dict(zip(CELL, key, strict=True)),
                "tasks": cell["task_id"].nunique(),
                "trials": trials_of(cell),
                "conversations": len(cell),
                "scored": len(scored),
                "unscored_errors": int((~cell["scored"]).sum()),
                "success_rate": scored["success"].mean() if len(scored) else float("nan"),
                "success_ci_low": low,
                "success_ci_high": high,
                "success_trial_mean": per_trial.mean() if len(per_trial) else float("nan"),
                "success_trial_std": per_trial.std(ddof=1) if len(per_trial) > 1 else float("nan"),
                **{f"pass^{k}": v for k, v in ks.items()},
                "pass_k_tasks": complete,
                "user_turns": cell["user_turns"].mean(),
                "agent_steps": cell["steps"].mean(),
                "tool_calls": cell["tool_calls"].mean(),
                "tool_errors": cell["tool_errors"].mean(),
                "transfer_rate": (terminations == "transfer_to_human").mean(),
                "step_cap_rate": (terminations == "step_cap").mean(),
                "user_words_per_turn": cell["user_words_per_turn"].mean(),
                "agent_words_per_turn": cell["agent_words_per_turn"].mean(),
                "duration_s": cell["duration_s"].mean(),
                "agent_tokens": cell["agent_tokens"].mean(),
                "user_tokens": cell["user_tokens"].mean(),
            }
        )
    return ordered(pd.DataFrame(rows))


def _pairs(family: pd.DataFrame, condition: str, outcome: str, scored_only: bool) -> pd.DataFrame:
    rows = family[family["scored"]] if scored_only else family
    control = rows[rows["condition"] == "control"].set_index(PAIR)[outcome]
    variant = rows[rows["condition"] == condition].set_index(PAIR)[outcome]
    return pd.concat({"control": control, "variant": variant}, axis=1, join="inner").reset_index()


def _deltas(
    conversations: pd.DataFrame,
    rng: np.random.Generator,
    outcome: str,
    scored_only: bool,
    resamples: int,
    by: Callable[[pd.DataFrame], pd.Series] | None = None,
) -> pd.DataFrame:
    rows = []
    for key, family in conversations.groupby(FAMILY):
        conditions = [c for c in condition_order(list(family["condition"])) if c != "control"]
        if "control" not in set(family["condition"]):
            continue
        for condition in conditions:
            pairs = _pairs(family, condition, outcome, scored_only)
            groups = [("all", pairs)]
            if by is not None:
                labels = by(family)
                groups = [
                    (label, pairs[pairs["task_id"].map(labels) == label]) for label in sorted(set(labels))
                ]
            for label, group in groups:
                result = paired_delta(
                    group["task_id"].to_numpy(),
                    group["control"].to_numpy(),
                    group["variant"].to_numpy(),
                    rng,
                    resamples,
                )
                rows.append(
                    {
                        **dict(zip(FAMILY, key, strict=True)),
                        "condition": condition,
                        "subset": label,
                        **result.as_dict(),
                    }
                )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["p_holm"] = np.nan
    for _, index in frame.groupby([*FAMILY, "subset"]).groups.items():
        frame.loc[index, "p_holm"] = holm(frame.loc[index, "p_value"].tolist())
    return frame


def success_deltas(
    conversations: pd.DataFrame, rng: np.random.Generator, resamples: int = 2000
) -> pd.DataFrame:
    """Each variant minus control in success rate, paired on (run seed, task, trial)."""
    return _deltas(conversations, rng, "success", True, resamples).drop(columns="subset", errors="ignore")


def affect_split_deltas(
    conversations: pd.DataFrame, rng: np.random.Generator, resamples: int = 2000
) -> pd.DataFrame:
    """The same deltas within tasks whose instruction already describes a mood, and the rest."""

    def has_affect(family: pd.DataFrame) -> pd.Series:
        affect = family.groupby("task_id")["instruction_affect"].first() != ""
        return affect.map({True: "instruction has affect words", False: "neutral instruction"})

    return _deltas(conversations, rng, "success", True, resamples, by=has_affect).rename(
        columns={"subset": "instruction"}
    )


def termination_deltas(
    conversations: pd.DataFrame, rng: np.random.Generator, resamples: int = 2000
) -> pd.DataFrame:
    """How much more often each variant ends in a transfer, the step cap or an agent error."""
    frames = []
    for termination in TRACKED_TERMINATIONS:
        marked = conversations.assign(ends=(conversations["termination"] == termination).astype(float))
        frame = _deltas(marked, rng, "ends", False, resamples)
        if not frame.empty:
            frames.append(frame.drop(columns="subset").assign(termination=termination))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def termination_rates(conversations: pd.DataFrame) -> pd.DataFrame:
    """Share of conversations per termination reason, per cell."""
    table = pd.crosstab(
        [conversations[c] for c in CELL], conversations["termination"], normalize="index"
    ).reset_index()
    table.columns.name = None
    return ordered(table)


def failure_examples(conversations: pd.DataFrame) -> pd.DataFrame:
    """Conversations a variant failed where control succeeded on the same task and trial."""
    scored = conversations[conversations["scored"]]
    control = scored[scored["condition"] == "control"][[*FAMILY, *PAIR, "success", "job"]]
    merged = scored[scored["condition"] != "control"].merge(
        control, on=[*FAMILY, *PAIR], suffixes=("", "_control")
    )
    failed = merged[(merged["success"] == 0) & (merged["success_control"] == 1)]
    columns = [*CELL, "task_id", "trial", "run_seed", "termination", "job", "job_control"]
    return ordered(failed[columns].sort_values([*CELL, "task_id", "trial"]))


def job_states(jobs: pd.DataFrame) -> pd.DataFrame:
    return jobs.sort_values("job").reset_index(drop=True)


def mixed_model(conversations: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Logistic model of success with a random intercept per task (variational Bayes).

    Returns the fixed effects per condition against control, or an empty table and the reason
    it was skipped: outcomes without variation or a fit that does not converge say nothing.
    """
    import warnings

    from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM

    rows = []
    notes = []
    scored = conversations[conversations["scored"]]
    for key, family in scored.groupby(FAMILY):
        label = "/".join(map(str, key))
        conditions = condition_order(list(family["condition"]))
        if "control" not in conditions or len(conditions) < 2:
            notes.append(f"{label}: no control to compare with")
            continue
        if family["success"].nunique() < 2:
            notes.append(f"{label}: every conversation has the same outcome, nothing to model")
            continue
        rates = family.groupby("condition")["success"].mean()
        separated = sorted(c for c, rate in rates.items() if rate in (0.0, 1.0))
        if separated:
            notes.append(
                f"{label}: success is always 0 or always 1 in {', '.join(separated)}, "
                "so the estimate would come from the prior, not the data"
            )
            continue
        data = family.assign(
            y=family["success"].astype(float),
            cond=pd.Categorical(family["condition"], categories=conditions),
            task=family["task_id"].astype(str),
        )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = BinomialBayesMixedGLM.from_formula(
                    "y ~ C(cond, Treatment('control'))", {"task": "0 + C(task)"}, data
                )
                fit = model.fit_vb()
        except Exception as error:  # a degenerate design must not stop the report
            notes.append(f"{label}: fit failed ({type(error).__name__}: {error})")
            continue
        means = np.asarray(fit.fe_mean)
        sds = np.asarray(fit.fe_sd)
        if not (np.all(np.isfinite(means)) and np.all(np.isfinite(sds))):
            notes.append(f"{label}: fit did not converge to finite estimates")
            continue
        for name, mean, sd in zip(model.exog_names, means, sds, strict=True):
            if name == "Intercept":
                continue
            condition = name.split("[T.")[-1].rstrip("]")
            rows.append(
                {
                    **dict(zip(FAMILY, key, strict=True)),
                    "condition": condition,
                    "log_odds": mean,
                    "posterior_sd": sd,
                    "ci_low": mean - 1.96 * sd,
                    "ci_high": mean + 1.96 * sd,
                    "odds_ratio": float(np.exp(mean)),
                }
            )
    columns = [*FAMILY, "condition", "log_odds", "posterior_sd", "ci_low", "ci_high", "odds_ratio"]
    return pd.DataFrame(rows, columns=columns), "; ".join(notes)
