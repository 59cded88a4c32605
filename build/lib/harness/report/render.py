"""Markdown and self-contained HTML from the report's sections."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


def plumbing_banner(backends: list[str]) -> str:
    return (
        f"PLUMBING CHECK — NOT A MODEL RESULT. Conversations in this sweep come from a test backend "
        f"({', '.join(backends)}): the oracle replays τ-bench's ground-truth actions with a scripted user, "
        "the scripted backend replies from its config. These numbers test that the harness runs, scores "
        "and reports end to end; they say nothing about any model."
    )


@dataclass
class Section:
    title: str
    text: str = ""
    table: pd.DataFrame | None = None
    figure: Path | None = None
    subsections: list[Section] = field(default_factory=list)


def _cell(value: object) -> str:
    if isinstance(value, float):
        if pd.isna(value):
            return ""
        return f"{value:.1e}" if 0 < abs(value) < 0.0005 else f"{value:.3f}"
    return "" if value is None else str(value)


def _formatted(table: pd.DataFrame) -> pd.DataFrame:
    return table.map(_cell) if not table.empty else table


def markdown_table(table: pd.DataFrame) -> str:
    if table.empty:
        return "_(none)_"
    cells = _formatted(table)
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(v.replace("|", "\\|") for v in row) + " |" for row in cells.to_numpy().tolist()]
    return "\n".join([header, rule, *body])


def to_markdown(title: str, banner: str | None, sections: list[Section], figure_root: Path) -> str:
    lines = [f"# {title}", ""]
    if banner:
        lines += [f"> **⚠ {banner}**", ""]

    def emit(section: Section, level: int) -> None:
        lines.extend([f"{'#' * level} {section.title}", ""])
        if section.text:
            lines.extend([section.text, ""])
        if section.figure is not None:
            lines.extend([f"![{section.title}]({section.figure.relative_to(figure_root).as_posix()})", ""])
        if section.table is not None:
            lines.extend([markdown_table(section.table), ""])
        for sub in section.subsections:
            emit(sub, level + 1)

    for section in sections:
        emit(section, 2)
    return "\n".join(lines)


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.6em 0 1.4em; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
.banner { background: #fff1c2; border: 3px solid #d08c00; padding: 1em; font-weight: bold; font-size: 1.1em; }
img { max-width: 100%; border: 1px solid #eee; }
p.note { color: #444; white-space: pre-wrap; }
"""


def _paragraphs(text: str) -> str:
    return "".join(f"<p class='note'>{html.escape(p)}</p>" for p in text.split("\n\n") if p.strip())


def to_html(title: str, banner: str | None, sections: list[Section]) -> str:
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if banner:
        parts.append(f"<div class='banner'>⚠ {html.escape(banner)}</div>")

    def emit(section: Section, level: int) -> None:
        parts.append(f"<h{level}>{html.escape(section.title)}</h{level}>")
        if section.text:
            parts.append(_paragraphs(section.text))
        if section.figure is not None:
            data = base64.b64encode(section.figure.read_bytes()).decode()
            parts.append(f"<img alt='{html.escape(section.title)}' src='data:image/png;base64,{data}'>")
        if section.table is not None:
            parts.append(
                "<p><em>(none)</em></p>"
                if section.table.empty
                else _formatted(section.table).to_html(index=False, border=0, escape=True)
            )
        for sub in section.subsections:
            emit(sub, min(level + 1, 6))

    for section in sections:
        emit(section, 2)
    parts.append("</body></html>")
    return "\n".join(parts)
