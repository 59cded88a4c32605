"""Writes the viewer: `index.html`, its script and style, and the data as JavaScript files.

The data are `.js` files loaded with `<script>` tags rather than JSON fetched at run time,
because browsers refuse `fetch()` of `file://` URLs: the viewer works opened from disk. The
conversation bodies are gzip-compressed JSON in base64, which the browser inflates with its
own `DecompressionStream`; the index stays plain so that the table shows at once.
"""

from __future__ import annotations

import base64
import gzip
import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

from harness.view.data import IndexBuilder
from harness.view.load import Loaded

CHUNK_SIZE = 200
"""Conversations per body file: a page loads one file, a text search loads them all."""
DATA_DIR = "data"
STATIC = ("viewer.js", "viewer.css")


def js_value(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _render_page(title: str, chunks: int) -> str:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("harness.view", "templates"), autoescape=select_autoescape(["html", "j2"])
    )
    return env.get_template("index.html.j2").render(title=title, data_dir=DATA_DIR, chunks=chunks)


class _ChunkWriter:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pending: list[dict[str, Any]] = []
        self.written = 0

    def add(self, body: dict[str, Any]) -> None:
        self.pending.append(body)
        if len(self.pending) == CHUNK_SIZE:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        packed = gzip.compress(js_value(self.pending).encode(), compresslevel=6, mtime=0)
        text = base64.b64encode(packed).decode()
        path = self.directory / f"{self.written:05d}.js"
        path.write_text(f'viewerChunk({self.written},"{text}");\n', encoding="utf-8")
        self.written += 1
        self.pending = []


def write_viewer(loaded: Loaded, out: Path, title: str) -> Path:
    """Write the viewer of `loaded` into `out` (its earlier data replaced); returns the page."""
    out.mkdir(parents=True, exist_ok=True)
    data_dir = out / DATA_DIR
    if data_dir.exists():
        shutil.rmtree(data_dir)
    (data_dir / "chunks").mkdir(parents=True)
    builder = IndexBuilder(title)
    chunks = _ChunkWriter(data_dir / "chunks")
    for job in loaded.jobs:
        for record in job.records():
            chunks.add(builder.add(job, record))
    chunks.flush()
    index = {**builder.index(loaded), "chunk_size": CHUNK_SIZE, "chunks": chunks.written}
    (data_dir / "index.js").write_text(f"window.VIEWER_INDEX={js_value(index)};\n", encoding="utf-8")
    (data_dir / "policies.js").write_text(
        f"window.VIEWER_POLICIES={js_value(list(builder.policies))};\n", encoding="utf-8"
    )
    static = resources.files("harness.view") / "static"
    for name in STATIC:
        (out / name).write_text(static.joinpath(name).read_text(encoding="utf-8"), encoding="utf-8")
    page = out / "index.html"
    page.write_text(_render_page(title, chunks.written), encoding="utf-8")
    return page


def viewer_size(out: Path) -> int:
    """Bytes of everything the viewer wrote."""
    return sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
