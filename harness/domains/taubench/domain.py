"""A τ-bench-shaped domain: tools, data, tasks and policy, loaded once per process.

Any environment shaped like τ-bench's `Env` works: tool classes with static `get_info()` and
`invoke(data, **kwargs)`, a data loader returning a JSON-like dict, tasks with `instruction`,
`actions` (each with `name` and `kwargs`) and `outputs`, and a policy text (the wiki).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from harness.backends.base import ChatModel, ConversationSpec
from harness.domains.base import FinishedConversation, FinishedJob, Outcome, identity_tools_for
from harness.domains.roles import ToolRoles, roles_for
from harness.domains.taubench.cow import CowDict
from harness.domains.taubench.datahash import DataHasher
from harness.domains.taubench.datahash import (
    data_hash as data_hash,  # re-exported: part of this module's interface
)
from harness.domains.taubench.datahash import to_hashable as to_hashable
from harness.domains.taubench.prompt import taubench_user_prompt
from harness.episode.types import RESPOND_ACTION_NAME, STOP_TOKEN, Action, Role, ToolSchema


class TaskLike(Protocol):
    user_id: str
    instruction: str
    outputs: list[str]

    @property
    def actions(self) -> Sequence[Any]: ...


class ToolLike(Protocol):
    @staticmethod
    def get_info() -> dict[str, Any]: ...

    @staticmethod
    def invoke(*args: Any, **kwargs: Any) -> Any: ...


@dataclass(frozen=True, slots=True)
class Reward:
    """τ-bench's `RewardResult`, as a plain dict in `as_taubench()`."""

    reward: float
    r_actions: bool
    gt_data_hash: str
    outputs: dict[str, bool] | None
    ground_truth_actions: list[Action]

    def as_taubench(self) -> dict[str, Any]:
        info: dict[str, Any]
        if self.outputs is not None:
            info = {
                "r_outputs": 1.0 if all(self.outputs.values()) else 0.0,
                "outputs": self.outputs,
                "r_actions": self.r_actions,  # the harness's addition: the database check, kept beside the outputs
            }
        else:
            info = {"r_actions": self.r_actions, "gt_data_hash": self.gt_data_hash}
        return {
            "reward": self.reward,
            "info": info,
            "actions": [{"name": a.name, "kwargs": a.kwargs} for a in self.ground_truth_actions],
        }


