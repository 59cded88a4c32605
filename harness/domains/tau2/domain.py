"""A τ²-bench domain as a harness environment: τ²'s environment, tools, policy, tasks and evaluator.

Per conversation the state is a τ² `Environment` set to the task's initial state; tool calls
go through its `get_response`, the agent's as `assistant`, the simulated user's as `user`
(dual control). A finished conversation is turned back into τ²'s messages and scored by τ²'s
`evaluate_simulation` (DB, ENV_ASSERTION, ACTION, COMMUNICATE and NL_ASSERTION as the task's
`reward_basis` says). τ² judges NL assertions with a hosted model; here the harness's judge
backend answers τ²'s own judge prompt, and its verdicts are handed to τ²'s evaluator.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, distribution
from typing import Any

from tau2.agent.llm_agent import AGENT_INSTRUCTION, SYSTEM_PROMPT
from tau2.data_model import message as tau2_message
from tau2.data_model.simulation import NLAssertionCheck, SimulationRun, TerminationReason
from tau2.data_model.tasks import RewardType
from tau2.evaluator import evaluator_nl_assertions
from tau2.evaluator.evaluator import EvaluationType, evaluate_simulation
from tau2.evaluator.evaluator_nl_assertions import NLAssertionsEvaluator
from tau2.user.user_simulator import UserSimulator as Tau2UserSimulator
from tau2.user.user_simulator_base import OUT_OF_SCOPE, STOP, TRANSFER

from harness.backends.base import ChatModel, ConversationSpec
from harness.domains.base import FinishedConversation, FinishedJob, Outcome, identity_tools_for
from harness.domains.roles import roles_for
from harness.domains.tau2.retrieval import retrieved_documents
from harness.episode.record import ModelCall
from harness.episode.types import Action, Message, Role, Sampling, ToolSchema
from harness.episode.user import AGENT_GREETING
from harness.errors import BackendUnavailable

log = logging.getLogger(__name__)

JUDGE_SAMPLING = Sampling(temperature=0.0, max_tokens=2048)
"""τ²'s judge runs at temperature 0."""

_verdicts: ContextVar[list[NLAssertionCheck] | None] = ContextVar("tau2_nl_verdicts", default=None)
_tau2_judge_prompt = NLAssertionsEvaluator.evaluate_nl_assertions


class _PromptCaptured(Exception):
    def __init__(self, messages: list[Any]) -> None:
        self.messages = messages


def _capture(*, messages: list[Any], **_: Any) -> Any:
    raise _PromptCaptured(messages)


def _harness_verdicts(cls: Any, trajectory: Any, nl_assertions: list[str]) -> list[NLAssertionCheck]:
    verdicts = _verdicts.get()
    if verdicts is None:
        raise RuntimeError("τ² NL assertions are judged through the harness's judge backend")
    return verdicts


# τ² calls a hosted model for its NL-assertion judge: never here. Its prompt is read by making
# the call raise, and its evaluator gets the verdicts the harness's judge gave.
evaluator_nl_assertions.generate = _capture
NLAssertionsEvaluator.evaluate_nl_assertions = classmethod(_harness_verdicts)


def provenance(retrieval: str | None) -> dict[str, str]:
    """What a τ² job's scores depend on beyond its config: τ²'s version (banking's grading changed in
    1.0.1), the commit pip installed it from where pip recorded one (the fixes landed on τ²'s main a
    day before the version bump), and banking_knowledge's retrieval configuration. Part of the job's
    fingerprint, so the report refuses to compare jobs that differ in it."""
    try:
        installed = distribution("tau2")
    except PackageNotFoundError:
        return {"tau2_version": "unknown", **({"retrieval": retrieval} if retrieval else {})}
    recorded: dict[str, str] = {"tau2_version": installed.version}
    try:
        commit = (
            json.loads(installed.read_text("direct_url.json") or "{}").get("vcs_info", {}).get("commit_id")
        )
    except ValueError:
        commit = None
    if commit:
        recorded["tau2_commit"] = str(commit)
    return {**recorded, **({"retrieval": retrieval} if retrieval else {})}


class JudgeFailure(Exception):
    """The judge's answer could not be read as τ²'s verdicts."""


def judge_prompt(trajectory: list[Any], assertions: list[str]) -> list[Message]:
    """τ²'s own NL-assertion judge prompt for a conversation, as chat messages."""
    try:
        _tau2_judge_prompt.__func__(NLAssertionsEvaluator, trajectory, assertions)
    except _PromptCaptured as captured:
        return [{"role": m.role, "content": m.content} for m in captured.messages]
    raise RuntimeError("τ²'s NL-assertion evaluator made no judge call")


def parse_verdicts(text: str, assertions: list[str]) -> list[NLAssertionCheck]:
    """τ²'s reading of the judge's JSON, refusing an answer that grades nothing."""
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    try:
        data = json.loads(fenced.group(1) if fenced else text)
        checks = [
            NLAssertionCheck(
                nl_assertion=result["expectedOutcome"],
                met=result["metExpectation"],
                justification=result["reasoning"],
            )
            for result in data.get("results", [])
        ]
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise JudgeFailure(
            f"the NL-assertion judge's answer is not τ²'s verdict JSON ({error}): {text[:200]!r}"
        ) from error
    if len(checks) < len(assertions):
        raise JudgeFailure(f"the NL-assertion judge graded {len(checks)} of {len(assertions)} assertions")
    return checks


