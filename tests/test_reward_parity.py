"""The harness's reward is τ-bench's `Env.calculate_reward`, bit for bit, on real tasks.

Each case runs the same actions through τ-bench's own env and through a copy-on-write view
(`TauBenchDomain.new_data`), then compares τ-bench's reward result with `TauBenchDomain.score`, and the
database hashes, for databases that should pass and databases that should fail.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import pytest

from harness.domains.taubench.cow import to_plain
from harness.domains.taubench.domain import TauBenchDomain
from harness.domains.taubench.loader import INSTALL_HINT, load_taubench_domain, taubench_available
from harness.episode.types import RESPOND_ACTION_NAME, Action
from tests.helpers import taubench_fields

pytestmark = [
    pytest.mark.taubench,
    pytest.mark.slow,
    pytest.mark.skipif(not taubench_available(), reason=INSTALL_HINT),
]
TASK_COUNTS = {"retail": 115, "airline": 50}
EVERY_TASK = os.environ.get("TAU_PARITY_ALL") == "1"
"""TAU_PARITY_ALL=1 checks every task (~3 CPU-minutes); by default every third task."""


class _SilentUser:
    def reset(self, instruction: str | None = None) -> str:
        return ""

    def step(self, content: str) -> str:
        return ""

    def get_total_cost(self) -> float:
        return 0.0


def _taubench(
    env_name: str, task_id: int, actions: Sequence[Action], replies: Sequence[str]
) -> tuple[str, Any]:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from tau_bench.envs import get_env
    from tau_bench.types import Action as TauAction

    env = get_env(env_name, user_strategy="human", user_model="none", task_split="test", task_index=task_id)
    env.user = _SilentUser()
    env.data, env.task, env.actions = env.data_load_func(), env.tasks[task_id], []  # reset() minus input()
    for action in actions:
        env.step(TauAction(name=action.name, kwargs=action.kwargs))
    for reply in replies:
        env.step(TauAction(name=RESPOND_ACTION_NAME, kwargs={"content": reply}))
    data_hash = env.get_data_hash()
    return data_hash, env.calculate_reward()


def _harness(
    domain: TauBenchDomain, task_id: int, actions: Sequence[Action], replies: Sequence[str]
) -> tuple[str, Any]:
    data = domain.new_data()
    for action in actions:
        domain.execute(data, action)
    data_hash = domain.data_hash(data)
    return data_hash, domain.score(task_id, data, replies)


def _scenarios(
    domain: TauBenchDomain, task_id: int, with_failures: bool
) -> dict[str, tuple[list[Action], list[str]]]:
    ground_truth = [a for a in domain.ground_truth_actions(task_id) if a.name not in domain.terminate_tools]
    outputs = list(domain.tasks[task_id].outputs)
    replies = [f"Here you go: {', '.join(outputs)}."] if outputs else []
    cases = {"ground truth": (ground_truth, replies)}
    if with_failures:
        other = (task_id + 1) % len(domain.tasks)
        other_actions = [
            a for a in domain.ground_truth_actions(other) if a.name not in domain.terminate_tools
        ]
        cases["last action missing"] = (ground_truth[:-1], replies)
        cases["another task's actions"] = (other_actions, replies)
        cases["ground truth, no reply"] = (ground_truth, [])
    return cases


@pytest.mark.parametrize("env_name", ["retail", "airline"])
def test_reward_equals_taubench_calculate_reward(env_name: str) -> None:
    domain = load_taubench_domain(env_name)
    assert len(domain.tasks) == TASK_COUNTS[env_name]
    outcomes = {0.0: 0, 1.0: 0}
    step = 1 if EVERY_TASK else 3
    for task_id in range(0, len(domain.tasks), step):
        failures = task_id % (5 * step) == 0
        for name, (actions, replies) in _scenarios(domain, task_id, with_failures=failures).items():
            tau_hash, tau_reward = _taubench(env_name, task_id, actions, replies)
            our_hash, our_reward = _harness(domain, task_id, actions, replies)
            where = f"{env_name} task {task_id}, {name}"
            assert our_hash == tau_hash, where
            assert taubench_fields(our_reward.as_taubench()) == tau_reward.model_dump(), where
            outcomes[our_reward.reward] += 1
    # Both outcomes occur, so the comparison covers passing and failing databases.
    assert outcomes[1.0] >= len(domain.tasks) // step and outcomes[0.0] > 0
    from importlib import import_module

    loader = import_module(f"tau_bench.envs.{env_name}.data").load_data
    assert to_plain(domain.new_data()) == loader(), "the shared database was modified"
