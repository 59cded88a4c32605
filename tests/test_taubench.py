"""Against real τ-bench: our reward equals its `calculate_reward`, and the oracle scores 1.0."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from harness.store import CONVERSATIONS, RESULTS
from tests.helpers import compose_config, read_jsonl, taubench_fields

pytestmark = pytest.mark.taubench


def _their_reward(env_name: str, task_id: int, data: dict, replies: list[str]) -> dict:
    from tau_bench.envs import get_env
    from tau_bench.types import Action

    env = get_env(env_name, user_strategy="human", user_model="none", task_split="test", task_index=task_id)
    env.data = data
    env.actions = [Action(name="respond", kwargs={"content": reply}) for reply in replies]
    return env.calculate_reward().model_dump()


@pytest.mark.parametrize("env_name", ["retail", "airline"])
def test_reward_equals_taubench_on_right_and_wrong_databases(env_name: str) -> None:
    from harness.domains.taubench.loader import load_taubench_domain

    domain = load_taubench_domain(env_name)
    rng = random.Random(0)
    with_outputs = [i for i, t in enumerate(domain.tasks) if t.outputs][:2]
    for task_id in [*rng.sample(range(len(domain.tasks)), 3), *with_outputs]:
        right = domain.fresh_data()
        for action in domain.ground_truth_actions(task_id):
            if action.name not in domain.terminate_tools:
                domain.execute(right, action)
        outputs = list(domain.tasks[task_id].outputs)
        wrong = domain.fresh_data()
        first_user = next(iter(wrong["users"]))
        wrong["users"][first_user]["name"] = {"first_name": "Changed", "last_name": "By test"}
        for data, replies in [
            (right, [f"The answer is {', '.join(outputs)}"]),
            (right, ["I could not find it."]),
            (wrong, [f"The answer is {', '.join(outputs)}"]),
        ]:
            theirs = _their_reward(env_name, task_id, json.loads(json.dumps(data)), replies)
            ours = taubench_fields(domain.score(task_id, data, replies).as_taubench())
            assert ours == json.loads(json.dumps(theirs)), (env_name, task_id)


@pytest.mark.slow
@pytest.mark.parametrize("env_name", ["retail", "airline"])
def test_oracle_scores_one_on_every_test_task(tmp_path: Path, env_name: str) -> None:
    import asyncio

    from harness.job.app import build_job
    from harness.job.runner import run_job

    job = build_job(compose_config([f"env={env_name}", "variant=frustration", "progress=false"]), tmp_path)
    summary = asyncio.run(run_job(job))
    expected = {"retail": 115, "airline": 50}[env_name]
    assert summary["scored"] == expected and summary["average_reward"] == 1.0
    records = read_jsonl(tmp_path / CONVERSATIONS)
    assert {r["termination"] for r in records} <= {"user_stop", "transfer_to_human"}
    from tau_bench.types import EnvRunResult

    results = [EnvRunResult(**r) for r in json.loads((tmp_path / RESULTS).read_text())]
    assert len(results) == expected and all(r.reward == 1.0 for r in results)
