"""`python -m harness.judge SWEEP_DIR [overrides]`: judge every simulated user of a sweep (conf/judge.yaml)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from harness.conf_dir import CONF_DIR
from harness.errors import ExitCode, HarnessError

OVERRIDE = re.compile(r"[+~]{0,2}[A-Za-z_][\w.@/-]*=")
"""A Hydra override (`key=value`, `+key=`, `~key=`), as opposed to the sweep directory."""


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="judge")
def main(cfg: DictConfig) -> int:
    from harness.judge.app import run

    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        code = run(cfg)
    except HarnessError as error:
        if multirun:
            raise  # the launcher records the job as failed, with this message
        print(f"error: {error}", file=sys.stderr)
        sys.exit(ExitCode.CONFIG)
    if code != ExitCode.OK and not multirun:
        sys.exit(code)
    return int(code)


def cli() -> None:
    """Takes the sweep directory as the first argument, as `sweep_dir=...` for Hydra."""
    from harness.judge.app import sweep_dir_override

    args = sys.argv[1:]
    if args and not args[0].startswith("-") and (Path(args[0]).exists() or not OVERRIDE.match(args[0])):
        sys.argv[1:] = [*args[1:], sweep_dir_override(args[0])]  # after any flag such as -m
    asking_help = {"-h", "--help", "--hydra-help", "--info"} & set(sys.argv[1:])
    if not asking_help and not any(arg.startswith("sweep_dir=") for arg in sys.argv[1:]):
        print(
            "error: give the sweep to judge: python -m harness.judge SWEEP_DIR [overrides]", file=sys.stderr
        )
        sys.exit(ExitCode.CONFIG)
    main()


if __name__ == "__main__":
    cli()
