"""A sweep's W&B workspace and report, built as `wandb-workspaces` models from its offline runs.

Every panel names a metric from `harness.tracking.keys` (the names the logger writes) and is
only added when the sweep's runs hold that metric, so no panel is ever empty by construction.
Building needs no network; `save_dashboard` is the one call that talks to W&B.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.analysis.anatomy import MAIN_ORDER
from harness.episode.types import Termination
from harness.errors import MissingDependencyError
from harness.tracking.keys import Conversation, Running, Summary, Table, Throughput, anatomy_key, nested
from harness.tracking.wandb_files import OfflineRun, find_runs

REPORT_JOB_TYPE = "report"
"""The job type of the run `python -m harness.report --wandb-project` logs."""
GROUP_KEYS = ("job.model", "job.env", "job.variant", "job.intensity")
"""Config keys the runs are grouped by, outermost first, where the sweep varies them (variant always)."""
OPTIONAL_PREFIXES = {
    "Cost and tokens": ("cost.", "cost/", "tokens/"),
    "Manipulation check and judge": ("judge/", "manipulation/", "affect/", "fidelity/"),
}
"""Sections whose metrics other parts of the harness log when they run: shown when present."""


class DashboardError(Exception):
    """Why the dashboards cannot be built or saved: one line for the user."""


@dataclass(frozen=True)
class SweepRuns:
    """What the dashboards need to know about a sweep's runs."""

    group: str
    project: str
    jobs: list[OfflineRun]
    """The latest segment of each job's run."""
    report_run: OfflineRun | None
    """The run of the sweep's statistical report, if it was logged."""
    logged: frozenset[str]
    """Every metric name the job runs hold, summary and history, nested keys joined with `.`."""
    numeric: frozenset[str]
    """The summary metrics that hold a number (what a bar chart can show)."""
    tables: frozenset[str]
    """Summary keys of the job runs that hold a table."""
    group_by: list[str]
    """Config keys to group the runs by (`job.variant`, and `job.model` / `job.env` when they vary)."""
    test_backends: list[str]
    segments: dict[str, list[Path]]
    """Per run id, the run files of its segments (one per attempt of the job, one per judge run)."""


