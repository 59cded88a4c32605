"""Writes the viewer: `index.html`, its script and style, and the data as JavaScript files.

The data are `.js` files loaded with `<script>` tags rather than JSON fetched at run time,
because browsers refuse `fetch()` of `file://` URLs: the viewer works opened from disk.
"""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

from harness.view.data import ViewerData

CHUNK_SIZE = 200
"""Conversations per body file: a page loads one file, a text search loads them all."""
DATA_DIR = "data"
STATIC = ("viewer.js", "viewer.css")


def _js_value(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _render_page(title: str, chunks: int) -> str:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("harness.view", "templates"), autoescape=select_autoescape(["html", "j2"])
    )
    return env.get_template("index.html.j2").render(title=title, data_dir=DATA_DIR, chunks=chunks)


def write_viewer(data: ViewerData, out: Path) -> Path:
    """Write the viewer into `out` (its earlier data replaced) and return the page's path."""
    out.mkdir(parents=True, exist_ok=True)
    data_dir = out / DATA_DIR
    if data_dir.exists():
        shutil.rmtree(data_dir)
    (data_dir / "chunks").mkdir(parents=True)
    chunks = [data.bodies[i : i + CHUNK_SIZE] for i in range(0, len(data.bodies), CHUNK_SIZE)]
    index = {**data.index, "chunk_size": CHUNK_SIZE, "chunks": len(chunks)}
    (data_dir / "index.js").write_text(f"window.VIEWER_INDEX={_js_value(index)};\n", encoding="utf-8")
    (data_dir / "policies.js").write_text(
        f"window.VIEWER_POLICIES={_js_value(data.policies)};\n", encoding="utf-8"
    )
    for number, chunk in enumerate(chunks):
        (data_dir / "chunks" / f"{number:05d}.js").write_text(
            f"viewerChunk({number},{_js_value(chunk)});\n", encoding="utf-8"
        )
    static = resources.files("harness.view") / "static"
    for name in STATIC:
        (out / name).write_text(static.joinpath(name).read_text(encoding="utf-8"), encoding="utf-8")
    page = out / "index.html"
    page.write_text(_render_page(str(index["title"]), len(chunks)), encoding="utf-8")
    return page


def viewer_size(out: Path) -> int:
    """Bytes of everything the viewer wrote."""
    return sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
