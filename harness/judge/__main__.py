"""`python -m harness.judge SWEEP_DIR [overrides]`: judge every simulated user of a sweep (conf/judge.yaml)."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from harness.errors import ExitCode, HarnessError


@hydra.main(version_base="1.3", config_path="../../conf", config_name="judge")
def main(cfg: DictConfig) -> int:
    from harness.judge.app import run

    try:
        code = run(cfg)
    except HarnessError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(ExitCode.CONFIG)
    if code != ExitCode.OK:
        sys.exit(code)
    return int(code)


def cli() -> None:
    from harness.judge.app import sweep_dir_override

    args = sys.argv[1:]
    if args and "=" not in args[0] and not args[0].startswith("-"):
        sys.argv[1:] = [sweep_dir_override(args[0]), *args[1:]]
    main()


if __name__ == "__main__":
    cli()
