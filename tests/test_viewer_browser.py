"""The viewer in a real browser: the system's chromium, headless, driven by playwright."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.job.metrics import is_success
from harness.store import CONVERSATIONS
from harness.view import build_viewer, conversation_link, load
from tests.helpers import read_jsonl
from tests.viewer_support import MARKUP, chromium_or_skip, job_dir, judge_sweep, launch_chromium, make_sweep

pytestmark = pytest.mark.browser
SCREENSHOTS = os.environ.get("TAU_EMOTION_SCREENSHOTS")
"""A directory to keep the screenshots in (docs/img comes from here); a temporary one otherwise."""


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chromium_or_skip()
    sweep = judge_sweep(make_sweep(tmp_path_factory.mktemp("viewer") / "sweep"))
    build_viewer(load(sweep))
    return sweep


@pytest.fixture(scope="module")
def browser(sweep: Path) -> Iterator[Any]:
    """After the sweep: playwright's event loop would stop the harness's `asyncio.run`."""
    yield from launch_chromium()


@pytest.fixture
def page(browser: Any, sweep: Path) -> Iterator[Any]:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    page.close()
    assert errors == []


def url(sweep: Path, fragment: str = "#/") -> str:
    return (sweep / "report" / "viewer" / "index.html").as_uri() + fragment


def records(sweep: Path) -> list[dict[str, Any]]:
    return [
        r for v in ("anger", "control", "frustration") for r in read_jsonl(job_dir(sweep, v) / CONVERSATIONS)
    ]


def shown(page: Any) -> list[tuple[str, int, int]]:
    return [
        (
            row.get_attribute("data-variant"),
            int(row.get_attribute("data-task")),
            int(row.get_attribute("data-trial")),
        )
        for row in page.locator("#rows tr").all()
    ]


def test_index_lists_every_conversation_and_filters_failed_and_flipped(page: Any, sweep: Path) -> None:
    everything = records(sweep)
    page.goto(url(sweep))
    assert page.locator("#count").inner_text() == f"{len(everything)} of {len(everything)} conversations"
    assert page.locator("#skipped-none").is_visible()

    page.check("#failed-only")
    failed = {(r["variant"], r["task_id"], r["trial"]) for r in everything if not is_success(r["reward"])}
    assert set(shown(page)) == failed and len(shown(page)) == len(failed)

    control = {
        (r["task_id"], r["trial"]): is_success(r["reward"]) for r in everything if r["variant"] == "control"
    }

    def flips(worse: bool) -> set[tuple[str, int, int]]:
        return {
            (r["variant"], r["task_id"], r["trial"])
            for r in everything
            if r["variant"] != "control"
            and control[(r["task_id"], r["trial"])] == worse
            and is_success(r["reward"]) != worse
        }

    page.uncheck("#failed-only")
    page.select_option("#flip", "worse")
    assert set(shown(page)) == flips(worse=True) == {("frustration", 0, 0), ("frustration", 0, 1)}
    page.select_option("#flip", "better")
    assert set(shown(page)) == flips(worse=False) and {v for v, _, _ in shown(page)} == {"anger"}
    page.select_option("#baseline", "anger")  # the other way round: control is worse than anger
    assert set(shown(page)) == set()
    page.select_option("#flip", "worse")
    assert {v for v, _, _ in shown(page)} == {"control", "frustration"}
    page.reload()  # the filters live in the address
    assert (
        page.locator("#flip").input_value() == "worse" and page.locator("#baseline").input_value() == "anger"
    )


def test_column_filters_and_text_search(page: Any, sweep: Path) -> None:
    page.goto(url(sweep))
    page.select_option("#filter-variant", label="anger")
    page.fill("#filter-task", ">=3")
    page.press("#filter-task", "Enter")
    assert set(shown(page)) == {("anger", t, k) for t in (3, 4) for k in (0, 1)}
    page.select_option("#filter-variant", label="all")
    page.select_option("#filter-intensity", label="—")  # control has no intensity
    assert {v for v, _, _ in shown(page)} == {"control"} and len(shown(page)) == 4
    page.goto(url(sweep))
    page.fill("#search", "kettle")
    page.press("#search", "Enter")
    page.wait_for_function("document.getElementById('count').textContent.includes(' of ')")
    with_kettle = {
        (r["variant"], r["task_id"], r["trial"])
        for r in records(sweep)
        if any("kettle" in json.dumps(m).lower() for m in r["messages"] if m["role"] != "system")
        or "kettle" in r["instruction"].lower()
    }
    assert with_kettle and set(shown(page)) == with_kettle


def test_conversation_page_shows_the_chat_the_scoring_and_the_judge(page: Any, sweep: Path) -> None:
    page.goto(url(sweep, conversation_link("oracle/toy-test/control/seed0", 1, 0).split("index.html")[1]))
    page.wait_for_selector("#chat")
    assert "task 1 · trial 0 · control" in page.locator("h2").inner_text()
    assert (
        page.locator(".instruction .text").inner_text()
        == "You are Ada (ada@example.com). Ask how much your lamp order #A2 cost."
    )
    assert page.locator("li.missing").inner_text() == "✗ missing: 45"
    diverged = page.locator("table.actions tr.diverge").inner_text()
    assert "get_order_details" in diverged and "cancel_pending_order" in diverged
    assert (
        page.locator("#divergence")
        .inner_text()
        .startswith("First divergence from the ground truth at action 2.")
    )
    assert page.locator(".msg.user").count() == 2 and page.locator(".msg.user.active").count() == 0
    assert page.locator(".tool .call").all_inner_texts() == [
        "→ find_user_id_by_email",
        "→ cancel_pending_order",
    ]
    assert "cancelled" in page.locator(".tool .result").nth(1).inner_text()

    page.goto(url(sweep, "#/c/oracle%2Ftoy-test%2Fanger%2Fseed0/0/0"))
    page.wait_for_selector("#chat")
    first = page.locator(".msg.user").first
    assert "active" in (first.get_attribute("class") or "")
    assert first.locator(".chip.judge").inner_text() == "judge: anger · 2"  # the scripted judge's verdict
    assert (
        first.locator(".chip.judge").get_attribute("title")
        == "The customer blames the company and demands a fix."
    )
    assert page.locator("#divergence").inner_text() == "The agent's tool actions match the ground truth."


def test_side_by_side_shows_both_transcripts_turn_by_turn(page: Any, sweep: Path) -> None:
    page.goto(url(sweep, "#/c/oracle%2Ftoy-test%2Ffrustration%2Fseed0/0/0"))
    page.wait_for_selector("#chat")
    page.keyboard.press("s")
    page.wait_for_selector("#side")
    assert page.locator("#side-a .badge").inner_text().startswith("success")
    assert page.locator("#side-b .badge").inner_text().startswith("failed")
    assert "control" in page.locator("#pick-a option:checked").inner_text()
    assert "frustration" in page.locator("#pick-b option:checked").inner_text()
    left = page.locator("#side .cell.a").all_inner_texts()
    right = page.locator("#side .cell.b").all_inner_texts()
    assert len(left) == len(right) == 2  # two user turns on each side, row by row
    assert "Your order #A1 is cancelled." in left[0] and "→ cancel_pending_order" in left[0]
    assert MARKUP in right[0] and "frustration · medium" in right[0]
    page.select_option("#pick-a", label="anger (medium) · oracle/toy-test/anger/seed0")
    page.wait_for_function("location.hash.startsWith('#/s/oracle%2Ftoy-test%2Fanger')")
    page.wait_for_selector("#side")
    assert page.locator("#side-a .badge").inner_text().startswith("success")
    assert "I am really angry" in page.locator("#side .cell.a").first.inner_text()
    target = Path(SCREENSHOTS or sweep / "report") / "viewer-side-by-side.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 10_000


def test_markup_in_messages_is_shown_as_text_and_never_runs(page: Any, sweep: Path) -> None:
    page.goto(url(sweep, "#/c/oracle%2Ftoy-test%2Ffrustration%2Fseed0/2/1"))
    page.wait_for_selector("#chat")
    page.wait_for_timeout(200)  # time for an injected onerror handler to fire, were there one
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#chat img").count() == 0 and page.locator("#chat script").count() == 0
    assert MARKUP in page.locator(".msg.agent .text").first.inner_text()


def test_keyboard_moves_through_the_conversations(page: Any, sweep: Path) -> None:
    page.goto(url(sweep))
    page.keyboard.press("f")
    assert page.locator("#failed-only").is_checked()
    failed = shown(page)
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.wait_for_selector("#chat")
    variant, task, trial = failed[1]
    assert f"task {task} · trial {trial} · {variant}" in page.locator("h2").inner_text()
    page.keyboard.press("n")
    page.wait_for_function(
        f"!document.querySelector('h2').textContent.includes('task {task} · trial {trial} · {variant}')"
    )
    variant, task, trial = failed[2]
    page.wait_for_selector("#chat")
    assert f"task {task} · trial {trial} · {variant}" in page.locator("h2").inner_text()
    page.keyboard.press("u")
    page.wait_for_selector("#rows")
    assert page.locator("#failed-only").is_checked()
    assert page.locator("#rows tr.sel").get_attribute("data-task") == str(task)


def test_skipped_lines_are_listed_on_the_index(browser: Any, sweep: Path, tmp_path: Path) -> None:
    copy = tmp_path / "sweep"
    shutil.copytree(sweep, copy, ignore=shutil.ignore_patterns("report"))
    log = job_dir(copy, "control") / CONVERSATIONS
    lines = log.read_text().splitlines(keepends=True)
    damaged = {
        **json.loads(lines[0]),
        "scored": False,
        "reward": 0.0,
        "reward_info": None,
        "termination": "infra_error",
        "error": "<b>backend unavailable</b>",
        "counts": "junk",
        "usage": None,
        "messages": [*json.loads(lines[0])["messages"][:2], 42, {"role": "assistant", "content": ["odd"]}],
    }
    log.write_text("".join([json.dumps(damaged) + "\n", "{oops\n", *lines[1:], lines[1][:50]]))
    build_viewer(load(copy))
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url(copy, f"#/c/oracle%2Ftoy-test%2Fcontrol%2Fseed0/{damaged['task_id']}/{damaged['trial']}"))
    page.wait_for_selector("#chat")
    assert page.locator(".outcome .badge").first.inner_text() == "not scored"
    assert page.locator(".outcome .error").inner_text() == "<b>backend unavailable</b>"
    assert page.locator("#divergence").inner_text() == "Not scored: no ground truth recorded."
    assert page.locator(".msg.agent .text").last.inner_text() == '["odd"]'
    page.goto(url(copy))
    assert (
        page.locator("#count").inner_text() == f"{len(records(sweep))} of {len(records(sweep))} conversations"
    )
    assert page.locator("#skipped summary").inner_text() == "2 lines skipped"
    assert page.locator("#skipped li").all_inner_texts() == [
        "oracle/toy-test/control/seed0/conversations.jsonl:2: not JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))",
        f"oracle/toy-test/control/seed0/conversations.jsonl:{len(lines) + 2}: half-written last line (no newline at its end)",
    ]
    page.close()
    assert errors == []


def test_the_report_links_its_failure_examples_to_the_viewer(page: Any, sweep: Path) -> None:
    from harness.report.build import Settings, build_report

    # the arms run on different test backends (and so different simulated users): allowed here
    allowed = ("backend", "user_simulator")
    report = build_report(sweep, settings=Settings(resamples=50, model=False, allow_differing=allowed))
    page.goto(report.html.as_uri())
    page.click("text=Conversations, one by one and side by side")
    page.wait_for_selector("#rows")
    page.go_back()
    examples = page.locator("a[href^='viewer/index.html#/s/']")
    assert examples.count() == 2  # frustration failed task 0 in both trials, where control succeeded
    examples.first.click()
    page.wait_for_selector("#side")
    assert "control" in page.locator("#pick-a option:checked").inner_text()
    assert "frustration" in page.locator("#pick-b option:checked").inner_text()
    assert "task 0" in page.locator("h2").inner_text()
