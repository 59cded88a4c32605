"""The report's cost table: dollars per role, per conversation and per cell, and GPU-hours.

Read from each job's summary.json (`cost`, written by `harness.job.cost.job_cost`); a cell's sum is
empty when any of its jobs has no price for that part, never counted as zero.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.report.render import Section
from harness.store import JobDir, JobFile, find_job_dirs, read_model_or_none, read_summary

CELL = ["model", "env", "split", "variant"]
SUMMED = ["conversations", "agent_usd", "user_usd", "judge_usd", "usd", "agent_reasoning_tokens",
          "user_reasoning_tokens", "wall_s", "gpu_hours"]  # fmt: skip
TEXT = (
    "US dollars from each job's token counts and the model presets' prices (per million tokens: input, "
    "cached input, output; reasoning tokens are output), split by who spent them: the agent, the simulated "
    "user{judge}. Empty where no price is known (a local model): not zero. GPU-hours: wall time of the "
    "job's runs times the GPUs of the agent's model preset, for jobs that hold GPUs."
)


def job_costs(sweep_dir: Path) -> pd.DataFrame:
    """One row per job directory with a summary: its cell and its `cost` block."""
    rows = []
    for job_dir in find_job_dirs(sweep_dir):
        summary = read_summary(job_dir)
        if summary is None or summary.cost is None:
            continue
        job = read_model_or_none(JobDir(job_dir).job_file, JobFile)
        info = job.info if job else {}
        cost, facts = summary.cost, summary.model_dump()
        rows.append(
            {
                **{key: info.get(key, facts.get(key)) for key in CELL},
                "conversations": summary.conversations,
                **{key: cost.get(key) for key in SUMMED if key != "conversations"},
            }
        )
    return pd.DataFrame(rows, columns=[*CELL, *SUMMED])


def cost_table(sweep_dir: Path) -> pd.DataFrame:
    """Per (model, env, split, variant): the sums over its jobs, and dollars per conversation."""
    jobs = job_costs(sweep_dir)
    if jobs.empty:
        return jobs
    numbers = jobs[SUMMED].apply(pd.to_numeric, errors="coerce")
    grouped = pd.concat([jobs[CELL], numbers], axis=1).groupby(CELL, sort=False, dropna=False)
    table = grouped.sum(min_count=1)
    unknown = grouped.agg(lambda column: column.isna().any())
    table = table.mask(unknown).reset_index()
    table.insert(len(CELL) + 5, "usd_per_conversation", table["usd"] / table["conversations"])
    if table["judge_usd"].isna().all():
        table = table.drop(columns="judge_usd")
    return table


def cost_section(table: pd.DataFrame) -> Section:
    judge = ", the judge" if "judge_usd" in table.columns else ""
    return Section("Cost", TEXT.format(judge=judge), table if not table.empty else None)
