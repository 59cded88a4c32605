"""Reactive users: each rule's event detection, the ladder's bounds, and whole conversations on the
scripted backend that escalate and calm a reactive anger user (toy domain: no τ-bench needed)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from harness.episode.dynamics import Dynamics, Mood, Rule, asked_slots, detect_events, split_appraisal
from harness.episode.types import Message
from harness.episode.user import variant_block
from harness.episode.variants import Variant
from harness.job.app import build_job
from harness.job.runner import run_job
from harness.store import CONVERSATIONS
from tests.helpers import TOY, compose_config, read_jsonl, run_module

SYSTEM: Message = {"role": "system", "content": "policy"}


def _turn(*agent: Message, before: list[Message] | None = None) -> list[Message]:
    """A conversation whose last agent turn is `agent`, after the user's message (and `before`)."""
    return [SYSTEM, *(before or []), {"role": "user", "content": "Hi, I need help with my order."}, *agent]


def _call(name: str, call_id: str = "c1") -> Message:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}],
    }


def _result(text: str, call_id: str = "c1") -> Message:
    return {"role": "tool", "tool_call_id": call_id, "name": "x", "content": text}


def _says(text: str) -> Message:
    return {"role": "assistant", "content": text}


ASKED_BEFORE = [_says("Could you give me your order id?"), {"role": "user", "content": "It is #A1."}]


@pytest.mark.parametrize(
    ("conversation", "events"),
    [
        (_turn(_says("What is your order number, please?"), before=ASKED_BEFORE), ["repeated_question"]),
        (_turn(_says("What is your email address?"), before=ASKED_BEFORE), []),  # another slot
        (_turn(_says("Your order id is noted."), before=ASKED_BEFORE), []),  # not a question
        (_turn(_call("get_order_details"), _result("Error: order not found"), _says("Hm.")), ["tool_error"]),
        (_turn(_says("I'm sorry, but I cannot cancel a delivered order.")), ["refusal"]),
        (_turn(_says("That is against our policy.")), ["refusal"]),
        (_turn(_says("Let me transfer you to a human agent.")), ["transfer_attempt"]),
        (_turn(_call("transfer_to_human_agents"), _result("Transfer successful")), ["transfer_attempt"]),
        (_turn(_says("word " * 121)), ["stalling"]),
        (
            _turn(_call("get_order_details"), _result("{}"), _says("word " * 121)),
            [],
        ),  # a tool call is progress
        (
            _turn(_call("get_order_details"), _result("{}"), _says("Sorry for the wait, here it is.")),
            ["apology_with_progress"],
        ),
        (_turn(_says("Sorry for the wait.")), []),  # an apology alone calms no one
        (
            _turn(_call("cancel_pending_order"), _result('{"status": "cancelled"}'), _says("Done.")),
            ["requested_write_done"],
        ),
        (_turn(_call("cancel_pending_order"), _result("Error: non-pending"), _says("Hm.")), ["tool_error"]),
    ],
)
def test_each_rule_detects_its_event(conversation: list[Message], events: list[str]) -> None:
    assert detect_events(conversation) == events


def test_the_user_s_own_tool_calls_are_not_the_agent_s() -> None:
    own: list[Message] = [
        {**_call("toggle_airplane_mode", "u1"), "role": "user", "requestor": "user"},
        {**_result("Error: no such tool", "u1"), "requestor": "user"},
    ]
    assert detect_events([*_turn(_says("Fine.")), *own]) == []


def test_slots_are_read_per_sentence() -> None:
    assert asked_slots("Thanks. Could you confirm your zip code and email?") == {"zip", "email"}
    assert asked_slots("I found your order. Your email is on file.") == set()


RULES = Dynamics(
    mode="reactive",
    rules=[
        Rule(event="repeated_question", move=1),
        Rule(event="tool_error", move=1),
        Rule(event="requested_write_done", move=-1),
        Rule(event="apology_with_progress", move=-1),
    ],
)
REPEAT = _turn(_says("What is your order id?"), before=ASKED_BEFORE)
ERROR_AND_REPEAT = _turn(
    _call("x"), _result("Error: boom"), _says("What is your order id?"), before=ASKED_BEFORE
)
WRITE_AND_APOLOGY = _turn(_call("cancel_pending_order"), _result("{}"), _says("Sorry! It is cancelled."))


