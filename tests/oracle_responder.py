"""The oracle's replies for a fake provider server: which conversation a request belongs to, and its answer.

A fake server turns each request it receives (in its API's own shape) back into chat messages and
asks `OracleResponder`, which plays the harness's own oracle (`OracleAgent`, `ScriptedUser`, their
τ²-shaped versions and `ScriptedJudge`) for the task the request is about:
- the simulated user's system prompt holds its task's instruction; it opens with `request #<index>`;
- the agent's conversation starts with that opening, so its task is read from it;
- the judge's prompt holds the task's NL assertions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.backends.base import ChatModel, ConversationSpec
from harness.backends.scripted import ScriptedJudge
from harness.domains.tau2.oracle import Tau2OracleAgent, Tau2OracleUser
from harness.domains.taubench.oracle import OracleAgent, ScriptedUser
from harness.episode.types import Message, Reply, Sampling

OPENING = "Hello, I need help with request #{index}."
REQUEST_ID = re.compile(r"request #(\d+)\.")


@dataclass
class OracleResponder:
    wiki: str
    tasks: Sequence[Any]
    instructions: Sequence[str]

    @classmethod
    def for_domain(cls, domain: Any) -> OracleResponder:
        tasks = list(domain.tasks)
        return cls(domain.wiki, tasks, [domain.instruction(i) for i in range(len(tasks))])

    def _spec(self, index: int) -> ConversationSpec:
        return ConversationSpec(
            env="fake", task_id=index, trial=0, seed=0, variant="", task=self.tasks[index],
            scripted_opening=OPENING.format(index=index),
        )  # fmt: skip

    def model(self, messages: Sequence[Message]) -> ChatModel:
        system = "".join(m.get("content") or "" for m in messages if m["role"] == "system")
        dual = hasattr(self.tasks[0], "evaluation_criteria")
        if not system:
            text = " ".join(m.get("content") or "" for m in messages)
            index = next(
                i
                for i, task in enumerate(self.tasks)
                if dual
                and task.evaluation_criteria.nl_assertions
                and all(a in text for a in task.evaluation_criteria.nl_assertions)
            )
            spec = dataclasses.replace(
                self._spec(index), nl_assertions=tuple(self.tasks[index].evaluation_criteria.nl_assertions)
            )
            return ScriptedJudge(spec)
        if system.strip() == self.wiki.strip():
            opening = next(m["content"] for m in messages if m["role"] == "user")
            match = REQUEST_ID.search(opening or "")
            assert match, f"the agent's conversation does not open with a request id: {opening!r}"
            spec = self._spec(int(match.group(1)))
            return Tau2OracleAgent(spec) if dual else OracleAgent(spec)
        matches = [i for i, text in enumerate(self.instructions) if text in system]
        assert matches, "a request that is neither the agent's nor a known task's user"
        spec = self._spec(max(matches, key=lambda i: len(self.instructions[i])))
        return Tau2OracleUser(spec) if dual else ScriptedUser(spec)

    def __call__(self, messages: Sequence[Message], tools: Sequence[Any] | None) -> Reply:
        model = self.model(messages)
        return asyncio.run(model.chat(list(messages), list(tools or []) or None, Sampling()))
