"""The loop's dual-control path on a toy τ²-shaped domain (CI: no τ² needed): the user's own tool
calls, the agent's stop, the NL judge backend and its failures."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.backends.base import ChatModel, ConversationSpec
from harness.backends.oracle import OracleBackend
from harness.episode.conversation import LoopSettings, run_conversation
from harness.episode.types import Message, Reply, Sampling, ToolSchema
from harness.episode.user import UserSimulator
from harness.episode.variants import Variant
from harness.job.app import build_job
from harness.job.runner import run_job
from harness.store import CONVERSATIONS
from tests.helpers import compose_config, read_jsonl
from tests.toy_dual_domain import ToyDualDomain

DUAL = ["env.domain._target_=tests.toy_dual_domain.load_toy_dual_domain", "env.name=toy_dual"]
JUDGE = (
    "++env.judge={_target_: harness.backends.scripted.ScriptedBackend, agent: [{text: unused}], judge: %s}"
)


def _run(out: Path, overrides: list[str]) -> dict[str, Any]:
    return asyncio.run(run_job(build_job(compose_config([*DUAL, *overrides]), out)))


def test_oracle_replays_agent_and_user_ground_truth_in_every_variant(tmp_path: Path) -> None:
    for variant in ("control", "anger"):
        summary = _run(tmp_path / variant, [f"variant={variant}"])
        assert summary["average_reward"] == 1.0 and summary["scored"] == 2, summary
    record = read_jsonl(tmp_path / "anger" / CONVERSATIONS)
    fixed = next(r for r in record if r["task_id"] == 0)
    assert [a["name"] for a in fixed["user_actions"]] == ["toggle_airplane_mode", "check_signal"]
    assert fixed["user_actions"][1]["observation"] == "Signal: good"
    assert fixed["counts"]["user_tool_calls"] == 2 and fixed["counts"]["tool_calls"] == 1
    marked = [m for m in fixed["messages"] if m.get("requestor") == "user"]
    assert [m["role"] for m in marked] == ["user", "tool", "user", "tool"]
    assert marked[0]["tool_calls"][0]["function"]["name"] == "toggle_airplane_mode"
    assert fixed["reward_info"]["nl"] == [True]


@dataclass
class _Recording:
    inner: ChatModel
    seen: list[list[Message]] = field(default_factory=list)

    async def chat(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None, sampling: Sampling
    ) -> Reply:
        self.seen.append(list(messages))
        return await self.inner.chat(messages, tools, sampling)


def test_the_agent_never_sees_the_users_own_tool_calls() -> None:
    domain = ToyDualDomain()
    variant = Variant.from_config(dict(compose_config([]).variant))
    spec = ConversationSpec(
        "toy_dual", 0, 0, 0, "control", domain.tasks[0], scripted_opening="My phone has no signal.",
        oracle=domain.oracle, nl_assertions=domain.nl_assertions(0),
    )  # fmt: skip
    backend = OracleBackend()
    agent = _Recording(backend.model_for("agent", spec))
    user_model = _Recording(backend.model_for("user", spec))
    user = UserSimulator(
        model=user_model,
        instruction=domain.instruction(0),
        variant=variant,
        framing="{persona}",
        sampling=Sampling(),
        base_prompt=domain.user_prompt(0, "llm"),
        tools=domain.user_tools_info(0),
    )
    record = asyncio.run(
        run_conversation(spec, domain, agent, user, LoopSettings(), judge=backend.model_for("judge", spec))
    )
    assert record["reward"] == 1.0
    assert all("requestor" not in m for seen in agent.seen for m in seen)
    # the user sees its own calls and their results, with the roles swapped
    last = user_model.seen[-1]
    assert any(m["role"] == "assistant" and m.get("tool_calls") for m in last)
    assert any(m["role"] == "tool" and m["content"] == "Airplane mode off" for m in last)
    assert (
        user.turns
        == record["counts"]["user_turns"]
        == sum(1 for m in record["messages"] if m["role"] == "user" and "requestor" not in m)
    )


def test_user_tool_calls_with_bad_arguments_are_observations(tmp_path: Path) -> None:
    user = (
        "backend.user=[{tool: toggle_airplane_mode, arguments: '{oops'}, {tool: toggle_airplane_mode, arguments: '[1]'},"
        " {tool: check_signal, arguments: {loud: true}}, {tool: reboot}, {text: 'still broken'}, {text: '###STOP###'}]"
    )
    summary = _run(tmp_path, ["backend=scripted", user, "env.tasks=[1]"])
    assert summary["terminations"] == {"user_stop": 1} and summary["scored"] == 1
    observations = [a["observation"] for a in read_jsonl(tmp_path / CONVERSATIONS)[0]["user_actions"]]
    assert observations[0].startswith("Error: malformed tool call arguments")
    assert observations[1].startswith("Error: tool call arguments are not a JSON object")
    assert observations[2] == "Error: check_signal takes [], got ['loud']"
    assert observations[3] == "Error: user has no tool reboot"


def test_the_agent_can_end_the_conversation(tmp_path: Path) -> None:
    summary = _run(
        tmp_path,
        [
            "backend=scripted",
            "backend.agent=[{text: 'Your line is suspended. ###STOP###'}]",
            "backend.user=[{text: hi}]",
            "env.tasks=[1]",
        ],
    )
    assert summary["terminations"] == {"agent_stop": 1} and summary["average_reward"] == 1.0


def test_nl_judge_verdicts_and_failures(tmp_path: Path) -> None:
    unmet = _run(tmp_path / "unmet", [JUDGE % "unmet", "env.tasks=[0]"])
    assert unmet["average_reward"] == 0.0 and unmet["scored"] == 1
    failed = _run(tmp_path / "fail", [JUDGE % "fail", "env.tasks=[0]"])
    assert failed["terminations"] == {"judge_error": 1} and failed["scored"] == 0
    record = read_jsonl(tmp_path / "fail" / CONVERSATIONS)[0]
    assert record["error"].startswith("NL-assertion judge:") and not record["scored"]
    assert failed["judge"] == "scripted"


def test_the_environments_own_stop_tokens_end_the_conversation(tmp_path: Path) -> None:
    summary = _run(
        tmp_path,
        [
            "backend=scripted",
            "backend.agent=[{text: 'Transferring you.'}]",
            "backend.user=[{text: hi}, {text: '###TRANSFER###'}]",
        ],
    )
    assert summary["terminations"] == {"user_stop": 2}
