"""A test-only backend for the sweep tests: the oracle, paced, and made to fail on purpose."""

from __future__ import annotations

from harness.backends.base import ChatModel, ConversationSpec
from harness.backends.oracle import OracleBackend
from harness.episode.types import Role


class PacedOracleBackend(OracleBackend):
    """The oracle with `delay_s` per agent reply, raising for every conversation of `fail_variant`."""

    def __init__(self, delay_s: float = 0.0, fail_variant: str | None = None) -> None:
        super().__init__(delay_s)
        self.fail_variant = fail_variant

    def model_for(self, role: Role, conversation: ConversationSpec) -> ChatModel:
        if conversation.variant == self.fail_variant:
            raise RuntimeError(f"deliberate test failure for variant {conversation.variant}")
        return super().model_for(role, conversation)
