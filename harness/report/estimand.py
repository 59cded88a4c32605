"""The sweep's declared estimand in the report: which rows are primary, the label of every other table.

`study_of` reads the `study:` block the jobs recorded; `primary_rows` picks the declared family out
of the headline (or pooled) table and applies Holm over that family alone; `scope_label` and
`label_sections` give every table its "primary" or "exploratory (not in the declared family)" tag.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.job.study import Study, study_from
from harness.report.load import ReportError
from harness.report.render import Section
from harness.report.stats import holm, holm_within
from harness.store import DamagedFile, find_job_dirs, read_job_file

PRIMARY_LABEL = "Primary (the declared family)."
EXPLORATORY_LABEL = "Exploratory (not in the declared family)."


def scope_label(primary: bool) -> str:
    """The one-line tag a table of the report carries: primary or exploratory."""
    return PRIMARY_LABEL if primary else EXPLORATORY_LABEL


def label_sections(sections: list[Section], primary_titles: set[str], untested: set[str]) -> None:
    """Prefix every section with a table (subsections too) by its tag; `untested` ones (job lists) are left."""
    for section in sections:
        if section.title not in untested and section.table is not None:
            tag = scope_label(section.title in primary_titles)
            if not section.text.startswith(tag):
                section.text = f"{tag} {section.text}".strip()
        label_sections(section.subsections, primary_titles, untested)


def study_of(sweep_dir: Path) -> Study:
    """The study every job of the sweep recorded; the default when none did; an error when they differ."""
    declared: dict[str, Study] = {}
    for job_dir in find_job_dirs(sweep_dir):
        try:
            job = read_job_file(job_dir)
        except DamagedFile:
            continue
        if job is not None and job.study:
            declared[str(job_dir.relative_to(sweep_dir))] = study_from(job.study)
    if not declared:
        return Study.default()
    first, *_ = sorted(declared)
    other = next((name for name, study in declared.items() if study != declared[first]), None)
    if other is not None:
        raise ReportError(
            f"the jobs of {sweep_dir} declare different studies ({first} and {other}): "
            "one sweep answers one declared question; report them separately"
        )
    return declared[first]


def declaration_line(study: Study) -> str:
    if study.declared:
        line = f"Declared estimand (the sweep's `study:` block): {study.describe()}."
        return line + (f" {study.note}" if study.note else "")
    return (
        "No estimand was declared (no `study:` block in the sweep): the report uses the default, "
        f"{Study.default().describe()}."
    )


def _variant(condition: str) -> str:
    return condition.partition("@")[0]


def primary_rows(table: pd.DataFrame, study: Study, verdict: object) -> pd.DataFrame:
    """The declared family's rows of a contrast table, with Holm over that family alone (`p_holm`)."""
    if table.empty or "contrast" not in table.columns:
        return table.iloc[0:0]
    kind = table["kind"] if "kind" in table.columns else pd.Series("primary", index=table.index)
    conditions = table["contrast"].str.split(" − ").str[0]
    chosen = (kind == study.kind) & conditions.map(lambda c: study.in_family(_variant(c)))
    if "refused" in table.columns:
        chosen &= ~table["refused"].astype(bool)
    rows = table[chosen].copy()
    if rows.empty:
        return rows
    rows["p_holm"] = holm(rows["p_value"].tolist())
    rows["holm_family"] = f"declared: {study.primary_contrast} ({len(rows)} contrasts)"
    if callable(verdict):
        rows["verdict"] = [verdict(r) for r in rows.to_dict("records")]
    return rows


def named_holm(table: pd.DataFrame, family: str, by: list[str] | None = None) -> pd.DataFrame:
    """Holm over a secondary table's p-values (within each group of `by`), the family named in `holm_family`."""
    if table.empty or "p_value" not in table.columns:
        return table
    table = table.copy()
    holm_within(table, by)
    table["holm_family"] = f"exploratory: {family}" + (f" (within each {', '.join(by)})" if by else "")
    return table
