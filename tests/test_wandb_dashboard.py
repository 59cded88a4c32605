"""The sweep's W&B workspace and report, built offline from the real offline runs of a sweep.

Saving them needs a W&B account and the network; everything up to the library's own `save()` runs
here: the specs are the library's models, serialised.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.tracking.conversation_rows import conversation_metrics
from harness.tracking.dashboard import (
    build_report,
    build_workspace,
    dashboard_sections,
    read_sweep_runs,
    spec_of,
)
from harness.tracking.keys import Conversation, Table
from harness.tracking.wandb_files import OfflineRun, find_runs
from tests.helpers import ROOT, read_jsonl, run_module
from tests.wandb_support import isolate_wandb, run_job_into

pytest.importorskip("wandb_workspaces", reason="W&B dashboards need wandb-workspaces (the `wandb` extra)")

GROUP = "dash-study"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real toy sweep (oracle, control + anger, 2 seeds) logged offline, plus its report run."""
    tmp = tmp_path_factory.mktemp("dashboard")
    with pytest.MonkeyPatch.context() as monkeypatch:
        isolate_wandb(tmp, monkeypatch)
        root = tmp / "sweep"
        for variant in ("control", "anger"):
            for seed in (0, 1):
                run_job_into(
                    root / "oracle" / "toy-test" / variant / f"seed{seed}",
                    [
                        f"variant={variant}",
                        f"seed={seed}",
                        "env.tasks=[0,1,2]",
                        "env.trials=2",
                        f"name={GROUP}",
                        "wandb.mode=offline",
                    ],
                )
        monkeypatch.setenv("WANDB_MODE", "offline")
        report = subprocess.run(
            [
                sys.executable,
                "-m",
                "harness.report",
                str(root),
                "--wandb-project",
                "tau-emotion",
                "--resamples",
                "200",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert report.returncode == 0, report.stderr[-2000:]
    return root


def logged_names(runs: list[OfflineRun]) -> set[str]:
    """Every metric name in the runs' history and summary, read independently of the builder."""
    names: set[str] = set()

    def walk(values: dict[str, Any], prefix: str = "") -> None:
        for key, value in values.items():
            if isinstance(value, dict) and "_type" not in value:
                walk(value, f"{prefix}{key}.")
            else:
                names.add(f"{prefix}{key}")

    for run in runs:
        walk(run.summary)
        for row in run.history:
            walk(row)
    return names


def panel_metrics(panel: Any) -> list[str]:
    for attribute in ("metrics", "y"):
        value = getattr(panel, attribute, None)
        if value:
            return [str(v) for v in value]
    return [panel.table_name]


def test_sweep_runs_are_read_with_their_group_and_grouping(sweep: Path) -> None:
    runs = read_sweep_runs(sweep)
    assert runs.group == GROUP
    assert runs.project == "tau-emotion"
    assert len(runs.jobs) == 4
    assert runs.group_by == ["job.variant"]  # the only setting the sweep varies (seeds are spread)
    assert runs.test_backends == ["oracle"]
    assert runs.report_run is not None and runs.report_run.group == GROUP  # the jobs' `name`


def test_workspace_panels_show_only_logged_metrics(sweep: Path) -> None:
    runs = read_sweep_runs(sweep)
    jobs = [run for run in find_runs(sweep) if run.job_type != "report"]
    logged = logged_names(jobs)
    workspace = build_workspace(runs, entity="team")

    assert [section.name for section in workspace.sections] == [
        "Headline",
        "Behaviour",
        "Failure anatomy",
        "Cost and tokens",
        "Transcripts",
    ]
    for section in workspace.sections:
        assert section.panels, section.name
        for panel in section.panels:
            for metric in panel_metrics(panel):
                assert metric in logged, f"panel {panel.title!r} shows {metric!r}, which no run logged"
    headline = {m for p in workspace.sections[0].panels for m in panel_metrics(p)}
    assert {"average_reward", "pass_hat_k.1", "pass_hat_k.2"} <= headline
    tables = [p.table_name for p in workspace.sections[-1].panels]
    assert tables == [Table.FAILURES.value, Table.TRANSCRIPTS.value]

    model = workspace._to_model()  # what `save()` sends
    runset = model.model_dump(by_alias=True, exclude_none=True)["spec"]["section"]["runSets"][0]
    assert runset["grouping"] == [{"section": "config", "name": "job.value.variant"}]
    assert {"key": {"section": "run", "name": "group"}, "op": "=", "value": GROUP} in [
        {k: f[k] for k in ("key", "op", "value")} for f in runset["filters"]["filters"]
    ]
    assert workspace.runset_settings.filters == f"Group = '{GROUP}' and JobType != 'report'"


def test_report_has_banner_figures_tables_and_every_run(sweep: Path) -> None:
    runs = read_sweep_runs(sweep)
    spec = spec_of(build_report(runs, entity="team", app_url="https://wandb.example"))
    blocks = spec["blocks"]
    kinds = [block["type"] for block in blocks]
    assert kinds[0] == "CalloutBlock" and "PLUMBING CHECK (backend oracle)" in blocks[0]["text"]
    headings = [block["text"] for block in blocks if block["type"] == "H2"]
    assert headings == [
        "Headline",
        "Behaviour",
        "Failure anatomy",
        "Cost and tokens",
        "Transcripts",
        "Statistical report",
        "Runs",
    ]
    grids = [block for block in blocks if block["type"] == "PanelGrid"]
    assert all(grid["runsets"][0]["groupby"] == ["config.job.variant"] for grid in grids)
    statistical = grids[-1]
    assert statistical["runsets"][0]["filters"] == f"ID = '{runs.report_run.run_id}'"  # type: ignore[union-attr]
    panel_types = {panel["type"] for panel in statistical["panels"]}
    assert {"MediaBrowser", "WeavePanelSummaryTable"} <= panel_types
    figures = next(p for p in statistical["panels"] if p["type"] == "MediaBrowser")["media_keys"]
    report_dir = sweep / "report"
    assert figures and all((report_dir / f"{name}.png").exists() for name in figures)
    assert "failure_anatomy" in figures  # the stacked bar per arm
    links = blocks[-1]["items"]
    urls = sorted(item[0]["url"] for item in links)
    assert urls == sorted(f"https://wandb.example/team/tau-emotion/runs/{run.run_id}" for run in runs.jobs)


def test_dry_run_lists_what_would_be_created_and_upload_is_required(sweep: Path) -> None:
    command = [sys.executable, "-m", "harness.sync_wandb", str(sweep), "--dashboard"]
    dry = subprocess.run(
        [*command, "--dry-run", "--no-upload"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert dry.returncode == 0, dry.stderr
    assert f"workspace 'tau-emotion {GROUP}'" in dry.stdout
    assert "bar: Success (average reward) by group, spread across seeds <- average_reward" in dry.stdout
    assert "a plumbing-check banner, links to 4 runs" in dry.stdout

    never = subprocess.run([*command, "--no-upload"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert never.returncode == 1
    assert never.stderr.count("\n") == 1 and "4 of the sweep's 4 runs were never uploaded" in never.stderr


def test_no_login_is_one_line_and_creates_nothing(
    sweep: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate_wandb(tmp_path, monkeypatch)
    for run in find_runs(sweep):  # as `wandb sync` leaves them
        run.path.with_suffix(".wandb.synced").touch()
    try:
        done = run_module("harness.sync_wandb", str(sweep), "--dashboard", "--no-upload", timeout=120)
    finally:
        for run in find_runs(sweep):
            run.path.with_suffix(".wandb.synced").unlink()
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("error: not logged in to W&B") and "`wandb login`" in done.stderr
    assert done.stderr.count("\n") == 1


def test_every_logged_conversation_metric_has_one_name(sweep: Path) -> None:
    """The logger builds its rows from `keys.Conversation`: a renamed metric renames the panels too."""
    record = read_jsonl(next(sweep.rglob("conversations.jsonl")))[0]
    priced = {Conversation.AGENT_COST_USD, Conversation.USER_COST_USD, Conversation.COST_USD}
    assert set(conversation_metrics(record)) | {Conversation.STARTED_AT} == set(Conversation) - priced
    sections = dashboard_sections(read_sweep_runs(sweep))
    shown = {m for s in sections for p in s.panels for m in p.metrics}
    assert Conversation.USER_WORDS_PER_TURN.key in shown
