"""`python -m harness.view SWEEP_DIR|JOB_DIR [--open] [--out DIR]`: write the conversation viewer."""

from __future__ import annotations

import argparse
import sys
import webbrowser
from pathlib import Path

from harness.errors import ExitCode
from harness.view import VIEWER_DIR, build_viewer, load

SKIPPED_SHOWN = 10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.view", description=__doc__)
    parser.add_argument("directory", type=Path, help="a sweep directory (outputs/sweeps/<name>) or one job's")
    parser.add_argument(
        "--out", type=Path, default=None, help=f"where to write (default: DIRECTORY/{VIEWER_DIR})"
    )
    parser.add_argument("--open", action="store_true", help="open the viewer in the default browser")
    args = parser.parse_args(argv)
    if not args.directory.is_dir():
        print(f"error: {args.directory} is not a directory", file=sys.stderr)
        return ExitCode.CONFIG
    loaded = load(args.directory)
    if not loaded.conversations:
        skipped = f", {len(loaded.skipped)} unreadable lines" if loaded.skipped else ""
        print(
            f"no conversations in {args.directory} ({len(loaded.jobs)} job directories{skipped})",
            file=sys.stderr,
        )
        return ExitCode.CONFIG
    try:
        page = build_viewer(loaded, args.out)
    except ImportError as error:
        print(f"error: the viewer needs {error.name}: pip install -e '.[report]'", file=sys.stderr)
        return ExitCode.CONFIG
    except OSError as error:
        print(f"error: could not write the viewer: {error}", file=sys.stderr)
        return ExitCode.CONFIG
    for line in loaded.skipped[:SKIPPED_SHOWN]:
        where = f"{line.path}:{line.line}" if line.line else line.path
        print(f"skipped {where}: {line.reason}", file=sys.stderr)
    if len(loaded.skipped) > SKIPPED_SHOWN:
        print(
            f"skipped {len(loaded.skipped) - SKIPPED_SHOWN} more lines (the viewer lists them all)",
            file=sys.stderr,
        )
    print(f"viewer: {page} ({loaded.conversations} conversations in {len(loaded.jobs)} jobs)")
    if args.open:
        webbrowser.open(page.resolve().as_uri())
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
