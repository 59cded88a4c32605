"""A job's conversations in τ²-bench's own results format (`tau2_results.json`).

τ²'s `Results` model, so `tau2 view` and `tau2.metrics.agent_metrics.compute_metrics` read a
harness job as one of τ²'s runs. Harness endings map onto τ²'s termination reasons.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tau2.data_model.simulation import (
    AgentInfo,
    Info,
    Results,
    RewardInfo,
    SimulationRun,
    TerminationReason,
    UserInfo,
)

from harness.domains.tau2.domain import Tau2Domain
from harness.episode.record import ConversationRecord
from harness.episode.types import Termination
from harness.extras import TAU2_BENCH_COMMIT
from harness.store import JobDir

TERMINATION_REASONS = {
    Termination.USER_STOP: TerminationReason.USER_STOP,
    Termination.AGENT_STOP: TerminationReason.AGENT_STOP,
    Termination.TRANSFER: TerminationReason.USER_STOP,
    Termination.STEP_CAP: TerminationReason.MAX_STEPS,
    Termination.AGENT_ERROR: TerminationReason.AGENT_ERROR,
    Termination.AGENT_CUT_OFF: TerminationReason.AGENT_ERROR,
    Termination.USER_ERROR: TerminationReason.USER_ERROR,
    Termination.USER_CUT_OFF: TerminationReason.USER_ERROR,
    Termination.INFRA_ERROR: TerminationReason.INFRASTRUCTURE_ERROR,
    Termination.HARNESS_ERROR: TerminationReason.UNEXPECTED_ERROR,
    Termination.JUDGE_ERROR: TerminationReason.UNEXPECTED_ERROR,
}
"""The harness's endings as τ²'s (`judge_error`: τ²'s evaluator has no name for it)."""


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def simulation(domain: Tau2Domain, record: ConversationRecord) -> SimulationRun:
    task = domain.tasks[record["task_id"]]
    reward_info = (
        RewardInfo.model_validate(record["reward_info"])
        if record["reward_info"]
        else RewardInfo(
            reward=0.0, info={"harness_termination": record["termination"], "error": record["error"]}
        )
    )
    return SimulationRun(
        id=f"{domain.name}-{domain.split}-{record['variant']}-{record['task_id']}-{record['trial']}",
        task_id=task.id,
        timestamp=_iso(record["started_at"]),
        start_time=_iso(record["started_at"]),
        end_time=_iso(record["started_at"] + record["duration_s"]),
        duration=record["duration_s"],
        termination_reason=TERMINATION_REASONS[Termination(record["termination"])],
        reward_info=reward_info,
        messages=domain.trajectory(record["task_id"], record["messages"]),
        trial=record["trial"],
        seed=record["seed"],
        info={
            "variant": record["variant"],
            "harness_termination": record["termination"],
            "scored": record["scored"],
        },
    )


def tau2_results(
    domain: Tau2Domain,
    records: Iterable[ConversationRecord],
    info: dict[str, Any],
    trials: int,
    max_steps: int,
) -> Results:
    records = list(records)
    simulator = info.get("user_simulator") or {}
    task_ids = sorted({r["task_id"] for r in records})
    return Results(
        info=Info(
            git_commit=TAU2_BENCH_COMMIT,
            num_trials=trials,
            max_steps=max_steps,
            max_errors=0,
            user_info=UserInfo(
                implementation=f"tau-emotion user simulator ({info.get('variant')})",
                llm=simulator.get("model"),
                llm_args=simulator.get("sampling"),
            ),
            agent_info=AgentInfo(implementation=f"tau-emotion {info.get('backend')}", llm=info.get("model")),
            environment_info=domain.environment_info(),
        ),
        tasks=[domain.tasks[i] for i in task_ids],
        simulations=[simulation(domain, r) for r in records],
    )


def write_tau2_results(
    domain: Tau2Domain,
    records: Iterable[ConversationRecord],
    output_dir: Path,
    info: dict[str, Any],
    trials: int,
    max_steps: int,
) -> Path:
    path = JobDir(output_dir).tau2_results
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(tau2_results(domain, records, info, trials, max_steps).model_dump_json(indent=2))
    tmp.replace(path)
    return path