def test_the_ladder_holds_at_its_ends_and_one_turn_moves_one_rung() -> None:
    mood = Mood(RULES, "medium")
    assert mood.after_agent_turn(ERROR_AND_REPEAT) == ["repeated_question", "tool_error"]
    assert mood.level == "high"  # +2 capped at max_move_per_turn = 1
    mood.after_agent_turn(REPEAT)
    assert mood.level == "high" and mood.path == 1  # the top holds
    for _ in range(3):
        mood.after_agent_turn(WRITE_AND_APOLOGY)
    assert mood.level == "low" and mood.path == -1  # so does the bottom
    wider = Mood(RULES.model_copy(update={"max_move_per_turn": 2}), "high")
    wider.after_agent_turn(WRITE_AND_APOLOGY)
    assert wider.level == "low"


def test_llm_appraisal_reads_the_stated_mood_and_hides_it() -> None:
    assert split_appraisal("Mood: HIGH\nWhere is my refund?") == ("high", "Where is my refund?")
    assert split_appraisal("Where is my refund?") == (None, "Where is my refund?")
    mood = Mood(RULES.model_copy(update={"appraisal": "llm"}), "medium")
    assert (
        mood.after_agent_turn(REPEAT) == ["repeated_question"] and mood.level == "medium"
    )  # rules only record
    mood.appraised("low")
    assert mood.level == "low"


def _variant(dynamics: str, name: str = "anger") -> Variant:
    cfg = compose_config([f"variant={name}", f"variant/dynamics={dynamics}"])
    return Variant.from_config(dict(cfg.variant))


def test_the_prompt_changes_only_in_the_persona_of_the_current_intensity() -> None:
    reactive = _variant("reactive")
    framing = str(compose_config([]).user.framing.v2)
    static_high = variant_block(reactive.model_copy(update={"intensity": "high"}), framing)
    assert variant_block(reactive, framing, "high") == static_high
    assert reactive.reactive and reactive.label == "anger-medium-reactive"
    neutral = _variant("reactive", "neutral")
    assert not neutral.reactive and neutral.label == "neutral"  # no dose: nothing to react with


def _run(out: Path, overrides: list[str]) -> dict[str, Any]:
    return asyncio.run(run_job(build_job(compose_config([*TOY, *overrides]), out)))


def _user_intensities(record: dict[str, Any]) -> list[str]:
    return [c["intensity"] for c in record["calls"] if c["role"] == "user"]


KEEPS_ASKING = "++backend.agent=[{text: 'Could you give me your order id?'}]"
USER_SAYS = "++backend.user=[{text: 'Order #A1, I told you.'}]"


def test_an_agent_that_keeps_asking_for_the_order_id_makes_an_angry_user_furious(tmp_path: Path) -> None:
    overrides = ["backend=scripted", KEEPS_ASKING, USER_SAYS, "env.tasks=[0]", "env.max_steps=4"]
    _run(tmp_path / "reactive", [*overrides, "variant=anger", "variant/dynamics=reactive"])
    [record] = read_jsonl(tmp_path / "reactive" / CONVERSATIONS)
    assert record["dynamics"] == "reactive"
    # the opening and the first question at medium; the question asked again sends it to high
    assert _user_intensities(record) == ["medium", "medium", "high", "high", "high"]
    events = [c["events"] for c in record["calls"] if c["role"] == "user"]
    assert events == [[], [], *[["repeated_question"]] * 3]
    _run(tmp_path / "static", [*overrides, "variant=anger"])
    [static] = read_jsonl(tmp_path / "static" / CONVERSATIONS)
    assert "dynamics" not in static and all("intensity" not in c for c in static["calls"])


APOLOGISES_AND_CANCELS = (
    "++backend.agent=[{tool: find_user_id_by_email, arguments: {email: ada@example.com}},"
    " {tool: cancel_pending_order, arguments: {order_id: '#A1'}},"
    " {text: 'I am so sorry for the trouble: your order is cancelled.'}]"
)


def test_an_agent_that_apologises_and_cancels_the_order_calms_the_user(tmp_path: Path) -> None:
    user = "++backend.user=[{text: 'Cancel my order #A1, ada@example.com.'}, {text: '###STOP###'}]"
    overrides = ["backend=scripted", APOLOGISES_AND_CANCELS, user, "env.tasks=[0]", "env.max_steps=4"]
    _run(tmp_path, [*overrides, "variant=anger", "variant/dynamics=reactive"])
    [record] = read_jsonl(tmp_path / CONVERSATIONS)
    assert _user_intensities(record) == ["medium", "low"]
    moved = [c["events"] for c in record["calls"] if c["role"] == "user"][1]
    assert moved == ["apology_with_progress", "requested_write_done"]
    assert record["reward"] == 1.0  # the task was to cancel #A1


