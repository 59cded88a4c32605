"""The whole loop on the project's toy domain: oracle, outputs, τ-bench result format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.episode.seeds import conversation_seed
from harness.job.metrics import pass_hat_k
from harness.store import CONVERSATIONS, RESULTS, SUMMARY
from tests.helpers import CONF, read_jsonl, run_toy_job

VARIANTS = sorted(p.stem for p in (CONF / "variant").glob("*.yaml"))


@pytest.mark.parametrize("variant", VARIANTS)
def test_oracle_scores_every_toy_task_in_every_variant(tmp_path: Path, variant: str) -> None:
    summary = run_toy_job(tmp_path, [f"variant={variant}", "env.trials=2"])
    assert summary["average_reward"] == 1.0
    assert summary["scored"] == 10
    assert summary["pass_hat_k"] == {"1": 1.0, "2": 1.0}
    assert summary["plumbing_check"] is True
    assert summary["terminations"] == {"transfer_to_human": 2, "user_stop": 8}


def test_records_hold_the_full_transcript(tmp_path: Path) -> None:
    run_toy_job(tmp_path, ["variant=anger"])
    records = {r["task_id"]: r for r in read_jsonl(tmp_path / CONVERSATIONS)}
    assert sorted(records) == [0, 1, 2, 3, 4]
    cancel = records[0]
    roles = [m["role"] for m in cancel["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "tool", "assistant", "user"]
    assert cancel["messages"][1]["content"].startswith("I am angry about how this has gone")
    assert cancel["messages"][2]["tool_calls"][0]["function"]["name"] == "find_user_id_by_email"
    assert cancel["messages"][3]["content"] == "ada_1"
    assert json.loads(cancel["messages"][5]["content"])["status"] == "cancelled"
    assert cancel["messages"][-1]["content"] == "###STOP###"
    assert cancel["counts"]["tool_calls"] == 2 and cancel["counts"]["user_turns"] == 2
    assert cancel["reward_info"]["info"]["r_actions"] is True
    assert cancel["variant"] == "anger" and cancel["intensity"] == "medium"
    assert cancel["user_simulator"]["model"] == "oracle" and cancel["user_simulator"]["strategy"] == "llm"
    assert not any(r["noop_task"] for r in records.values())
    # the instruction's own demeanour words are recorded, so results can be split on them
    assert cancel["instruction_affect"] == ["calm"]
    assert records[2]["instruction_affect"] == ["impatient", "upset"]
    assert records[1]["instruction_affect"] == []
    # a terminating tool ends the episode there and it is scored
    assert records[3]["termination"] == "transfer_to_human"
    assert records[3]["messages"][-1]["role"] == "tool"
    assert records[1]["reward_info"]["info"] == {"r_outputs": 1.0, "outputs": {"45": True}, "r_actions": True}


def test_results_json_is_taubench_format_and_summary_matches(tmp_path: Path) -> None:
    run_toy_job(tmp_path, ["env.trials=3", "env.tasks=[1,3]"])
    results = json.loads((tmp_path / RESULTS).read_text())
    assert {(r["task_id"], r["trial"]) for r in results} == {(t, k) for t in (1, 3) for k in range(3)}
    for result in results:
        assert set(result) == {"task_id", "reward", "info", "traj", "trial"}
        assert result["traj"][0]["role"] == "system"
        assert {"task", "source", "user_cost", "reward_info"} <= set(result["info"])
    summary = json.loads((tmp_path / SUMMARY).read_text())
    assert summary["conversations"] == 6 and summary["missing"] == 0


def test_seeds_pair_variants_and_differ_across_trials(tmp_path: Path) -> None:
    run_toy_job(tmp_path / "a", ["variant=control", "env.trials=2", "seed=7"])
    run_toy_job(tmp_path / "b", ["variant=anxiety", "env.trials=2", "seed=7"])
    seeds_a = {(r["task_id"], r["trial"]): r["seed"] for r in read_jsonl(tmp_path / "a" / CONVERSATIONS)}
    seeds_b = {(r["task_id"], r["trial"]): r["seed"] for r in read_jsonl(tmp_path / "b" / CONVERSATIONS)}
    assert seeds_a == seeds_b
    assert len(set(seeds_a.values())) == len(seeds_a)
    assert seeds_a[(0, 0)] == conversation_seed(7, "toy", 0, 0) != conversation_seed(8, "toy", 0, 0)


def test_pass_hat_k_matches_hand_computed_values() -> None:
    # task a: 2 of 3 trials succeed, task b: 3 of 3, task c: 0 of 3
    values = pass_hat_k({"a": 2, "b": 3, "c": 0}, trials=3)
    assert values[1] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert values[2] == pytest.approx((1 / 3 + 1 + 0) / 3)
    assert values[3] == pytest.approx((0 + 1 + 0) / 3)


def test_the_database_is_scored_at_the_step_cap_beside_the_official_zero(tmp_path: Path) -> None:
    run_toy_job(tmp_path, ["env.tasks=[0]", "env.max_steps=2"])
    (record,) = read_jsonl(tmp_path / CONVERSATIONS)
    # both tool calls of the cancellation ran, then the cap: the rule scores 0, the database is right
    assert record["termination"] == "step_cap" and record["reward"] == 0.0
    assert record["reward_at_cap"] == 1.0


def test_reward_at_cap_equals_the_reward_for_every_other_ending(tmp_path: Path) -> None:
    run_toy_job(tmp_path, ["env.trials=1"])
    records = read_jsonl(tmp_path / CONVERSATIONS)
    assert all(r["reward_at_cap"] == r["reward"] == 1.0 for r in records)
