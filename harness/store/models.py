"""The typed files of a job directory: `job.json` and `summary.json` (the record is `episode.record`,
a judgment `judge.schema.Judgment`, a manifest entry `cluster.manifest.ManifestEntry`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Key = tuple[int, int]
"""(task id, trial)."""

SummaryState = Literal["complete", "incomplete", "accepted_incomplete"]


class JobFile(BaseModel):
    """`job.json`: what defines the job's results, its facts, and the (task, trial) pairs it wants."""

    fingerprint: dict[str, Any]
    info: dict[str, Any]
    tasks: list[int] | None = None
    """The task ids of the latest run (absent in jobs written by harness versions before 0.2)."""
    trials: int | None = None
    study: dict[str, Any] | None = None
    """The sweep's declared estimand (`harness.job.study.Study`); None: none declared."""
    concurrency: dict[str, Any] | None = None
    """The concurrency in force and why, once the engines started (`harness.job.capacity`); None: no
    engine with a KV cache, or not started yet."""

    def wanted(self) -> set[Key] | None:
        if self.tasks is None or self.trials is None:
            return None
        return {(task, trial) for trial in range(self.trials) for task in self.tasks}


class Summary(BaseModel):
    """`summary.json`: the job's facts, its metrics (`job.metrics.summarize`), its outcome
    (`job.retry.outcome`) and its cost (`job.cost.job_cost`), rewritten whole at the end of a run."""

    model_config = ConfigDict(extra="allow")

    conversations: int = 0
    scored: int | None = None
    average_reward: float | None = None
    pass_hat_k: dict[str, float] = {}
    terminations: dict[str, int] = {}
    state: SummaryState | None = None
    """None in summaries written before the harness recorded it."""
    expected: int | None = None
    missing: int = 0
    missing_by_reason: dict[str, int] = {}
    user_errors: int = 0
    cost: dict[str, Any] | None = None
    fingerprint_sha: str | None = None

    def describe_missing(self) -> str:
        """E.g. `3 conversations missing (2 infra_error, 1 not_run); 1 user_error`."""
        parts = ", ".join(f"{count} {reason}" for reason, count in self.missing_by_reason.items() if count)
        text = f"{self.missing} conversations missing" + (f" ({parts})" if parts else "")
        if self.user_errors:
            text += f"; {self.user_errors} user_error"
        return text
