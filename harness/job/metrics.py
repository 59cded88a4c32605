"""Job-level metrics: average reward and pass^k as τ-bench defines them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from math import comb
from typing import Any

from harness.episode.record import ConversationRecord
from harness.episode.types import STOP_TOKEN


def is_success(reward: float) -> bool:
    return abs(reward - 1.0) <= 1e-6


def pass_hat_k(successes_per_task: Mapping[Any, int], trials: int) -> dict[int, float]:
    """pass^k for k = 1..trials: the mean over tasks of C(c, k) / C(n, k) (τ-bench paper)."""
    if not successes_per_task or trials < 1:
        return {}
    return {
        k: sum(comb(c, k) / comb(trials, k) for c in successes_per_task.values()) / len(successes_per_task)
        for k in range(1, trials + 1)
    }


COUNTING = (
    "average_reward and pass_hat_k count scored conversations only; unscored ones (user, "
    "infrastructure and harness errors: see terminations and unscored_errors) are left out. "
    "results.json lists every conversation, an unscored one with reward 0 and info.scored false, "
    "so its mean reward is average_reward_unscored_as_failure."
)
"""How `summary.json` and `results.json` count, stated in both files and in outputs/README.md."""


def summarize(records: Iterable[ConversationRecord], trials: int) -> dict[str, Any]:
    """Metrics over scored conversations; errors not caused by the agent are only counted."""
    records = list(records)
    scored = [r for r in records if r["scored"]]
    terminations = Counter(r["termination"] for r in records)
    successes: dict[int, int] = {}
    trials_seen: dict[int, int] = {}
    for record in scored:
        task = record["task_id"]
        successes[task] = successes.get(task, 0) + int(is_success(record["reward"]))
        trials_seen[task] = trials_seen.get(task, 0) + 1
    complete = {task: c for task, c in successes.items() if trials_seen[task] == trials}
    return {
        "conversations": len(records),
        "scored": len(scored),
        "average_reward": sum(r["reward"] for r in scored) / len(scored) if scored else None,
        "average_reward_unscored_as_failure": (
            sum(r["reward"] if r["scored"] else 0.0 for r in records) / len(records) if records else None
        ),
        "counting": COUNTING,
        "pass_hat_k": {str(k): v for k, v in pass_hat_k(complete, trials).items()},
        "pass_hat_k_tasks": len(complete),
        "terminations": dict(sorted(terminations.items())),
        "unscored_errors": sum(1 for r in records if not r["scored"]),
        "tool_calls": sum(r["counts"]["tool_calls"] for r in records),
        "tool_errors": sum(r["counts"]["tool_errors"] for r in records),
        "noop_tasks": sorted({r["task_id"] for r in records if r.get("noop_task")}),
    }


def _content(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    return content if isinstance(content, str) else ""


def user_texts(messages: Iterable[Mapping[str, Any]]) -> list[str]:
    """What the simulated user said, as the agent saw it: `###STOP###` removed, empty messages left out."""
    texts = (_content(m).replace(STOP_TOKEN, "").strip() for m in messages if m.get("role") == "user")
    return [text for text in texts if text]


def agent_texts(messages: Iterable[Mapping[str, Any]]) -> list[str]:
    """The agent's text replies (tool calls without text left out)."""
    return [_content(m) for m in messages if m.get("role") == "assistant" and _content(m).strip()]


def words_per_turn(texts: list[str]) -> float | None:
    """`user_words_per_turn` and `agent_words_per_turn`: mean words per message; None without one."""
    return sum(len(text.split()) for text in texts) / len(texts) if texts else None