def test_reactive_jobs_have_their_own_directory_and_the_report_compares_them_with_static(
    tmp_path: Path,
) -> None:
    sweep = tmp_path / "sweep"
    common = [
        "-m", *TOY, "backend=scripted", KEEPS_ASKING, USER_SAYS, "env.max_steps=4", "env.trials=2",
        f"hydra.sweep.dir={sweep}", "variant=anger", "variant/dynamics=static,reactive",
    ]  # fmt: skip
    run = run_module("harness", *common, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    labels = sorted(p.parent.name for p in sweep.glob("*/*/*/seed0"))
    assert labels == ["anger-medium", "anger-medium-reactive"]
    report = run_module("harness.report", str(sweep), "--out", str(tmp_path / "report"), timeout=300)
    assert report.returncode == 0, report.stderr[-2000:]
    text = (tmp_path / "report" / "report.md").read_text()
    assert "Users who react to the agent" in text and "De-escalation rate per agent model" in text
    import pandas as pd

    paths = pd.read_csv(tmp_path / "report" / "escalation_paths.csv")
    [row] = paths.to_dict("records")
    assert row["condition"] == "anger@reactive" and row["escalated"] == 1.0 and row["mean_path"] == 1.0
    rates = pd.read_csv(tmp_path / "report" / "deescalation_rates.csv")
    assert rates["deescalation_rate"].tolist() == [0.0] and rates["escalation_rate"].tolist() == [1.0]
    versus = pd.read_csv(tmp_path / "report" / "reactive_vs_static.csv")
    assert versus["contrast"].tolist() == ["anger@medium,reactive − anger@medium,static"]
    assert versus["pairs"].tolist() == [10]


@pytest.mark.browser
def test_the_viewer_draws_the_intensity_along_the_conversation(tmp_path: Path) -> None:
    from harness.view import build_viewer, conversation_link, load
    from tests.viewer_support import chromium_or_skip, launch_chromium

    chromium_or_skip()
    sweep = tmp_path / "sweep"
    job = "oracle/toy-test/anger-medium-reactive/seed0"
    overrides = ["backend=scripted", KEEPS_ASKING, USER_SAYS, "env.tasks=[0]", "env.max_steps=4"]
    _run(sweep / job, [*overrides, "variant=anger", "variant/dynamics=reactive"])
    build_viewer(load(sweep))
    for browser in launch_chromium():
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(
            (sweep / "report" / "viewer" / "index.html").as_uri()
            + conversation_link(job, 0, 0).split("index.html")[1]
        )
        page.wait_for_selector("#chat")
        chart = page.locator("section.dynamics svg.intensity")
        assert chart.get_attribute("data-turns") == "5"
        heights = [float(c.get_attribute("cy")) for c in chart.locator("circle.rule").all()]
        assert (
            len(heights) == 5 and heights[0] == heights[1] > heights[2] == heights[3] == heights[4]
        )  # up = higher
        chips = page.locator(".msg.user .chip.emotion").all_inner_texts()
        assert chips == ["anger · medium", "anger · medium", "anger · high", "anger · high", "anger · high"]
        assert page.locator(".msg.user").nth(2).locator(".chip.events").inner_text() == "repeated_question"
        page.close()


@pytest.mark.parametrize("dynamics", ["reactive", "reactive_llm"])
def test_the_oracle_still_solves_every_task_with_a_reactive_user(tmp_path: Path, dynamics: str) -> None:
    summary = _run(
        tmp_path, ["variant=frustration", f"variant/dynamics={dynamics}", "variant.intensity=high"]
    )
    assert summary["average_reward"] == 1.0
    records = read_jsonl(tmp_path / CONVERSATIONS)
    assert all(r["dynamics"] == dynamics for r in records)
    assert all(_user_intensities(r)[0] == "high" for r in records)  # it starts at the variant's intensity
    if dynamics == "reactive_llm":  # the oracle's user states no mood: the intensity never moves
        assert all(set(_user_intensities(r)) == {"high"} for r in records)
        assert all(c["stated_mood"] is None for r in records for c in r["calls"] if c["role"] == "user")


def test_a_write_is_what_the_domain_says_it_is() -> None:
    from harness.domains.roles import RETAIL, TELECOM

    sent = _turn(_call("send_certificate"), _result('{"ok": true}'), _says("Done."))
    assert detect_events(sent) == ["requested_write_done"]  # no table: told apart by name
    assert detect_events(sent, writes=RETAIL.writes) == []  # not one of retail's writes
    roaming = _turn(_call("enable_roaming"), _result("Roaming enabled"), _says("Done."))
    assert detect_events(roaming, writes=TELECOM.writes) == ["requested_write_done"]
    refresh = _turn(_call("refresh_status"), _result("ok"), _says("Done."))
    assert detect_events(refresh, writes=TELECOM.writes) == []  # the name alone would call it a write
