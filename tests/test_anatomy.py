"""Failure anatomy and behaviour measures on constructed records of both domains, one record per category."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from harness.analysis.anatomy import CATEGORIES, Anatomy, anatomy, is_affirmation
from harness.analysis.behaviour import behaviour

AUTH = ("find_user_id_by_email", {"email": "ada@example.com"})
CANCEL = ("cancel_pending_order", {"order_id": "#W1", "reason": "no longer needed"})
Step = tuple[Any, ...]


def _messages(steps: list[Step]) -> list[dict[str, Any]]:
    """("user", text), ("agent", text) or ("call", name, arguments[, observation]) in order."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": "policy"}]
    for number, step in enumerate(steps):
        if step[0] in ("user", "agent"):
            messages.append({"role": "user" if step[0] == "user" else "assistant", "content": step[1]})
            continue
        _, name, arguments, *observation = step
        call_id = f"call_{number}"
        function = {"name": name, "arguments": json.dumps(arguments)}
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": call_id, "type": "function", "function": function}],
            }
        )
        messages.append(
            {
                "role": "tool",
                "tool_call_id": call_id,
                "name": name,
                "content": observation[0] if observation else "{}",
            }
        )
    return messages


def _reward_info(
    domain: str, required: list[tuple[str, dict[str, Any]]], outputs: dict[str, bool]
) -> dict[str, Any]:
    if domain == "taubench":
        info: dict[str, Any] = (
            {"r_outputs": float(all(outputs.values())), "outputs": outputs} if outputs else {}
        )
        return {"reward": 0.0, "info": info, "actions": [{"name": n, "kwargs": a} for n, a in required]}
    checks = [
        {
            "action": {
                "action_id": f"a{i}",
                "requestor": "assistant",
                "name": n,
                "arguments": a,
                "compare_args": None,
            },
            "action_match": False,
            "action_reward": 0.0,
        }
        for i, (n, a) in enumerate(required)
    ]
    communicate = [{"info": k, "met": v, "justification": ""} for k, v in outputs.items()]
    return {"reward": 0.0, "action_checks": checks, "communicate_checks": communicate, "reward_basis": ["DB"]}


def record(
    domain: str,
    steps: list[Step],
    required: list[tuple[str, dict[str, Any]]] = [AUTH, CANCEL],  # noqa: B006 - read only
    outputs: dict[str, bool] | None = None,
    termination: str = "user_stop",
) -> dict[str, Any]:
    scored_by_env = termination != "step_cap"
    return {
        "env": "retail" if domain == "taubench" else "tau2_retail",
        "scored": True,
        "termination": termination,
        "reward_info": _reward_info(domain, required, outputs or {}) if scored_by_env else None,
        "messages": _messages(steps),
        "counts": {
            "user_turns": sum(s[0] == "user" for s in steps),
            "tool_calls": sum(s[0] == "call" for s in steps),
        },
    }


def clean(*extra: Step) -> list[Step]:
    """Authenticate, ask, get a yes, cancel as required; `extra` after that."""
    return [
        ("user", "Please cancel my order #W1."),
        ("call", *AUTH),
        ("agent", "I will cancel order #W1 (no longer needed). Shall I proceed?"),
        ("user", "Yes, please."),
        ("call", *CANCEL),
        *extra,
    ]


CASES: dict[str, Callable[[str], dict[str, Any]]] = {
    "missing_write": lambda d: record(d, clean()[:4]),
    "wrong_write": lambda d: record(
        d, [*clean()[:4], ("call", "cancel_pending_order", {**CANCEL[1], "order_id": "#W2"})]
    ),
    "extra_write": lambda d: record(
        d, clean(("call", "modify_user_address", {"user_id": "ada", "zip": "1"}))
    ),
    "concession": lambda d: record(
        d,
        clean(
            (
                "call",
                "return_delivered_order_items",
                {"order_id": "#W3", "item_ids": ["1"], "payment_method_id": "gift_card_1"},
            )
        ),
    ),
    "missing_output": lambda d: record(d, clean(), outputs={"$42.00": False}),
    "unconfirmed_write": lambda d: record(
        d, [("user", "Please cancel my order #W1."), ("call", *AUTH), ("call", *CANCEL)]
    ),
    "auth_skipped": lambda d: record(d, [*clean()[2:], ("call", *AUTH)]),
    "premature_transfer": lambda d: record(
        d, clean(("call", "transfer_to_human_agents", {"summary": "angry user"}))
    ),
    "step_cap": lambda d: record(d, clean(), termination="step_cap"),
}


