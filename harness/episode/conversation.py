"""One conversation: the agent acts on the environment, the simulated user answers.

The loop follows τ-bench's tool-calling agent: each agent message is one step; only its first
tool call is executed; a text reply goes to the user; `###STOP###` from the user or a
terminating tool ends the episode and scores it; hitting the step cap scores 0. Where the
environment allows it (τ²), `###STOP###` from the agent also ends it, and the user may call
tools of its own between its messages: those calls are run on the same state and recorded in
`messages` with `"requestor": "user"` (the agent never sees them) and in `user_actions`.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from dataclasses import dataclass
from typing import Any, Literal

from harness.backends.base import ChatModel, ConversationSpec
from harness.domains.base import Domain, FinishedConversation
from harness.episode.record import Counts, EpisodeRecord, ModelCall, Usage
from harness.episode.types import (
    RESPOND_ACTION_NAME,
    STOP_TOKEN,
    Action,
    Message,
    Reply,
    Sampling,
    Termination,
    ToolCall,
)
from harness.episode.user import UserSimulator, UserTurn
from harness.episode.variants import instruction_affect
from harness.errors import (
    BackendUnavailable,
    EngineDied,
    ModelInputRejected,
    RequestRejected,
    UserCutOff,
    UserSimulatorError,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LoopSettings:
    max_steps: int = 30
    agent_sampling: Sampling = Sampling()


class _AgentError(Exception):
    pass


class _AgentCutOff(Exception):
    pass


USER_REQUESTOR = "user"
"""`requestor` of the messages that record the simulated user's own tool calls."""


