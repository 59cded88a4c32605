"""Deterministic fidelity read from constructed records: each category, and its place in the report's tables."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from harness.report.contrasts import Comparisons, Options
from harness.report.design import Contrast
from harness.report.fidelity import fidelity_bounds, fidelity_outcome_table
from harness.report.fidelity_facts import fidelity, instruction_facts

INSTRUCTION = "You are Yusuf Rossi in 19122. You received your order #W2378156 and want to return it."
ASK = {"role": "assistant", "content": "Could you give me your name and zip code?"}


def record(
    *messages: dict[str, Any], termination: str = "user_stop", r_actions: bool = True
) -> dict[str, Any]:
    return {
        "instruction": INSTRUCTION,
        "messages": [{"role": "system", "content": "policy"}, *messages],
        "termination": termination,
        "scored": True,
        "reward": 1.0 if r_actions else 0.0,
        "reward_info": {"reward": 1.0 if r_actions else 0.0, "info": {"r_actions": r_actions}},
        "identity_tools": ["find_user_id_by_email", "find_user_id_by_name_zip"],
    }


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def tool(name: str, content: str) -> dict[str, Any]:
    return {"role": "tool", "name": name, "content": content, "tool_call_id": "c0"}


def test_instruction_facts_by_kind() -> None:
    assert instruction_facts(INSTRUCTION) == {
        "zip": {"19122"},
        "order_id": {"#W2378156"},
        "name": {"Yusuf Rossi"},
    }


def test_given_correctly_when_asked() -> None:
    f = fidelity(
        record(
            user("Hi"),
            ASK,
            user("I'm Yusuf Rossi, zip 19122."),
            tool("find_user_id_by_name_zip", "yusuf_rossi_9620"),
        )
    )
    assert (f.facts_asked, f.facts_correct, f.facts_wrong, f.facts_withheld) == (2, 2, 0, 0)
    assert (f.fact_wrong, f.fact_withheld, f.invented, f.authenticated, f.stop_goal_unmet) == (0, 0, 0, 1, 0)
    assert f.failure == 0


def test_given_wrong_is_also_invented() -> None:
    f = fidelity(record(user("Hi"), ASK, user("I'm Yusuf Rossi, zip 10001.")))
    assert (f.facts_correct, f.facts_wrong) == (1, 1)
    assert f.fact_wrong == 1 and f.invented == 1 and f.invented_values == "10001"
    assert f.failure == 1


def test_withheld_when_asked_and_never_given() -> None:
    f = fidelity(record(user("Hi"), ASK, user("Why do you need that? Just fix it.")))
    assert (f.facts_asked, f.facts_withheld, f.fact_withheld) == (2, 2, 1.0)
    assert f.fact_wrong == 0 and f.invented == 0


def test_not_asked_facts_do_not_count() -> None:
    f = fidelity(record(user("Hi"), {"role": "assistant", "content": "How can I help?"}, user("Return it.")))
    assert f.facts_asked == 0 and f.fact_withheld == 0


def test_a_value_the_agent_said_first_is_not_invented() -> None:
    f = fidelity(
        record(
            user("Hi"), tool("get_order_details", '{"order_id": "#W0000001"}'), user("Yes, #W0000001 is it.")
        )
    )
    assert f.invented == 0
    g = fidelity(record(user("Hi, my order is #W0000001 and my email is a@b.com.")))
    assert g.invented == 1 and g.invented_values == "a@b.com,#W0000001"


def test_authentication_needs_a_successful_identity_tool() -> None:
    failed = fidelity(record(user("Hi"), tool("find_user_id_by_name_zip", "Error: user not found")))
    assert failed.authenticated == 0
    other_tool = fidelity(record(user("Hi"), tool("get_order_details", "{}")))
    assert other_tool.authenticated == 0
    unknown = fidelity({**record(user("Hi")), "identity_tools": None})
    assert math.isnan(unknown.authenticated)


def test_stop_with_the_goal_unmet() -> None:
    assert fidelity(record(user("###STOP###"), r_actions=False)).stop_goal_unmet == 1
    assert fidelity(record(user("###STOP###"), r_actions=True)).stop_goal_unmet == 0
    assert fidelity(record(user("x"), termination="transfer_to_human", r_actions=False)).stop_goal_unmet == 0
    tau2 = {**record(user("###STOP###")), "reward_info": {"db_check": {"db_match": False}}, "reward": 0.0}
    assert fidelity(tau2).stop_goal_unmet == 1
    unknown = {**record(user("###STOP###")), "reward_info": None, "reward": 0.0}
    assert math.isnan(fidelity(unknown).stop_goal_unmet)


def _conversations(tasks: int = 20, trials: int = 2) -> pd.DataFrame:
    """Neutral always faithful and succeeding; anger gives a wrong fact in half its conversations, and fails those."""
    rows = []
    for condition in ("neutral", "anger"):
        for task in range(tasks):
            for trial in range(trials):
                wrong = condition == "anger" and (task + trial) % 2 == 0
                f = fidelity(
                    record(
                        user("Hi"), ASK, user("I'm Yusuf Rossi, zip " + ("10001" if wrong else "19122") + ".")
                    )
                )
                rows.append(
                    {
                        "model": "m", "env": "retail", "split": "test", "condition": condition, "run_seed": 0,
                        "task_id": task, "trial": trial, "scored": True, "success": 0.0 if wrong else 1.0,
                        "termination": "user_stop", "noop_task": False, "instruction_affect": "",
                        **f.as_row(),
                    }
                )  # fmt: skip
    return pd.DataFrame(rows)


def test_fidelity_outcomes_and_worst_case_bounds() -> None:
    conversations = _conversations()
    contrast = Contrast("primary", "m", "retail", "test", "anger", "neutral")
    compared = Comparisons(conversations, [contrast], np.random.default_rng(0), Options(500, 2000))
    deltas = fidelity_outcome_table(compared).set_index("outcome")
    assert deltas.loc["fact_wrong", "delta"] == 0.5
    assert deltas.loc["fact_wrong", "ci_low"] > 0 and deltas.loc["fact_wrong", "p_holm"] < 0.05
    assert deltas.loc["invented", "delta"] == 0.5
    assert deltas.loc["fact_withheld", "delta"] == 0
    bounds = fidelity_bounds(compared).iloc[0]
    assert bounds["delta_scored"] == -0.5
    assert bounds["variant_unfaithful"] == 0.5
    # the unfaithful half filled as failures (worst low) and as successes (worst high)
    assert bounds["delta_worst_low"] == -0.5 and bounds["delta_worst_high"] == 0.0
    assert bounds["reading"].startswith("not robust to fidelity failures")


def test_independence_marks_own_user_engines_and_api_timing() -> None:
    from harness.report.independence import independence_table

    rows = []
    for condition, job, start in (("neutral", "n", 0.0), ("anger", "a", 1000.0)):
        for task in range(3):
            rows.append(
                {"model": "m", "env": "retail", "split": "test", "condition": condition, "job": job,
                 "task_id": task, "trial": 0, "started_at": start + task, "duration_s": 5.0}
            )  # fmt: skip
    conversations = pd.DataFrame(rows)
    contrast = Contrast("primary", "m", "retail", "test", "anger", "neutral")
    own = {"model": "m", "backend": "openai", "user_simulator": {"model": "m", "backend": "openai"}}
    table = independence_table(conversations, [contrast], {"n": own, "a": own}).iloc[0]
    assert table["user_is_agent_model"] and not table["arms_overlap_in_time"]
    assert "agent's own model" in table["warning"] and "overlapping times" in table["warning"]
    other = {"model": "m", "backend": "vllm", "user_simulator": {"model": "gpt-4o", "backend": "openai"}}
    engines = {
        "n": {**other, "engine": {"vllm_version": "0.32.0", "gpu": "1 x H100"}},
        "a": {**other, "engine": {"vllm_version": "0.32.0", "gpu": "1 x A100"}},
    }
    table = independence_table(conversations, [contrast], engines).iloc[0]
    assert not table["user_is_agent_model"]
    assert table["warning"] == "arms served on different GPU types (1 x A100, 1 x H100)"
    oracle = {"model": "oracle", "backend": "oracle", "plumbing_check": True,
              "user_simulator": {"model": "oracle", "backend": "oracle"}}  # fmt: skip
    table = independence_table(conversations, [contrast], {"n": oracle, "a": oracle}).iloc[0]
    assert not table["user_is_agent_model"] and table["warning"] == ""  # a scripted user: no model's ability
