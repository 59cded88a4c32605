"""Writes the rating page of a blinded sample (`harness.judge.sample`): one static HTML page.

Built like the viewer: the data is a `.js` file loaded with a `<script>` tag (browsers refuse
`fetch()` of `file://` URLs), so the page works opened from disk. The rater's answers stay in the
page's `localStorage` while rating and are saved as a JSON file through a Blob download link.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from harness.view.write import js_value

STATIC = ("rating.js", "rating.css")
DATA_FILE = "sample.js"


def write_rating_page(data: dict[str, Any], out: Path) -> Path:
    """Write the page for `data` (the sample: its id, label set and blinded items) into `out`."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    out.mkdir(parents=True, exist_ok=True)
    (out / DATA_FILE).write_text(f"window.RATING_SAMPLE={js_value(data)};\n", encoding="utf-8")
    static = resources.files("harness.view") / "static"
    for name in STATIC:
        (out / name).write_text(static.joinpath(name).read_text(encoding="utf-8"), encoding="utf-8")
    env = Environment(
        loader=PackageLoader("harness.view", "templates"), autoescape=select_autoescape(["html", "j2"])
    )
    page = out / "index.html"
    page.write_text(
        env.get_template("rating.html.j2").render(
            sample=data["sample"], conversations=len(data["items"]), data_file=DATA_FILE
        ),
        encoding="utf-8",
    )
    return page
