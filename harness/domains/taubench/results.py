"""A job's conversations in τ-bench's own results format (`results.json`): its `EnvRunResult` list."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.episode.record import ConversationRecord
from harness.store import JobDir, write_json


def taubench_results(records: Iterable[ConversationRecord]) -> list[dict[str, Any]]:
    """τ-bench's `EnvRunResult` list: task_id, reward, info, traj, trial."""
    results = []
    for record in records:
        info: dict[str, Any] = {
            "task": {
                "user_id": record["user_id"],
                "instruction": record["instruction"],
                "actions": (record["reward_info"] or {}).get("actions", []),
            },
            "source": "user" if record["termination"] == "user_stop" else None,
            "user_cost": 0.0,
            "reward_info": record["reward_info"],
            "termination": record["termination"],
            "variant": record["variant"],
            "scored": record["scored"],
        }
        if record["error"]:
            info["error"] = record["error"]
        if not record["scored"]:
            info["counting"] = "unscored: reward 0 here; left out of summary.json's average_reward"
        results.append(
            {
                "task_id": record["task_id"],
                "reward": record["reward"],
                "info": info,
                "traj": record["messages"],
                "trial": record["trial"],
            }
        )
    return results


def write_taubench_results(records: Iterable[ConversationRecord], output_dir: Path) -> None:
    write_json(JobDir(output_dir).results, taubench_results(records))
