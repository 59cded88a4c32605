"""The job's concurrency capped to what its engines' KV caches hold (`env.kv_tokens`).

A conversation keeps a call in flight most of the time, and its history stays in the engine's prefix
cache between calls; a job with more conversations in flight than the KV cache holds makes vLLM
preempt requests and evict prefixes, so every turn prefills its whole context again. After the engines
start, the job reads each engine's real KV-cache size in tokens and runs at most
`(capacity - shared) // per conversation` conversations at once, never more than configured.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from harness.backends.base import Backend

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class KVTokens:
    """Expected KV-cache tokens of one conversation of an environment (conf/env/*.yaml `kv_tokens`)."""

    shared: int
    """The agent's system prompt and tool schemas: one copy serves every conversation (prefix cache)."""
    agent: int
    """The rest of the agent's context at a conversation's end: turns, tool calls and results."""
    user: int
    """The simulated user's whole context at a conversation's end."""


def kv_cache_tokens(backend: Backend | None) -> int | None:
    """The KV-cache capacity in tokens of a started engine backend; None for backends without one."""
    value = getattr(backend, "kv_cache_tokens", None)
    return int(value) if isinstance(value, int) and value > 0 else None


def concurrency_cap(
    configured: int, kv: KVTokens | None, agent: Backend, user: Backend, env: str
) -> tuple[int, dict[str, Any] | None]:
    """The concurrency in force and what job.json records about it (None: no engine with a KV cache).

    The user's context counts on the agent's engine when the user runs there; a user on an engine
    of its own is capped by that engine's capacity.
    """
    if kv is None:
        return configured, None
    same_engine = user is agent
    engines: list[tuple[str, int, int, int]] = []  # role, capacity, shared, per conversation
    if (capacity := kv_cache_tokens(agent)) is not None:
        engines.append(("agent", capacity, kv.shared, kv.agent + (kv.user if same_engine else 0)))
    if not same_engine and (capacity := kv_cache_tokens(user)) is not None:
        engines.append(("user", capacity, 0, kv.user))
    if not engines:
        return configured, None
    fits = {role: max(1, (capacity - shared) // need) for role, capacity, shared, need in engines}
    binding = min(fits, key=lambda role: fits[role])
    in_force = min(configured, fits[binding])
    role, capacity, shared, need = next(e for e in engines if e[0] == binding)
    whose = "the agent's and the user's" if same_engine and role == "agent" else f"the {role}'s"
    parts = (
        f"agent {kv.agent:,} + user {kv.user:,}" if same_engine and role == "agent" else f"{role} {need:,}"
    )
    reason = (
        f"the {role}'s vLLM engine holds {capacity:,} KV-cache tokens; {shared:,} shared"
        f"{' (wiki and tools)' if shared else ''} + {fits[binding]} conversations × {need:,} "
        f"({parts}, env.kv_tokens of env={env}, {whose} contexts) fit"
    )
    if in_force < configured:
        log.warning("concurrency %d capped to %d: %s", configured, in_force, reason)
    else:
        log.info("concurrency %d kept: %s", configured, reason)
    return in_force, {
        "configured": configured,
        "in_force": in_force,
        "capped": in_force < configured,
        "kv_cache_tokens": {role: capacity for role, capacity, _, _ in engines},
        "fits": fits,
        "kv_tokens": {"shared": kv.shared, "agent": kv.agent, "user": kv.user},
        "user_on_agent_engine": same_engine,
        "reason": reason,
    }