def agent_view(messages: list[Message]) -> list[Message]:
    """The conversation as the agent sees it: without the user's own tool calls."""
    return [m for m in messages if m.get("requestor") != USER_REQUESTOR]


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
    judge: ChatModel | None = None,
) -> EpisodeRecord:
    """Run one conversation to its end and return its record (never raises for its own failures)."""
    started_at = time.time()
    started = time.perf_counter()
    messages: list[Message] = [{"role": "system", "content": domain.wiki}]
    agent_calls: list[ModelCall] = []
    actions: list[Action] = []
    replies: list[str] = []
    termination: Termination | None = None
    error: str | None = None
    counts: Counts = {
        "steps": 0,
        "tool_calls": 0,
        "tool_errors": 0,
        "malformed_tool_calls": 0,
        "truncated_tool_calls": 0,
        "truncated_replies": 0,
        "empty_replies": 0,
        "user_turns": 0,
        "agent_replies": 0,
    }
    user_actions: list[dict[str, Any]] = []
    judge_calls: list[ModelCall] = []
    dual_control = bool(user.tools)
    state = domain.new_state(spec.task_id)
    reward_info: dict[str, Any] | None = None
    reward = 0.0
    reward_at_cap: float | None = None

    async def user_says(turn: UserTurn) -> str:
        """Run the user's own tool calls until it says something to the agent."""
        for _ in range(settings.max_steps):
            if isinstance(turn, str):
                return turn
            messages.append(
                {
                    "role": "user",
                    "content": None,
                    "tool_calls": [call.to_message() for call in turn],
                    "requestor": USER_REQUESTOR,
                }
            )
            for call in turn:
                observation = _user_tool_observation(domain, state, call)
                user_actions.append(
                    {"name": call.name, "arguments": call.arguments, "observation": observation}
                )
                messages.append(
                    {
                        "role": "tool",
                        "tool_call_id": call.id,
                        "name": call.name,
                        "content": observation,
                        "requestor": USER_REQUESTOR,
                    }
                )
                user.tool_result(call, observation)
            turn = await user.resume()
        raise UserSimulatorError(
            f"the simulated user called tools {settings.max_steps} times without a message"
        )

    try:
        first = await user_says(await user.reset())
        messages.append({"role": "user", "content": first})
        stops = domain.user_stop_tokens
        if any(token in first for token in stops):
            termination = Termination.USER_STOP
        for step in range(settings.max_steps):
            if termination is not None:
                break
            counts["steps"] = step + 1
            sampling = settings.agent_sampling.with_seed(spec.seed + step)
            view = agent_view(messages) if dual_control else messages
            reply = await agent.chat(view, domain.tools_info, sampling)
            agent_calls.append(
                {
                    "role": "agent",
                    "step": step,
                    "prompt_tokens": reply.prompt_tokens,
                    "completion_tokens": reply.completion_tokens,
                    "cached_tokens": reply.cached_tokens,
                    "cache_write_tokens": reply.cache_write_tokens,
                    "reasoning_tokens": reply.reasoning_tokens,
                    "latency_s": round(reply.latency_s, 6),
                    "parse_error": reply.parse_error,
                    "finish_reason": reply.finish_reason,
                    **reply.served(),
                }
            )
            cut_off = reply.finish_reason == "length"
            if reply.parse_error:
                counts["truncated_tool_calls" if cut_off else "malformed_tool_calls"] += 1
            if not reply.tool_calls and not (reply.content or "").strip():
                counts["empty_replies"] += 1
                if cut_off:
                    raise _AgentCutOff(_cut_off_message("agent", sampling, reply))
            if reply.tool_calls:
                call = reply.tool_calls[0]
                assistant = reply.to_message()
                assistant["tool_calls"] = assistant["tool_calls"][:1]
                messages.append(assistant)
                try:
                    action = Action(call.name, _parse_arguments(call.arguments))
                except _AgentError:
                    counts["truncated_tool_calls" if cut_off else "malformed_tool_calls"] += 1
                    raise
                actions.append(action)
                observation = domain.execute(state, action)
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
                if cut_off:
                    counts["truncated_replies"] += 1
                actions.append(Action(RESPOND_ACTION_NAME, {"content": content}))
                replies.append(content)
                messages.append({**reply.to_message(), "content": content})
                if domain.agent_can_stop and STOP_TOKEN in content:
                    termination = Termination.AGENT_STOP
                    continue
                user.appraise(messages)
                answer = await user_says(await user.step(content))
                messages.append({"role": "user", "content": answer})
                if any(token in answer for token in stops):
                    termination = Termination.USER_STOP
        finished = FinishedConversation(spec.task_id, state, messages, replies)
        if termination is None:
            termination = Termination.STEP_CAP
            reward_at_cap = await _score_at_cap(domain, finished, judge, judge_calls)
        else:
            outcome = await domain.evaluate(finished, judge)
            reward, reward_info = outcome.reward, outcome.info
            if outcome.judge_call is not None:
                judge_calls.append(outcome.judge_call)
            if outcome.judge_error is not None:
                termination, error = Termination.JUDGE_ERROR, outcome.judge_error
    except EngineDied:
        raise  # the job stops: no conversation is recorded against a dead engine
    except (_AgentError, ModelInputRejected) as agent_error:
        termination, error = Termination.AGENT_ERROR, str(agent_error)
    except _AgentCutOff as cut:
        termination, error = Termination.AGENT_CUT_OFF, str(cut)
    except UserCutOff as cut:
        termination, error = Termination.USER_CUT_OFF, str(cut)
    except UserSimulatorError as user_error:
        termination, error = Termination.USER_ERROR, str(user_error)
    except BackendUnavailable as infra_error:
        termination, error = Termination.INFRA_ERROR, str(infra_error)
    except RequestRejected:
        raise  # the request's shape is wrong for every conversation: the job stops
    except Exception:  # one conversation's bug must not take the job down
        termination, error = Termination.HARNESS_ERROR, traceback.format_exc(limit=8)

    record: EpisodeRecord = {
        "env": domain.name,
        "split": domain.split,
        "task_id": spec.task_id,
        "trial": spec.trial,
        "seed": spec.seed,
        "variant": spec.variant,
        "reward": reward,
        "reward_at_cap": reward_at_cap if termination is Termination.STEP_CAP else reward,
        "termination": termination,
        "scored": termination.scored,
        "error": error,
        "reward_info": reward_info,
        "user_id": domain.user_id(spec.task_id),
        "instruction": user.instruction,
        "instruction_affect": instruction_affect(user.instruction),
        "noop_task": domain.noop_task(spec.task_id),
        "counts": {
            **counts,
            "user_turns": user.turns,
            "agent_replies": len(replies),
            "user_tool_calls": len(user_actions),
        },
        "usage": _usage(agent_calls, user.calls),
        "calls": agent_calls + user.calls + judge_calls,
        "started_at": started_at,
        "duration_s": round(time.perf_counter() - started, 6),
        "messages": messages,
        "user_messages": user.history,
        "actions": [{"name": a.name, "kwargs": a.kwargs} for a in actions],
    }
    if dual_control:
        record["user_actions"] = user_actions
    return record


