"""Stable addresses of conversations in the viewer, and the report's links to them."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    import pandas as pd

PAGE = "viewer/index.html"
"""The viewer's page relative to the report directory (`<sweep>/report/`)."""
VIEWER_LINK_MARKDOWN = (
    f"Conversations, one by one and side by side: [{PAGE}]({PAGE}) (`python -m harness.view`)."
)
VIEWER_LINK_HTML = f"<p><a href='{PAGE}'>Conversations, one by one and side by side</a> (<code>python -m harness.view</code>)</p>"
_CELL = re.compile(r"<td>(viewer/index\.html#/[csA-Za-z0-9%._~/-]+)</td>")


def conversation_link(job: str, task_id: int, trial: int, page: str = "index.html") -> str:
    """One conversation: `job` is its directory relative to the sweep."""
    return f"{page}#/c/{quote(job, safe='')}/{task_id}/{trial}"


def side_by_side_link(job_a: str, job_b: str, task_id: int, trial: int, page: str = "index.html") -> str:
    """The same task and trial in two jobs, `job_a` on the left."""
    return f"{page}#/s/{quote(job_a, safe='')}/{quote(job_b, safe='')}/{task_id}/{trial}"


def with_conversation_links(table: pd.DataFrame) -> pd.DataFrame:
    """`table` with a `conversation` column linking each row to the viewer, if its rows are conversations.

    Rows with `job`, `task_id` and `trial` link to that conversation; with `job_baseline` too (the
    report's failure examples), to the baseline's conversation and that one side by side.
    """
    if (
        table.empty
        or not {"job", "task_id", "trial"} <= set(table.columns)
        or "conversation" in table.columns
    ):
        return table
    rows = table.to_dict("records")
    baseline = next((c for c in ("job_baseline", "job_control") if c in table.columns), None)
    if baseline is not None:
        links = [side_by_side_link(r[baseline], r["job"], r["task_id"], r["trial"], PAGE) for r in rows]
    else:
        links = [conversation_link(r["job"], r["task_id"], r["trial"], PAGE) for r in rows]
    return table.assign(conversation=links)


def link_cells(table_html: str) -> str:
    """Turns the viewer addresses in an escaped HTML table's cells into links."""
    return _CELL.sub(r"<td><a href='\1'>open</a></td>", table_html)
