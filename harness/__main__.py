"""`python -m harness`: compose the config with Hydra and run one job per combination."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from harness.cluster.requeue import requeue_incomplete, requeue_this_job
from harness.conf_dir import CONF_DIR
from harness.errors import EngineDied, ExitCode, HarnessError, file_error
from harness.job.guards import check_command_line
from harness.logs import quiet_libraries
from harness.store import ERROR_FILE


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> float | None:
    from harness.job.app import run

    hydra_cfg = HydraConfig.get()
    quiet_libraries(hydra_cfg.verbose)
    output_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        (output_dir / ERROR_FILE).unlink(missing_ok=True)
        summary = run(cfg, output_dir)
    except EngineDied as error:
        _write_error(output_dir, f"{error}\n")
        requeued = requeue_this_job(int(hydra_cfg.launcher.get("engine_death_requeues", 0)), output_dir)
        if multirun and requeued is None:
            raise  # a job of a local sweep: recorded as failed, the others go on
        print(f"error: {error}" + (f" ({requeued})" if requeued else ""), file=sys.stderr)
        sys.exit(ExitCode.ENGINE_DIED)
    except HarnessError as error:
        _write_error(output_dir, f"{error}\n")
        if multirun:
            raise  # the launcher records this job as failed; the others go on
        print(f"error: {error}", file=sys.stderr)
        sys.exit(ExitCode.CONFIG)
    except Exception as error:
        described = file_error(error, output_dir) if isinstance(error, OSError) else None
        first = described[0] if described else f"{type(error).__name__}: {error}"
        _write_error(output_dir, f"{first}\n\n{traceback.format_exc()}")
        if described is None:
            raise
        if multirun:
            raise HarnessError(described[0]) from None
        print(f"error: {described[0]}", file=sys.stderr)
        sys.exit(described[1])
    if summary["state"] == "incomplete":
        if not multirun:
            sys.exit(ExitCode.INCOMPLETE)
        # else the job ends normally: the manifest marks it incomplete and the sweep's exit status says so
        requeue_incomplete(output_dir, cfg.retry.requeues, summary["missing"])
    return summary["average_reward"]


def _write_error(output_dir: Path, text: str) -> None:
    """Write `error.txt` whole or not at all (the disk may be what failed)."""
    tmp = output_dir / f"{ERROR_FILE}.tmp"
    try:
        tmp.write_text(text)
        tmp.replace(output_dir / ERROR_FILE)
    except OSError:
        tmp.unlink(missing_ok=True)


def cli() -> None:
    """`python -m harness` and the `tau-emotion` console script."""
    try:
        check_command_line(sys.argv[1:])  # before Hydra, whose errors would echo a key given here
    except HarnessError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(ExitCode.CONFIG)
    main()


if __name__ == "__main__":
    cli()
