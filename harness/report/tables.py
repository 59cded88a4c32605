"""The report's tables, each a DataFrame computed from the conversation table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.job.metrics import pass_hat_k
from harness.report.design import FAMILY, condition_order
from harness.report.stats import percentile_ci, task_bootstrap

CELL = [*FAMILY, "condition"]


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
    """pass^k over the tasks whose every trial was scored, as `harness.job.metrics` defines it."""
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
        terminations = cell["termination"]
        low = high = float("nan")
        if len(scored):
            low, high = percentile_ci(
                task_bootstrap(scored["task_id"].to_numpy(), scored["success"].to_numpy(), rng, resamples)
            )
        rows.append(
            {
                **dict(zip(CELL, key, strict=True)),
                "tasks": cell["task_id"].nunique(),
                "trials": trials_of(cell),
                "conversations": len(cell),
                "scored": len(scored),
                "unscored_errors": int((~cell["scored"]).sum()),
                "unscored_rate": float((~cell["scored"]).mean()),
                "user_error_rate": float((terminations == "user_error").mean()),
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


def termination_rates(conversations: pd.DataFrame) -> pd.DataFrame:
    """Share of conversations per termination reason, per cell."""
    table = pd.crosstab(
        [conversations[c] for c in CELL], conversations["termination"], normalize="index"
    ).reset_index()
    table.columns.name = None
    return ordered(table)


def job_states(jobs: pd.DataFrame) -> pd.DataFrame:
    return jobs.sort_values("job").reset_index(drop=True)