class TauBenchDomain:
    """One τ-bench domain and task split. Shared read-only by every conversation of a job."""

    agent_can_stop = False
    user_stop_tokens = (STOP_TOKEN,)
    user_strategies = ("llm", "react")

    def __init__(
        self,
        name: str,
        split: str,
        tools: Sequence[type[ToolLike]] | Sequence[ToolLike],
        tasks: Sequence[TaskLike],
        wiki: str,
        data_load_func: Callable[[], dict[str, Any]],
        terminate_tools: Sequence[str] = ("transfer_to_human_agents",),
        tool_roles: ToolRoles | None = None,
    ) -> None:
        self.name = name
        self.split = split
        self.tasks = list(tasks)
        self.wiki = wiki
        self.tools_info: list[dict[str, Any]] = [tool.get_info() for tool in tools]
        self.tools_map: dict[str, Any] = {
            info["function"]["name"]: tool for info, tool in zip(self.tools_info, tools, strict=True)
        }
        self.terminate_tools = frozenset(terminate_tools)
        self.tool_roles = tool_roles if tool_roles is not None else roles_for(name)
        self.identity_tools = identity_tools_for(self.tool_roles, self.tools_info)
        self.provenance: dict[str, str] = {}  # τ-bench is pinned to one commit: nothing varies
        self._data_load_func = data_load_func
        self._serialized_data: bytes | None = None
        self._base: dict[str, Any] | None = None
        self._hasher: DataHasher | None = None
        self._gt_hashes: dict[int, str] = {}
        self._noop: dict[int, bool] = {}
        self._lock = threading.Lock()

    def _base_data(self) -> dict[str, Any]:
        """The initial database, loaded once and never modified: views copy from it."""
        if self._base is None:
            with self._lock:
                if self._base is None:
                    self._base = self._data_load_func()
        return self._base

    def fresh_data(self) -> dict[str, Any]:
        """A full private copy of the initial database (parsed from cached JSON)."""
        if self._serialized_data is None:
            base = self._base_data()
            with self._lock:
                if self._serialized_data is None:
                    self._serialized_data = json.dumps(base).encode()
        return json.loads(self._serialized_data)

    def new_data(self) -> CowDict:
        """The initial database for one conversation, copied lazily (see `cow`).

        It behaves like `fresh_data()`, but only the tables and records the conversation
        reaches are copied, and `data_hash` reuses the cached hash text of everything unchanged.
        """
        return CowDict(self._base_data())

    def hasher(self) -> DataHasher:
        if self._hasher is None:
            base = self._base_data()
            with self._lock:
                if self._hasher is None:
                    self._hasher = DataHasher(base)
        return self._hasher

    def prepare(self) -> None:
        """Load the database and build the hash caches now (a blocking call, ~0.1–0.5 s once)."""
        self.hasher().prepare()

    def data_hash(self, data: dict[str, Any]) -> str:
        """τ-bench's hash of a database: fast for `new_data()` views, plain `data_hash` otherwise."""
        return self.hasher().digest(data)

    def new_state(self, task_id: int) -> CowDict:
        return self.new_data()

    def user_tools_info(self, task_id: int) -> list[ToolSchema] | None:
        return None

    def instruction(self, task_id: int) -> str:
        return self.tasks[task_id].instruction

    def user_id(self, task_id: int) -> str:
        return self.tasks[task_id].user_id

    def user_prompt(self, task_id: int, strategy: str) -> str:
        return taubench_user_prompt(
            self.tasks[task_id].instruction, "react" if strategy == "react" else "llm"
        )

    def execute(self, data: dict[str, Any], action: Action, requestor: Role = "agent") -> str:
        """Run one tool call the way τ-bench's `Env.step` does, errors included."""
        tool = self.tools_map.get(action.name)
        if tool is None:
            return f"Unknown action {action.name}"
        try:
            return str(tool.invoke(data=data, **action.kwargs))
        except Exception as error:  # τ-bench turns every tool exception into an observation
            return f"Error: {error}"

    def ground_truth_actions(self, task_id: int) -> list[Action]:
        return [
            Action(name=a.name, kwargs=dict(a.kwargs))
            for a in self.tasks[task_id].actions
            if a.name != RESPOND_ACTION_NAME
        ]

    def ground_truth_hash(self, task_id: int) -> str:
        """The database hash after the task's ground-truth actions; computed once per task."""
        cached = self._gt_hashes.get(task_id)
        if cached is not None:
            return cached
        data = self.new_data()
        for action in self.ground_truth_actions(task_id):
            if action.name not in self.terminate_tools:
                self.execute(data, action)
        digest = self.data_hash(data)
        self._gt_hashes[task_id] = digest
        return digest

    def noop_task(self, task_id: int) -> bool:
        """Whether doing nothing passes the task: it requires no output and its ground truth
        leaves the database as it was (no write action, or only ones that fail, e.g. a refused
        return). An agent that only looks things up, transfers or gives up scores 1 on it."""
        cached = self._noop.get(task_id)
        if cached is None:
            untouched = self.ground_truth_hash(task_id) == self.data_hash(self.new_data())
            cached = self._noop[task_id] = untouched and not self.tasks[task_id].outputs
        return cached

    def nl_assertions(self, task_id: int) -> tuple[str, ...]:
        return ()

    def oracle(self, spec: ConversationSpec, role: Role, delay_s: float) -> ChatModel:
        from harness.domains.taubench.oracle import OracleAgent, ScriptedUser

        if role == "agent":
            return OracleAgent(spec, self.tool_roles.confirm, delay_s)
        return ScriptedUser(spec)

    def score(self, task_id: int, data: dict[str, Any], agent_replies: Sequence[str]) -> Reward:
        """τ-bench's `Env.calculate_reward` on a finished conversation's database and replies."""
        task = self.tasks[task_id]
        gt_hash = self.ground_truth_hash(task_id)
        r_actions = self.data_hash(data) == gt_hash
        reward = 1.0 if r_actions else 0.0
        outputs: dict[str, bool] | None = None
        if task.outputs:
            normalized = [reply.lower().replace(",", "") for reply in agent_replies]
            outputs = {out: any(out.lower() in reply for reply in normalized) for out in task.outputs}
            if not all(outputs.values()):
                reward = 0.0
        return Reward(
            reward=reward,
            r_actions=r_actions,
            gt_data_hash=gt_hash,
            outputs=outputs,
            ground_truth_actions=self.ground_truth_actions(task_id),
        )

    def export_results(self, job: FinishedJob) -> None:
        """τ-bench's own `results.json` (`EnvRunResult` list)."""
        from harness.domains.taubench.results import write_taubench_results

        write_taubench_results(job.records, Path(job.output_dir))

    async def evaluate(self, conversation: FinishedConversation, judge: ChatModel | None = None) -> Outcome:
        scored = self.score(conversation.task_id, conversation.state, conversation.replies)
        return Outcome(scored.reward, scored.as_taubench())
