"""Upload a finished sweep's offline W&B runs: `python -m harness.sync_wandb outputs/sweeps/<name>`.

Runs `wandb sync` once over every offline run directory under the path, so the segments of a
resumed job (one directory per attempt, the same run id) go up in order, into one run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from harness.tracking.wandb_files import OfflineRun, WandbFileError, find_runs

APP_URL = "https://wandb.ai"


def sync_command(run_dirs: list[Path], dry_run: bool, project: str | None, entity: str | None) -> list[str]:
    command = [sys.executable, "-m", "wandb", "sync", "--include-synced"]
    if dry_run:
        command.append("--dry-run")
    if project:
        command += ["--project", project]
    if entity:
        command += ["--entity", entity]
    return [*command, *(str(path) for path in run_dirs)]


def run_url(run: OfflineRun, project: str | None, entity: str | None) -> str:
    base = os.environ.get("WANDB_APP_URL", APP_URL).rstrip("/")
    return f"{base}/{entity or run.entity or '<your entity>'}/{project or run.project}/runs/{run.run_id}"


def job_dir_of(run: OfflineRun) -> Path:
    """`<job dir>/wandb/offline-run-.../run-<id>.wandb` -> `<job dir>`."""
    return run.path.parent.parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.sync_wandb", description=__doc__.splitlines()[0])
    parser.add_argument(
        "path", type=Path, help="a sweep directory (outputs/sweeps/<name>), or any folder above job dirs"
    )
    parser.add_argument("--dry-run", action="store_true", help="list what would be uploaded, upload nothing")
    parser.add_argument("--project", help="upload into this project instead of the one in the runs")
    parser.add_argument("--entity", help="upload into this entity instead of the one in the runs")
    args = parser.parse_args(argv)

    if not args.path.is_dir():
        print(f"error: {args.path} is not a directory", file=sys.stderr)
        return 2
    try:
        runs = find_runs(args.path)
    except WandbFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not runs:
        print(
            f"error: no offline W&B runs under {args.path} (was the sweep run with wandb.mode=offline?)",
            file=sys.stderr,
        )
        return 1

    by_id: dict[str, list[OfflineRun]] = defaultdict(list)
    for run in runs:
        by_id[run.run_id].append(run)
    run_dirs = [run.run_dir for run in runs]
    done = subprocess.run(sync_command(run_dirs, args.dry_run, args.project, args.entity), check=False)
    if done.returncode != 0:
        print(
            f"error: `wandb sync` failed (exit {done.returncode}); nothing above was marked as uploaded",
            file=sys.stderr,
        )
        return done.returncode

    verb = "would go to" if args.dry_run else "->"
    groups = sorted({(run.entity, run.project, run.group) for run in runs})
    print(f"{len(by_id)} run(s) from {len(runs)} offline run director{'y' if len(runs) == 1 else 'ies'}:")
    for segments in by_id.values():
        last = segments[-1]
        resumed = f" ({len(segments)} segments)" if len(segments) > 1 else ""
        print(f"  {job_dir_of(last)} {verb} {run_url(last, args.project, args.entity)}{resumed}")
    for entity, project, group in groups:
        base = os.environ.get("WANDB_APP_URL", APP_URL).rstrip("/")
        where = f"{base}/{args.entity or entity or '<your entity>'}/{args.project or project}"
        print(f"group {group!r}: {where}/groups/{group}" if group else f"project: {where}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