def _tool_call(call: dict[str, Any], requestor: str) -> Any | None:
    function = call["function"]
    arguments = function["arguments"]
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments or "{}")
        except json.JSONDecodeError:
            return None
    if not isinstance(arguments, dict):
        return None
    return tau2_message.ToolCall(
        id=call["id"], name=function["name"], arguments=arguments, requestor=requestor
    )


def to_tau2_messages(messages: Sequence[Message]) -> list[Any]:
    """The harness's transcript as τ²'s messages: the greeting, then every turn and tool call.

    The user's own tool calls (`requestor: user`) become τ² user tool calls; a call whose
    arguments were not a JSON object changed nothing and is left out, with its result."""
    trajectory: list[Any] = [tau2_message.AssistantMessage(role="assistant", content=AGENT_GREETING)]
    dropped: set[str] = set()
    for message in messages:
        role = message["role"]
        requestor = "user" if message.get("requestor") == "user" else "assistant"
        if role == "tool":
            if message.get("tool_call_id") in dropped:
                continue
            trajectory.append(
                tau2_message.ToolMessage(
                    id=message["tool_call_id"], role="tool", content=message["content"], requestor=requestor
                )
            )
            continue
        if role not in ("user", "assistant"):
            continue
        calls = []
        for call in message.get("tool_calls") or []:
            converted = _tool_call(call, requestor)
            if converted is None:
                dropped.add(call["id"])
            else:
                calls.append(converted)
        if not calls and not message.get("content"):
            continue
        kind = tau2_message.UserMessage if role == "user" else tau2_message.AssistantMessage
        trajectory.append(kind(role=role, content=message.get("content"), tool_calls=calls or None))
    return trajectory


