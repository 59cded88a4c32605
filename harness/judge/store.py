"""Which judgments count: a judgment of this very attempt of a conversation, not one to redo.

The files (`judgments/<judge>.jsonl`, `<judge>.json`) are `harness.store`'s (`JobDir.judgments`,
`harness.store.judgments`).
"""

from __future__ import annotations

from typing import Any

from harness.episode.record import ConversationRecord

REDO_ERRORS = frozenset({"unavailable", "crash"})
"""Judge errors of the infrastructure, judged again on a rerun (an invalid answer is a result)."""


def is_done(judgment: dict[str, Any] | None, conversation: ConversationRecord) -> bool:
    """Whether `judgment` judges this very conversation (not an earlier attempt of it) for good."""
    return (
        judgment is not None
        and judgment.get("conversation_started_at") == conversation.get("started_at")
        and judgment.get("error_kind") not in REDO_ERRORS
    )