def _cut_off_message(role: str, sampling: Sampling, reply: Reply) -> str:
    """One line for a reply cut off at the token limit before any text or tool call."""
    thought = f" after {reply.reasoning_tokens} reasoning tokens" if reply.reasoning_tokens else ""
    return (
        f"the {role}'s model was cut off at max_tokens={sampling.max_tokens}{thought} with no reply "
        f"({reply.completion_tokens} completion tokens): raise the preset's {role}_sampling.max_tokens"
    )


async def _score_at_cap(
    domain: Domain,
    finished: FinishedConversation,
    judge: ChatModel | None,
    judge_calls: list[ModelCall],
) -> float | None:
    """The reward the database would get had the conversation ended at the cap; None if scoring fails."""
    try:
        outcome = await domain.evaluate(finished, judge)
    except EngineDied:
        raise
    except Exception:  # a sensitivity only: the conversation's own ending and reward stand
        log.warning("task %s: scoring at the step cap failed", finished.task_id, exc_info=True)
        return None
    if outcome.judge_call is not None:
        judge_calls.append(outcome.judge_call)
    return None if outcome.judge_error is not None else outcome.reward


def _user_tool_observation(domain: Domain, state: Any, call: ToolCall) -> str:
    """A user tool call's result; arguments that are not a JSON object are an observation too."""
    try:
        arguments = _parse_arguments(call.arguments)
    except _AgentError as bad:
        return f"Error: {bad}"
    return domain.execute(state, Action(call.name, arguments), requestor="user")


TokenCount = Literal[
    "prompt_tokens", "completion_tokens", "cached_tokens", "cache_write_tokens", "reasoning_tokens"
]


def _usage(agent_calls: list[ModelCall], user_calls: list[ModelCall]) -> Usage:
    def total(calls: list[ModelCall], key: TokenCount) -> int:
        return sum(call.get(key) or 0 for call in calls)

    return {
        "agent_prompt_tokens": total(agent_calls, "prompt_tokens"),
        "agent_completion_tokens": total(agent_calls, "completion_tokens"),
        "agent_cached_tokens": total(agent_calls, "cached_tokens"),
        "agent_cache_write_tokens": total(agent_calls, "cache_write_tokens"),
        "agent_reasoning_tokens": total(agent_calls, "reasoning_tokens"),
        "agent_latency_s": round(sum(c.get("latency_s", 0.0) for c in agent_calls), 6),
        "user_prompt_tokens": total(user_calls, "prompt_tokens"),
        "user_completion_tokens": total(user_calls, "completion_tokens"),
        "user_cached_tokens": total(user_calls, "cached_tokens"),
        "user_cache_write_tokens": total(user_calls, "cache_write_tokens"),
        "user_reasoning_tokens": total(user_calls, "reasoning_tokens"),
        "user_latency_s": round(sum(c.get("latency_s", 0.0) for c in user_calls), 6),
    }