class Tau2Domain:
    """One τ² domain and task split. Shared read-only by every conversation of a job."""

    agent_can_stop = True
    user_stop_tokens = (STOP, TRANSFER, OUT_OF_SCOPE)
    """τ²'s `UserSimulator.is_stop`."""
    user_strategies = ("llm",)
    terminate_tools: frozenset[str] = frozenset()

    def __init__(
        self,
        name: str,
        split: str,
        tasks: Sequence[Any],
        constructor: Any,
        env_name: str | None = None,
        env_kwargs: Callable[[Any], dict[str, Any]] | None = None,
    ) -> None:
        self.tau2_name = name
        self.name = env_name or f"tau2_{name}"
        self.tool_roles = roles_for(self.name)
        self.split = split
        self._tasks = list(tasks)
        self._constructor = constructor
        self._env_kwargs = env_kwargs
        environment = constructor(**self.env_kwargs(0)) if self._tasks else constructor()
        self._environment = environment
        self.provenance = provenance(self.env_kwargs(0).get("retrieval_variant") if self._tasks else None)
        self.wiki = SYSTEM_PROMPT.format(
            domain_policy=environment.get_policy(), agent_instruction=AGENT_INSTRUCTION
        )
        self.tools_info: list[ToolSchema] = [tool.openai_schema for tool in environment.get_tools()]
        self.identity_tools = identity_tools_for(self.tool_roles, self.tools_info)
        self._user_tools: dict[int, list[Any] | None] = {}
        self._prompts: dict[int, str] = {}

    @property
    def tasks(self) -> list[Any]:
        return self._tasks

    def env_kwargs(self, task_id: int) -> dict[str, Any]:
        """What τ²'s runner passes its environment constructor for a task (banking_knowledge's retrieval)."""
        return self._env_kwargs(self._tasks[task_id]) if self._env_kwargs else {}

    def prepare(self) -> None:
        return None

    def _user_tool_objects(self, task_id: int) -> list[Any] | None:
        if task_id not in self._user_tools:
            tools = None
            if self._environment.user_tools is not None:
                tools = self._environment.get_user_tools(include=self._tasks[task_id].user_tools) or None
            self._user_tools[task_id] = tools
        return self._user_tools[task_id]

    def user_tools_info(self, task_id: int) -> list[ToolSchema] | None:
        tools = self._user_tool_objects(task_id)
        return [tool.openai_schema for tool in tools] if tools else None

    def instruction(self, task_id: int) -> str:
        return str(self._tasks[task_id].user_scenario)

    def user_id(self, task_id: int) -> str:
        return str(self._tasks[task_id].id)

    def user_prompt(self, task_id: int, strategy: str) -> str:
        """τ²'s user simulator system prompt for the task, as τ²'s own `UserSimulator` builds it."""
        if task_id not in self._prompts:
            simulator = Tau2UserSimulator(
                llm="harness", instructions=self.instruction(task_id), tools=self._user_tool_objects(task_id)
            )
            self._prompts[task_id] = simulator.system_prompt
        return self._prompts[task_id]

    def new_state(self, task_id: int) -> Any:
        initial = self._tasks[task_id].initial_state
        environment = self._constructor(**self.env_kwargs(task_id))
        if initial is not None:
            environment.set_state(
                initialization_data=initial.initialization_data,
                initialization_actions=initial.initialization_actions,
                message_history=initial.message_history or [],
            )
        return environment

    def execute(self, state: Any, action: Action, requestor: Role = "agent") -> str:
        call = tau2_message.ToolCall(
            id="",
            name=action.name,
            arguments=action.kwargs,
            requestor="user" if requestor == "user" else "assistant",
        )
        return str(state.get_response(call).content)

    def noop_task(self, task_id: int) -> bool:
        """Doing nothing passes: no state-changing ground truth, nothing to communicate or assert."""
        criteria = self._tasks[task_id].evaluation_criteria
        if criteria is None:
            return True
        mutating = any(self._environment._is_mutating_tool(a.name) for a in criteria.actions or [])
        judged = RewardType.NL_ASSERTION in criteria.reward_basis and bool(criteria.nl_assertions)
        return not (mutating or criteria.communicate_info or criteria.env_assertions or judged)

    def nl_assertions(self, task_id: int) -> tuple[str, ...]:
        criteria = self.tasks[task_id].evaluation_criteria
        return tuple(criteria.nl_assertions or []) if criteria is not None else ()

    def oracle(self, spec: ConversationSpec, role: Role, delay_s: float) -> ChatModel:
        from harness.domains.tau2.oracle import Tau2OracleAgent, Tau2OracleUser

        if role == "agent":
            return Tau2OracleAgent(spec, self.tool_roles.confirm, delay_s)
        return Tau2OracleUser(spec)

    def environment_info(self) -> Any:
        return self._environment.get_info()

    def export_results(self, job: FinishedJob) -> None:
        """Also write the job in τ²'s own results format (`tau2_results.json`)."""
        from harness.domains.tau2.results import write_tau2_results
        from harness.store import JobDir

        try:
            write_tau2_results(self, job.records, job.output_dir, job.info, job.trials, job.max_steps)
        except Exception as error:  # the harness's own outputs are written; this copy is extra
            log.error(
                "could not write %s: %s: %s", JobDir(job.output_dir).tau2_results, type(error).__name__, error
            )

    def trajectory(self, task_id: int, messages: Sequence[Message]) -> list[Any]:
        initial = self._tasks[task_id].initial_state
        history = list(initial.message_history or []) if initial is not None else []
        return history + to_tau2_messages(messages)

    async def evaluate(self, conversation: FinishedConversation, judge: ChatModel | None) -> Outcome:
        task_id, messages = conversation.task_id, conversation.messages
        task = self._tasks[task_id]
        trajectory = self.trajectory(task_id, messages)
        criteria = task.evaluation_criteria
        verdicts: list[NLAssertionCheck] = []
        call: ModelCall | None = None
        if (
            criteria is not None
            and RewardType.NL_ASSERTION in criteria.reward_basis
            and criteria.nl_assertions
        ):
            assertions = list(criteria.nl_assertions)
            if judge is None:
                return Outcome(
                    0.0,
                    None,
                    judge_error=(
                        "no judge for this task's NL assertions: set env.judge (or a user.backend); "
                        "the agent's own model never grades itself"
                    ),
                )
            try:
                reply = await judge.chat(judge_prompt(trajectory, assertions), None, JUDGE_SAMPLING)
                call = {
                    "role": "judge",
                    "prompt_tokens": reply.prompt_tokens,
                    "completion_tokens": reply.completion_tokens,
                    "latency_s": round(reply.latency_s, 6),
                }
                verdicts = parse_verdicts(reply.content or "", assertions)
            except (JudgeFailure, BackendUnavailable) as error:
                return Outcome(0.0, None, judge_error=f"NL-assertion judge: {error}", judge_call=call)
        now = datetime.now(UTC).isoformat()
        simulation = SimulationRun(
            id=f"{self.name}-{task.id}",
            task_id=task.id,
            timestamp=now,
            start_time=now,
            end_time=now,
            duration=0.0,
            termination_reason=TerminationReason.USER_STOP,
            messages=trajectory,
        )
        token = _verdicts.set(verdicts)
        try:
            reward_info = await asyncio.to_thread(
                evaluate_simulation,
                simulation,
                task,
                EvaluationType.ALL,
                False,
                self.tau2_name,
                env_kwargs=self.env_kwargs(task_id),
            )
        finally:
            _verdicts.reset(token)
        info = reward_info.model_dump(mode="json")
        if getattr(task, "required_documents", None):  # banking: which governing documents the agent saw
            info["retrieval"] = retrieved_documents(task, messages)
        return Outcome(float(reward_info.reward), info, judge_call=call)


@contextmanager
def judged(verdicts: list[NLAssertionCheck]) -> Iterator[None]:
    """Hand `verdicts` to τ²'s NL-assertion evaluator inside the block (tests, re-scoring)."""
    token = _verdicts.set(verdicts)
    try:
        yield
    finally:
        _verdicts.reset(token)
