"""Mirrors a finished report into one W&B run (job_type "report"): its tables, figures and deltas."""

from __future__ import annotations

from pathlib import Path

from harness.report.build import Report


def log_report(report: Report, project: str, entity: str | None, name: str, group: str) -> Path:
    """Log the report into the sweep's group and return the run's local directory.

    W&B's own settings (WANDB_MODE...) apply; `harness.sync_wandb --dashboard` finds the run in the
    sweep directory and puts its figures and tables into the study's W&B Report.
    """
    import wandb

    run = wandb.init(
        project=project,
        entity=entity,
        name=name,
        group=group,
        job_type="report",
        dir=str(report.directory),
        config={"test_backends": report.test_backends, "report": str(report.html)},
    )
    try:
        payload: dict[str, object] = {
            key: wandb.Table(dataframe=table.astype(object).where(table.notna(), None))
            for key, table in report.tables.items()
            if not table.empty
        }
        payload.update({path.stem: wandb.Image(str(path)) for path in report.figures})
        run.log(payload)
        deltas = report.tables["deltas"]
        for row in deltas[~deltas["refused"].astype(bool)].itertuples() if not deltas.empty else ():
            prefix = f"{row.model}/{row.env}/{row.condition}-{row.baseline}"
            run.summary[f"delta/{prefix}"] = row.delta
            run.summary[f"p_holm/{prefix}"] = row.p_holm
        run.summary["plumbing_check"] = bool(report.test_backends)
        directory = Path(run.dir).parent
    finally:
        run.finish()
    return directory