def read_sweep_runs(path: Path) -> SweepRuns:
    """The offline runs under a sweep directory, resumed segments folded into one run each."""
    folded: dict[str, OfflineRun] = {}
    segments: dict[str, list[Path]] = {}
    for segment in find_runs(path):  # oldest first
        folded[segment.run_id] = _fold(folded.get(segment.run_id), segment)
        segments.setdefault(segment.run_id, []).append(segment.path)
    runs = list(folded.values())
    if not runs:
        raise DashboardError(f"no offline W&B runs under {path} (was the sweep run with wandb.mode=offline?)")
    jobs = [run for run in runs if run.job_type != REPORT_JOB_TYPE]
    if not jobs:
        raise DashboardError(f"{path} holds only a report run, no job runs")
    groups = sorted({run.group for run in jobs})
    projects = sorted({run.project for run in jobs})
    if len(groups) != 1 or len(projects) != 1:
        raise DashboardError(
            f"the runs under {path} span groups {groups} in projects {projects}; "
            "point at one sweep (one `name`, one `wandb.project`)"
        )
    logged: set[str] = set()
    tables: set[str] = set()
    numeric: set[str] = set()
    for run in jobs:
        for key, value in _flatten(run.summary).items():
            logged.add(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                numeric.add(key)
            if isinstance(value, dict) and value.get("_type") == "table-file":
                tables.add(key)
        for row in run.history:
            logged.update(_flatten(row))
    logged.update(tables)
    reports = [run for run in runs if run.job_type == REPORT_JOB_TYPE and run.group in ("", groups[0])]
    # control has no intensity (null): intensity groups the runs only where the emotions vary in it
    varying = [
        key
        for key in GROUP_KEYS
        if len({json.dumps(_config(run, key)) for run in jobs if _config(run, key) is not None}) > 1
    ]
    if "job.variant" not in varying:
        varying.append("job.variant")
    backends = sorted(
        {str(_config(run, "job.backend")) for run in jobs if _config(run, "job.plumbing_check")}
    )
    return SweepRuns(
        group=groups[0],
        project=projects[0],
        jobs=jobs,
        report_run=reports[-1] if reports else None,
        logged=frozenset(logged),
        numeric=frozenset(numeric),
        tables=frozenset(tables),
        group_by=varying,
        test_backends=backends,
        segments=segments,
    )


def _fold(run: OfflineRun | None, segment: OfflineRun) -> OfflineRun:
    """One run from its segments (a requeued job, a judge run logging to the job's run): identity
    from the first segment that has it, config and summary updated in order, history appended."""
    if run is None:
        return segment
    summary = dict(run.summary)
    summary.update(segment.summary)
    return dataclasses.replace(
        segment,
        path=run.path,
        project=run.project or segment.project,
        entity=run.entity or segment.entity,
        group=run.group or segment.group,
        job_type=run.job_type or segment.job_type,
        name=run.name or segment.name,
        tags=run.tags or segment.tags,
        config={**run.config, **segment.config},
        history=[*run.history, *segment.history],
        summary=summary,
        artifacts=[*run.artifacts, *segment.artifacts],
    )


def never_uploaded(sweep: SweepRuns) -> list[OfflineRun]:
    """Job runs `wandb sync` has not uploaded (it leaves `run-<id>.wandb.synced` beside each file)."""
    return [
        run
        for run in sweep.jobs
        if not all(path.with_suffix(".wandb.synced").exists() for path in sweep.segments[run.run_id])
    ]


def _config(run: OfflineRun, dotted: str) -> Any:
    value: Any = run.config
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}}` -> `{"a.b": 1}`; a table stays one value (its key is the table's name)."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and "_type" not in value:
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


@dataclass(frozen=True)
class PanelSpec:
    """One panel, before it becomes a `wandb-workspaces` model."""

    kind: str
    """`bar` (summary metrics, one bar per group), `line` (history over steps) or `table`."""
    title: str
    metrics: tuple[str, ...]


@dataclass(frozen=True)
class SectionSpec:
    name: str
    panels: tuple[PanelSpec, ...]


def dashboard_sections(sweep: SweepRuns) -> list[SectionSpec]:
    """The workspace's sections, each panel limited to the metrics the runs hold."""
    has = sweep.logged.__contains__
    pass_k = sorted(
        (key for key in sweep.logged if key.startswith(f"{Summary.PASS_HAT_K.value}.")),
        key=lambda key: int(key.rsplit(".", 1)[1]) if key.rsplit(".", 1)[1].isdigit() else 0,
    )
    terminations = [nested(Summary.TERMINATIONS, t.value) for t in Termination]
    sections = [
        SectionSpec(
            "Headline",
            (
                PanelSpec(
                    "bar", "Success (average reward) by group, spread across seeds", (Summary.AVERAGE_REWARD,)
                ),
                PanelSpec("bar", "pass^k", tuple(pass_k)),
                PanelSpec("line", "Running average reward", (Running.AVERAGE_REWARD.key,)),
            ),
        ),
        SectionSpec(
            "Behaviour",
            (
                PanelSpec("bar", "How conversations ended", tuple(filter(has, terminations))),
                PanelSpec(
                    "bar",
                    "Tool errors and unscored conversations",
                    (Summary.TOOL_ERRORS, Summary.UNSCORED_ERRORS),
                ),
                PanelSpec(
                    "line",
                    "Transfer and tool-error rates",
                    (Running.TRANSFER_RATE.key, Running.TOOL_ERROR_RATE.key),
                ),
                PanelSpec("line", "User turns per conversation", (Conversation.TURNS.key,)),
                PanelSpec("line", "Words per user turn", (Conversation.USER_WORDS_PER_TURN.key,)),
            ),
        ),
        SectionSpec(
            "Failure anatomy",
            (
                PanelSpec(
                    "bar",
                    "Scored conversations with each fault (the statistical report has the stacked bar)",
                    tuple(anatomy_key(c) for c in MAIN_ORDER),
                ),
            ),
        ),
        SectionSpec(
            "Cost and tokens",
            (
                PanelSpec(
                    "line",
                    "Tokens per conversation",
                    (Conversation.AGENT_TOKENS.key, Conversation.USER_TOKENS.key),
                ),
                PanelSpec(
                    "bar",
                    "Throughput",
                    (Throughput.CONVERSATIONS_PER_S.key, Throughput.AGENT_TOKENS_PER_S.key),
                ),
                *_discovered_panels(sweep, OPTIONAL_PREFIXES["Cost and tokens"]),
            ),
        ),
        SectionSpec(
            "Manipulation check and judge",
            tuple(_discovered_panels(sweep, OPTIONAL_PREFIXES["Manipulation check and judge"])),
        ),
        SectionSpec(
            "Transcripts",
            tuple(
                PanelSpec("table", f"{table} (one row per conversation)", (table,))
                for table in _tables(sweep)
            ),
        ),
    ]
    kept = []
    for section in sections:
        panels = tuple(
            dataclasses.replace(panel, metrics=tuple(m for m in panel.metrics if m in sweep.logged))
            for panel in section.panels
        )
        panels = tuple(panel for panel in panels if panel.metrics)
        if panels:
            kept.append(SectionSpec(section.name, panels))
    return kept


def _tables(sweep: SweepRuns) -> list[str]:
    """The failures table first (what a reader opens), then the rest the runs hold."""
    ordered = [Table.FAILURES.value, Table.TRANSCRIPTS.value]
    return [t for t in ordered if t in sweep.tables] + sorted(sweep.tables - set(ordered))


def _discovered_panels(sweep: SweepRuns, prefixes: Iterable[str]) -> list[PanelSpec]:
    """Bar panels for the number metrics another part of the harness logged under `prefixes`, one
    per family (`judge/<set>/emotion_share/...`, `cost....`)."""
    families: dict[str, list[str]] = {}
    for prefix in prefixes:
        for key in sorted(sweep.numeric):
            if key.startswith(prefix):
                family = key.rsplit("/", 1)[0] if "/" in key.removeprefix(prefix) else prefix.rstrip("/.")
                families.setdefault(family, []).append(key)
    return [PanelSpec("bar", family.replace("_", " "), tuple(keys)) for family, keys in families.items()]


def _require_workspaces() -> None:
    from importlib.util import find_spec

    if find_spec("wandb_workspaces") is None:
        raise MissingDependencyError(
            "W&B dashboards need the wandb-workspaces library: pip install -e '.[wandb]'"
        )


def _group_filter(sweep: SweepRuns) -> str:
    return f"Group = '{sweep.group}' and JobType != '{REPORT_JOB_TYPE}'"


def build_workspace(sweep: SweepRuns, entity: str, name: str | None = None) -> Any:
    """The saved workspace view: the sweep's runs, grouped, with one section per theme."""
    _require_workspaces()
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws
    from wandb_workspaces import expr

    return ws.Workspace(
        entity=entity,
        project=sweep.project,
        name=name or f"tau-emotion {sweep.group}",
        runset_settings=ws.RunsetSettings(
            filters=_group_filter(sweep),
            groupby=[expr.Config(key) for key in sweep.group_by],
        ),
        sections=[
            ws.Section(name=section.name, is_open=True, panels=[_panel(wr, p) for p in section.panels])
            for section in dashboard_sections(sweep)
        ],
    )


def _panel(wr: Any, spec: PanelSpec) -> Any:
    if spec.kind == "bar":
        return wr.BarPlot(
            title=spec.title,
            metrics=list(spec.metrics),
            orientation="v",
            groupby_aggfunc="mean",
            groupby_rangefunc="stddev",
        )
    if spec.kind == "line":
        return wr.LinePlot(title=spec.title, x="Step", y=list(spec.metrics), smoothing_factor=0.0)
    return wr.WeavePanelSummaryTable(table_name=spec.metrics[0])


def build_report(sweep: SweepRuns, entity: str, app_url: str) -> Any:
    """The W&B Report a user shares: headline panels, the statistical report's figures and tables,
    the plumbing-check banner for test backends, and a link to every run."""
    _require_workspaces()
    import wandb_workspaces.reports.v2 as wr

    def runset(filters: str, name: str) -> Any:
        return wr.Runset(
            entity=entity,
            project=sweep.project,
            name=name,
            filters=filters,
            groupby=[f"config.{key}" for key in sweep.group_by],
        )

    blocks: list[Any] = []
    if sweep.test_backends:
        blocks.append(
            wr.CalloutBlock(
                text=f"PLUMBING CHECK (backend {', '.join(sweep.test_backends)}): these runs test the "
                "harness end to end; their numbers say nothing about any model."
            )
        )
    blocks.append(
        wr.P(
            text=f"{len(sweep.jobs)} runs of the sweep `{sweep.group}`, grouped by "
            f"{', '.join(sweep.group_by)}. Success is τ-bench's reward over scored conversations."
        )
    )
    for section in dashboard_sections(sweep):
        blocks.append(wr.H2(text=section.name))
        blocks.append(
            wr.PanelGrid(
                runsets=[runset(_group_filter(sweep), sweep.group)],
                panels=[_panel(wr, p) for p in section.panels],
            )
        )
    if sweep.report_run is not None:
        report = sweep.report_run
        media = sorted(key for key, value in _report_logged(report).items() if value == "image-file")
        tables = sorted(key for key, value in _report_logged(report).items() if value == "table-file")
        blocks.append(wr.H2(text="Statistical report"))
        blocks.append(
            wr.PanelGrid(
                runsets=[runset(f"ID = '{report.run_id}'", "report")],
                panels=[
                    *([wr.MediaBrowser(title="Figures", media_keys=media)] if media else []),
                    *(wr.WeavePanelSummaryTable(table_name=table) for table in tables),
                ],
            )
        )
    blocks.append(wr.H2(text="Runs"))
    base = f"{app_url.rstrip('/')}/{entity}/{sweep.project}/runs"
    blocks.append(
        wr.UnorderedList(
            items=[
                [wr.Link(text=run.name or run.run_id, url=f"{base}/{run.run_id}")]
                for run in sorted(sweep.jobs, key=lambda r: r.name)
            ]
        )
    )
    return wr.Report(
        entity=entity,
        project=sweep.project,
        title=f"{sweep.group}: agents and emotional users"[:128],
        description="Built by `python -m harness.sync_wandb --dashboard` from the sweep's runs.",
        blocks=blocks,
        width="fluid",
    )


def _report_logged(run: OfflineRun) -> dict[str, str]:
    """Media and tables the report run logged: key -> `image-file` / `table-file`."""
    found: dict[str, str] = {}
    for row in [*run.history, run.summary]:
        for key, value in row.items():
            if isinstance(value, dict) and value.get("_type") in ("image-file", "table-file"):
                found[key] = value["_type"]
    return found


def spec_of(model: Any) -> Any:
    """A `wandb-workspaces` model as plain JSON-ready data, each object tagged with its class."""
    if dataclasses.is_dataclass(model) and not isinstance(model, type):
        fields = {
            f.name: spec_of(getattr(model, f.name))
            for f in dataclasses.fields(model)
            if not f.name.startswith("_")
        }
        return {"type": type(model).__name__, **fields}
    if isinstance(model, list | tuple):
        return [spec_of(item) for item in model]
    if isinstance(model, dict):
        return {str(key): spec_of(value) for key, value in model.items()}
    if hasattr(model, "to_key") or type(model).__module__.endswith("expr"):
        return repr(model)
    return model


def describe(sweep: SweepRuns) -> list[str]:
    """What would be created, one line each, for `--dry-run`."""
    lines = [
        f"workspace 'tau-emotion {sweep.group}' in project {sweep.project}: runs where "
        f"{_group_filter(sweep)}, grouped by {', '.join(sweep.group_by)}"
    ]
    for section in dashboard_sections(sweep):
        lines.append(f"  section {section.name}:")
        lines.extend(
            f"    {panel.kind}: {panel.title} <- {', '.join(panel.metrics)}" for panel in section.panels
        )
    lines.append(
        f"report '{sweep.group}: agents and emotional users': the sections above"
        + (", the statistical report's figures and tables" if sweep.report_run else "")
        + (", a plumbing-check banner" if sweep.test_backends else "")
        + f", links to {len(sweep.jobs)} runs"
    )
    if sweep.report_run is None:
        lines.append(
            "  (no report run found: `python -m harness.report <sweep> --wandb-project <project>` adds its figures)"
        )
    return lines


def save_dashboard(sweep: SweepRuns, entity: str, app_url: str) -> tuple[str, str]:
    """Create the workspace and the report in W&B; returns their URLs."""
    workspace = build_workspace(sweep, entity)
    report = build_report(sweep, entity, app_url)
    try:
        workspace.save()
    except Exception as error:
        raise DashboardError(
            f"W&B refused the workspace ({_first_line(error)}); nothing was created"
        ) from None
    try:
        report.save()
    except Exception as error:
        raise DashboardError(
            f"the workspace was saved ({workspace.url}) but W&B refused the report: {_first_line(error)}"
        ) from None
    return str(workspace.url), str(report.url)


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
