"""The conversation log, `conversations.jsonl`: the source of truth of a job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from harness.episode.record import RECORD_SCHEMA
from harness.store.jsonl import AppendLog
from harness.store.layout import JobDir


class ConversationLog(AppendLog):
    """Appends one record per finished conversation, flushed to disk before the next starts."""

    def __init__(self, directory: Path, schema: TypeAdapter[Any] | None = RECORD_SCHEMA) -> None:
        super().__init__(JobDir(directory).conversations, schema)
