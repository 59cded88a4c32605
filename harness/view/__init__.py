"""A self-contained HTML viewer of a sweep's conversations: `python -m harness.view SWEEP_DIR`."""

from __future__ import annotations

from pathlib import Path

from harness.view.links import conversation_link, side_by_side_link
from harness.view.load import Loaded, load
from harness.view.write import viewer_size, write_viewer

VIEWER_DIR = Path("report") / "viewer"
"""Where the viewer goes inside the directory it reads, unless told otherwise."""


def build_viewer(loaded: Loaded, out: Path | None = None) -> Path:
    """Write the viewer of what was read from `loaded.root`; returns the page."""
    return write_viewer(loaded, out or loaded.root / VIEWER_DIR, loaded.root.resolve().name)


__all__ = ["VIEWER_DIR", "build_viewer", "conversation_link", "load", "side_by_side_link", "viewer_size"]