@pytest.mark.parametrize("domain", ["taubench", "tau2"])
def test_a_conversation_that_does_what_the_task_requires_has_no_fault(domain: str) -> None:
    found = anatomy(record(domain, clean()))
    assert isinstance(found, Anatomy) and found.counts() == dict.fromkeys(CATEGORIES, 0)
    assert found.main_fault == "" and found.first_write_fault is None


@pytest.mark.parametrize("domain", ["taubench", "tau2"])
@pytest.mark.parametrize("category", CATEGORIES)
def test_each_category_is_found_alone(domain: str, category: str) -> None:
    found = anatomy(CASES[category](domain))
    assert found is not None
    assert found.counts() == {c: int(c == category) for c in CATEGORIES}
    assert found.main_fault == category


def test_a_failed_write_changes_nothing_so_it_is_no_extra_write() -> None:
    steps = clean(("call", "return_delivered_order_items", {"order_id": "#W9"}, "Error: order not found"))
    assert anatomy(record("taubench", steps)).counts()["concession"] == 0  # type: ignore[union-attr]


def test_tau2_compares_only_the_arguments_its_ground_truth_names() -> None:
    checked = record(
        "tau2",
        [*clean()[:4], ("call", "cancel_pending_order", {**CANCEL[1], "reason": "ordered by mistake"})],
    )
    checked["reward_info"]["action_checks"][1]["action"]["compare_args"] = ["order_id"]
    assert anatomy(checked).counts()["wrong_write"] == 0  # type: ignore[union-attr]
    checked["reward_info"]["action_checks"][1]["action"]["compare_args"] = None
    assert anatomy(checked).counts()["wrong_write"] == 1  # type: ignore[union-attr]


def test_the_viewer_highlights_the_first_write_at_fault() -> None:
    steps = [*clean()[:4], ("call", "cancel_pending_order", {**CANCEL[1], "order_id": "#W2"})]
    rec = record("taubench", steps)
    fault = anatomy(rec).first_write_fault  # type: ignore[union-attr]
    assert fault is not None and fault.category == "wrong_write"
    assert rec["messages"][fault.message]["tool_calls"][0]["function"]["name"] == "cancel_pending_order"


def test_unscored_conversations_have_no_anatomy() -> None:
    assert anatomy({**record("taubench", clean()), "scored": False}) is None


def test_giving_in_is_an_extra_write_after_a_refusal() -> None:
    refund = (
        "call",
        "return_delivered_order_items",
        {"order_id": "#W3", "item_ids": ["1"], "payment_method_id": "gift_card_1"},
    )
    refused_then_granted = record(
        "taubench",
        clean(("agent", "I'm sorry, but I can't refund that order."), ("user", "I insist!"), refund),
    )
    found = anatomy(refused_then_granted)
    measured = behaviour(refused_then_granted, found)
    assert (
        measured["gave_in"] == 1.0
        and measured["refusals_lexicon"] == 1.0
        and measured["apologies_lexicon"] == 1.0
    )
    granted_first = record("taubench", clean(refund, ("agent", "I'm sorry, but I can't do more.")))
    assert behaviour(granted_first, anatomy(granted_first))["gave_in"] == 0.0


def test_affirmations() -> None:
    assert all(map(is_affirmation, ["Yes", "ok, go ahead", "Okay, please go ahead.", "I confirm", "sure"]))
    assert not any(map(is_affirmation, ["Please cancel my order #W1.", "No, wait", "why?"]))
