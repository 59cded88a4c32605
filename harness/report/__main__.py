"""`python -m harness.report SWEEP_DIR`: tables, figures and a report from a sweep's outputs."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from harness.report.build import ReportError, Settings, build_report
from harness.store import JobFile, SweepDir, read_model_or_none


def _number(value: float, spec: str) -> str:
    return format(value, spec) if math.isfinite(value) else "n/a"


def _keys(value: str) -> tuple[str, ...]:
    return tuple(key.strip() for key in value.split(",") if key.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.report", description=__doc__)
    parser.add_argument("sweep_dir", type=Path, help="a sweep directory, e.g. outputs/sweeps/<name>")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: SWEEP_DIR/report)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and permutations")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--permutations", type=int, default=20000, help="sign-flip permutations")
    parser.add_argument("--no-mixed", action="store_true", help="skip the conditional logit model")
    parser.add_argument(
        "--allow-differing",
        type=_keys,
        default=(),
        metavar="KEYS",
        help="comma-separated settings (e.g. backend) that compared jobs may differ in besides the variant",
    )
    parser.add_argument(
        "--wandb-project", default=None, help="also log the report as a W&B run in this project"
    )
    parser.add_argument("--wandb-entity", default=None, help="W&B entity (team or user) of that project")
    args = parser.parse_args(argv)
    settings = Settings(args.seed, args.resamples, not args.no_mixed, args.permutations, args.allow_differing)
    try:
        report = build_report(args.sweep_dir, args.out, settings)
    except ReportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if report.test_backends:
        backends = ", ".join(report.test_backends)
        print(f"PLUMBING CHECK (backend {backends}): these numbers test the harness, not a model.")
    jobs = report.tables["jobs"]
    unfinished = jobs[jobs["state"] != "complete"]
    for row in unfinished.itertuples():
        print(f"not complete: {row.job} ({row.state}: {row.detail})")
    for note in report.notes:
        print(note)
    deltas = report.tables["deltas"]
    if deltas.empty:
        print(
            "no comparison: no (model, env, split) has a baseline arm (neutral or control) and another variant"
        )
    for row in deltas[~deltas["refused"].astype(bool)].itertuples() if not deltas.empty else ():
        ci = f" [{row.ci_low:+.3f}, {row.ci_high:+.3f}]" if math.isfinite(row.ci_low) else ""
        print(
            f"{row.model}/{row.env}/{row.contrast}: delta {_number(row.delta, '+.3f')}{ci} "
            f"p={_number(row.p_value, '.3g')} p_holm={_number(row.p_holm, '.3g')} ({row.pairs} pairs): {row.verdict}"
        )
    print(f"report: {report.markdown} and {report.html}")
    if args.wandb_project:
        from harness.report.wandb_log import log_report

        group = _sweep_group(args.sweep_dir)
        try:
            run_dir = log_report(report, args.wandb_project, args.wandb_entity, f"report-{group}", group)
        except Exception as error:  # W&B's own errors: no login, no network, a refused project
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            print(
                f"error: the report is written, but W&B could not log it ({first}); run `wandb login`, "
                "or set WANDB_MODE=offline and upload later with `python -m harness.sync_wandb`",
                file=sys.stderr,
            )
            return 1
        print(f"W&B run: {run_dir}")
    return 0


def _sweep_group(sweep_dir: Path) -> str:
    """The W&B group of the sweep's runs: the jobs' `name` (the sweep directory's name otherwise)."""
    names = set()
    for directory in SweepDir(sweep_dir).job_dirs():
        job = read_model_or_none(directory.job_file, JobFile)
        if job is not None and isinstance(job.info.get("job_name"), str):
            names.add(job.info["job_name"])
    return names.pop() if len(names) == 1 else sweep_dir.resolve().name


if __name__ == "__main__":
    sys.exit(main())
