"""The viewer marks each failure's anatomy on a real τ-bench retail conversation and filters by it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.backends.scripted import ScriptedBackend
from harness.job.app import build_job
from harness.job.runner import run_job
from harness.view import build_viewer, conversation_link, load
from harness.view.data import build_data
from tests.helpers import compose_config
from tests.viewer_support import chromium_or_skip, launch_chromium

pytestmark = pytest.mark.taubench
EMAIL, ORDER, ITEM, PAYMENT = "yusuf.rossi7301@example.com", "#W6679257", "5996159312", "credit_card_9513926"
REFUND = [
    {"tool": "find_user_id_by_email", "arguments": {"email": EMAIL}},
    {"text": f"I can refund item {ITEM} of order {ORDER} to your card. Shall I proceed?"},
    {
        "tool": "return_delivered_order_items",
        "arguments": {"order_id": ORDER, "item_ids": [ITEM], "payment_method_id": PAYMENT},
    },
    {"text": "Your refund is on its way."},
]
USER = [{"text": "I want to exchange a keyboard I got."}, {"text": "Yes."}, {"text": "###STOP###"}]
SCRIPTED_JOB = "scripted/retail-test/anger/seed0"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sweep = tmp_path_factory.mktemp("anatomy") / "sweep"
    for variant, scripted in (("neutral", False), ("anger", True)):
        backend = "scripted" if scripted else "oracle"
        cfg = compose_config(
            [
                "env=retail",
                "env.tasks=[0,1]",
                f"variant={variant}",
                f"backend={backend}",
                "wandb.mode=disabled",
            ]
        )
        job = build_job(cfg, sweep / backend / "retail-test" / variant / "seed0")
        if scripted:
            job.backend = ScriptedBackend(agent=REFUND, user=USER)
        asyncio.run(run_job(job))
    build_viewer(load(sweep))
    return sweep


def test_the_index_carries_each_conversations_main_fault(sweep: Path) -> None:
    data = build_data(load(sweep), "t")
    faults = data.index["values"]["fault"]
    jobs = data.index["values"]["job"]
    by_job = {
        (jobs[j], task): faults[f]
        for j, task, f in zip(
            data.index["cols"]["job"], data.index["cols"]["task"], data.index["cols"]["fault"], strict=True
        )
    }
    assert by_job[(SCRIPTED_JOB, 0)] == by_job[(SCRIPTED_JOB, 1)] == "concession"
    assert by_job[("oracle/retail-test/neutral/seed0", 0)] == ""
    scripted = next(
        b for b, j in zip(data.bodies, data.index["cols"]["job"], strict=True) if jobs[j] == SCRIPTED_JOB
    )
    marked = [m for m in scripted["messages"] if m.get("ff")]
    assert len(marked) == 1 and marked[0]["tc"][0]["name"] == "return_delivered_order_items"
    assert {f["k"] for f in scripted["anatomy"]["faults"]} == {"concession", "missing_write"}


@pytest.fixture(scope="module")
def browser(sweep: Path) -> Iterator[Any]:
    chromium_or_skip()
    yield from launch_chromium()


def test_the_conversation_page_highlights_the_first_write_at_fault_and_the_index_filters_by_fault(
    browser: Any, sweep: Path
) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    viewer = (sweep / "report" / "viewer" / "index.html").as_uri()
    page.goto(viewer + conversation_link(SCRIPTED_JOB, 0, 0).split("index.html")[1])
    page.wait_for_selector("#chat")
    assert page.locator("#anatomy").inner_text().startswith("Failure anatomy: concession")
    assert "return_delivered_order_items was not required" in page.locator("ul.faults").inner_text()
    highlighted = page.locator(".msg.agent.firstfault")
    assert highlighted.count() == 1
    assert "return_delivered_order_items" in highlighted.inner_text()
    assert highlighted.locator(".chip.fault.first").inner_text() == "concession"
    page.goto(viewer + "#/")
    page.select_option("#filter-fault", label="concession")
    rows = page.locator("table.index tbody tr")
    assert rows.count() == 2 and all("anger" in t for t in rows.all_inner_texts())
    page.select_option("#filter-fault", label="—")
    assert page.locator("table.index tbody tr").count() == 2  # the oracle's: no fault
    page.close()
    assert errors == []
