"""`backend=oracle`: a plumbing check of the loop and the environment's reward, not a model result.

The domain plays both sides (`Domain.oracle`): its agent replays the task's ground truth, its user
opens with the variant's scripted line and stops once the agent is done; as the judge of τ²'s NL
assertions it grades every assertion met. With real τ-bench every task must score 1.0; anything
less is a harness bug. The backend knows no domain: the conversation's spec carries the domain's
oracle.
"""

from __future__ import annotations

from harness.backends.base import ChatModel, ConversationSpec, SharedModelBackend
from harness.backends.scripted import ScriptedJudge
from harness.episode.types import Role
from harness.errors import ConfigError


class OracleBackend(SharedModelBackend):
    name = "oracle"
    plumbing_check = True
    RUNTIME_KEYS = frozenset({"delay_s"})
    """The simulated latency changes how fast it answers, not what."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s  # simulated latency per agent call, e.g. to interrupt a job mid-run

    def model_for(self, role: Role, conversation: ConversationSpec) -> ChatModel:
        if role == "judge":
            return ScriptedJudge(conversation)
        if conversation.oracle is None:
            raise ConfigError(f"backend=oracle: env {conversation.env!r} has no oracle to replay its tasks")
        return conversation.oracle(conversation, role, self.delay_s)
