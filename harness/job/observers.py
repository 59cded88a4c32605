"""Things that watch a job: the progress bar here, trackers such as W&B elsewhere."""

from __future__ import annotations

import sys
from typing import Any, Protocol

from tqdm import tqdm

from harness.episode.record import ConversationRecord


class JobObserver(Protocol):
    def on_start(self, info: dict[str, Any], total: int, already_done: int) -> None: ...

    def on_conversation(self, record: ConversationRecord) -> None: ...

    def on_end(self, summary: dict[str, Any]) -> None: ...

    def on_retry_pass(self, number: int, passes: int, conversations: int) -> None:
        """Retry pass `number` of at most `passes` is about to redo `conversations` conversations."""

    def on_abort(self, error: BaseException) -> None:
        """The job stops early (a backend that would not start, a signal); its outputs stay on disk."""


class ProgressBar:
    """Conversations done / total, with the running average reward of this job."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._bar: tqdm[Any] | None = None
        self._label = ""
        self._rewards = 0.0
        self._scored = 0

    def on_start(self, info: dict[str, Any], total: int, already_done: int) -> None:
        if self.enabled:
            self._label = f"{info['env']}/{info['variant']}"
            self._bar = tqdm(
                total=total, initial=already_done, desc=self._label, unit="conv", file=sys.stderr
            )

    def on_conversation(self, record: ConversationRecord) -> None:
        if record["scored"]:
            self._scored += 1
            self._rewards += record["reward"]
        if self._bar is not None:
            if self._scored:
                self._bar.set_postfix(reward=f"{self._rewards / self._scored:.3f}", refresh=False)
            self._bar.update(1)

    def on_retry_pass(self, number: int, passes: int, conversations: int) -> None:
        if self._bar is not None:
            self._bar.set_description(f"{self._label} retry {number}/{passes}", refresh=False)
            self._bar.reset(total=conversations)

    def on_end(self, summary: dict[str, Any]) -> None:
        if self._bar is not None:
            self._bar.close()

    def on_abort(self, error: BaseException) -> None:
        if self._bar is not None:
            self._bar.close()  # ends the bar's line, so the error is printed on a line of its own
