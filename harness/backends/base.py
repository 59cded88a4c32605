"""The two small interfaces every backend implements."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from harness.episode.types import Message, Reply, Role, Sampling, ToolSchema


@dataclass(frozen=True, slots=True)
class ConversationSpec:
    """Which conversation a model is asked to serve: what a scripted backend needs to know."""

    env: str
    task_id: int
    trial: int
    seed: int
    variant: str
    task: Any
    """The environment's task (`Domain.tasks[task_id]`), opaque here: only its domain reads it."""
    scripted_opening: str = ""
    oracle: Callable[[ConversationSpec, Role, float], ChatModel] | None = None
    """The domain's plumbing-check players (`Domain.oracle`: spec, role, simulated latency), for
    `backend=oracle`; None where the domain has none."""
    nl_assertions: tuple[str, ...] = ()
    """The task's natural-language assertions a judge grades (τ²; `Domain.nl_assertions`)."""


@runtime_checkable
class ChatModel(Protocol):
    async def chat(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None, sampling: Sampling
    ) -> Reply:
        """Answer the conversation so far; raise `BackendUnavailable` when it cannot."""
        ...


class Backend(Protocol):
    """What a `backend=` config builds. Cheap to construct; resources start in `__aenter__`."""

    name: str
    plumbing_check: bool
    """True for backends that do not measure a model (the oracle)."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def model_for(self, role: Role, conversation: ConversationSpec) -> ChatModel:
        """The chat model that plays `role` in one conversation."""
        ...


class BackendContext:
    """`async with` for a backend: entering returns it, leaving calls `release()` however the block ended."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.release()

    async def release(self) -> None:
        """Free what the backend holds while entered (nothing here)."""
        return None


class SharedModelBackend(BackendContext):
    """Base for backends where one model serves every conversation and role."""

    name = "shared"
    plumbing_check = False

    def model_for(self, role: Role, conversation: ConversationSpec) -> ChatModel:
        assert isinstance(self, ChatModel)
        return self


@runtime_checkable
class ShapesRequests(Protocol):
    """A backend whose requests the model preset shapes: it says what each request carries."""

    def request_shape(self, sampling: Sampling) -> dict[str, Any]: ...


def request_shapes(
    agent: Backend, user: Backend, agent_sampling: Sampling, user_sampling: Sampling
) -> dict[str, Any]:
    """What the agent's and the user's requests carry, for the job's record; empty if not shaped."""
    shapes: dict[str, Any] = {}
    if isinstance(agent, ShapesRequests):
        shapes["agent"] = agent.request_shape(agent_sampling)
    if isinstance(user, ShapesRequests):
        shapes["user"] = user.request_shape(user_sampling)
    return shapes


def runtime_keys(config: Mapping[str, Any]) -> frozenset[str]:
    """The keys of a backend config that change how it runs, not what it answers: declared once,
    as `RUNTIME_KEYS`, by the backend class its `_target_` names. Left out of the job's
    fingerprint and of the judge's hash alike."""
    target = config.get("_target_")
    if not isinstance(target, str):
        return frozenset()
    from hydra.utils import get_class

    try:
        backend = get_class(target)
    except Exception:  # an unknown target fails where the backend is built, with its own message
        return frozenset()
    return frozenset(getattr(backend, "RUNTIME_KEYS", ()))


def without_runtime_keys(config: Mapping[str, Any]) -> dict[str, Any]:
    keys = runtime_keys(config)
    return {key: value for key, value in config.items() if key not in keys}


def comparable_fingerprint(fingerprint: Mapping[str, Any]) -> dict[str, Any]:
    """The fingerprint with the runtime keys of its backends (`backend`, `user.backend`) left out."""
    comparable = dict(fingerprint)
    if isinstance(comparable.get("backend"), Mapping):
        comparable["backend"] = without_runtime_keys(comparable["backend"])
    user = comparable.get("user")
    if isinstance(user, Mapping) and isinstance(user.get("backend"), Mapping):
        comparable["user"] = {**user, "backend": without_runtime_keys(user["backend"])}
    return comparable
