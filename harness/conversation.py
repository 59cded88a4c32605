"""One τ-bench conversation: the agent acts on the environment, the simulated user answers.

The loop follows τ-bench's tool-calling agent: each agent message is one step; only its first
tool call is executed; a text reply goes to the user; `###STOP###` from the user or a
terminating tool ends the episode and scores it; hitting the step cap scores 0.
"""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass
from typing import Any

from harness.backends.base import ChatModel, ConversationSpec
from harness.domain import Domain
from harness.errors import (
    BackendUnavailable,
    EngineDied,
    ModelInputRejected,
    RequestRejected,
    UserSimulatorError,
)
from harness.types import RESPOND_ACTION_NAME, STOP_TOKEN, Action, Message, Sampling, Termination
from harness.user import UserSimulator
from harness.variants import instruction_affect


@dataclass(frozen=True, slots=True)
class LoopSettings:
    max_steps: int = 30
    agent_sampling: Sampling = Sampling()


class _AgentError(Exception):
    pass


def _parse_arguments(raw: str) -> dict[str, Any]:
    try:
        arguments = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError as error:
        raise _AgentError(f"malformed tool call arguments ({error}): {raw[:200]!r}") from error
    if not isinstance(arguments, dict):
        raise _AgentError(f"tool call arguments are not a JSON object: {raw[:200]!r}")
    return arguments


async def run_conversation(
    spec: ConversationSpec,
    domain: Domain,
    agent: ChatModel,
    user: UserSimulator,
    settings: LoopSettings,
) -> dict[str, Any]:
    """Run one conversation to its end and return its record (never raises for its own failures)."""
    started_at = time.time()
    started = time.perf_counter()
    task = domain.tasks[spec.task_id]
    messages: list[Message] = [{"role": "system", "content": domain.wiki}]
    agent_calls: list[dict[str, Any]] = []
    actions: list[Action] = []
    replies: list[str] = []
    termination: Termination | None = None
    error: str | None = None
    counts = {
        "steps": 0,
        "tool_calls": 0,
        "tool_errors": 0,
        "malformed_tool_calls": 0,
        "truncated_tool_calls": 0,
    }
    data = domain.new_data()
    reward_info: dict[str, Any] | None = None
    reward = 0.0

    try:
        first = await user.reset()
        messages.append({"role": "user", "content": first})
        if STOP_TOKEN in first:
            termination = Termination.USER_STOP
        for step in range(settings.max_steps):
            if termination is not None:
                break
            counts["steps"] = step + 1
            sampling = settings.agent_sampling.with_seed(spec.seed + step)
            reply = await agent.chat(messages, domain.tools_info, sampling)
            agent_calls.append(
                {
                    "role": "agent",
                    "step": step,
                    "prompt_tokens": reply.prompt_tokens,
                    "completion_tokens": reply.completion_tokens,
                    "cached_tokens": reply.cached_tokens,
                    "reasoning_tokens": reply.reasoning_tokens,
                    "latency_s": round(reply.latency_s, 6),
                    "parse_error": reply.parse_error,
                    "finish_reason": reply.finish_reason,
                }
            )
            if reply.parse_error:
                cut_off = reply.finish_reason == "length"
                counts["truncated_tool_calls" if cut_off else "malformed_tool_calls"] += 1
            if reply.tool_calls:
                call = reply.tool_calls[0]
                assistant = reply.to_message()
                assistant["tool_calls"] = assistant["tool_calls"][:1]
                messages.append(assistant)
                try:
                    action = Action(call.name, _parse_arguments(call.arguments))
                except _AgentError:
                    counts["malformed_tool_calls"] += 1
                    raise
                actions.append(action)
                observation = domain.execute(data, action)
                counts["tool_calls"] += 1
                if observation.startswith(("Error", "Unknown action")):
                    counts["tool_errors"] += 1
                messages.append(
                    {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": observation}
                )
                if call.name in domain.terminate_tools:
                    termination = Termination.TRANSFER
            else:
                content = reply.content or ""
                actions.append(Action(RESPOND_ACTION_NAME, {"content": content}))
                replies.append(content)
                messages.append({"role": "assistant", "content": content})
                answer = await user.step(content)
                messages.append({"role": "user", "content": answer})
                if STOP_TOKEN in answer:
                    termination = Termination.USER_STOP
        if termination is None:
            termination = Termination.STEP_CAP
        else:
            scored = domain.score(spec.task_id, data, replies)
            reward = scored.reward
            reward_info = scored.as_taubench()
    except EngineDied:
        raise  # the job stops: no conversation is recorded against a dead engine
    except (_AgentError, ModelInputRejected) as agent_error:
        termination, error = Termination.AGENT_ERROR, str(agent_error)
    except UserSimulatorError as user_error:
        termination, error = Termination.USER_ERROR, str(user_error)
    except BackendUnavailable as infra_error:
        termination, error = Termination.INFRA_ERROR, str(infra_error)
    except RequestRejected:
        raise  # the request's shape is wrong for every conversation: the job stops
    except Exception:  # one conversation's bug must not take the job down
        termination, error = Termination.HARNESS_ERROR, traceback.format_exc(limit=8)

    return {
        "env": domain.name,
        "split": domain.split,
        "task_id": spec.task_id,
        "trial": spec.trial,
        "seed": spec.seed,
        "variant": spec.variant,
        "reward": reward,
        "termination": str(termination),
        "scored": termination.scored,
        "error": error,
        "reward_info": reward_info,
        "user_id": task.user_id,
        "instruction": task.instruction,
        "instruction_affect": instruction_affect(task.instruction),
        "noop_task": domain.noop_task(spec.task_id),
        "counts": {
            **counts,
            "user_turns": user.turns,
            "agent_replies": len(replies),
        },
        "usage": _usage(agent_calls, user.calls),
        "calls": agent_calls + user.calls,
        "started_at": started_at,
        "duration_s": round(time.perf_counter() - started, 6),
        "messages": messages,
        "user_messages": user.history,
        "actions": [{"name": a.name, "kwargs": a.kwargs} for a in actions],
    }


def _usage(agent_calls: list[dict[str, Any]], user_calls: list[dict[str, Any]]) -> dict[str, Any]:
    def total(calls: list[dict[str, Any]], key: str) -> int:
        return sum(call.get(key) or 0 for call in calls)

    return {
        "agent_prompt_tokens": total(agent_calls, "prompt_tokens"),
        "agent_completion_tokens": total(agent_calls, "completion_tokens"),
        "agent_cached_tokens": total(agent_calls, "cached_tokens"),
        "agent_reasoning_tokens": total(agent_calls, "reasoning_tokens"),
        "agent_latency_s": round(sum(c["latency_s"] for c in agent_calls), 6),
        "user_prompt_tokens": total(user_calls, "prompt_tokens"),
        "user_completion_tokens": total(user_calls, "completion_tokens"),
        "user_cached_tokens": total(user_calls, "cached_tokens"),
        "user_reasoning_tokens": total(user_calls, "reasoning_tokens"),
        "user_latency_s": round(sum(c["latency_s"] for c in user_calls), 6),
    }
