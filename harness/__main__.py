"""`python -m harness`: compose the config with Hydra and run one job per combination."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from harness.errors import ExitCode, HarnessError
from harness.logs import quiet_libraries
from harness.store import ERROR_FILE


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    from harness.app import run

    hydra_cfg = HydraConfig.get()
    quiet_libraries(hydra_cfg.verbose)
    output_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    (output_dir / ERROR_FILE).unlink(missing_ok=True)
    try:
        summary = run(cfg, output_dir)
    except HarnessError as error:
        (output_dir / ERROR_FILE).write_text(f"{error}\n")
        if multirun:
            raise  # the launcher records this job as failed; the others go on
        print(f"error: {error}", file=sys.stderr)
        sys.exit(ExitCode.CONFIG)
    except Exception as error:
        (output_dir / ERROR_FILE).write_text(f"{type(error).__name__}: {error}\n\n{traceback.format_exc()}")
        raise
    if summary["state"] == "incomplete":
        if not multirun:
            sys.exit(ExitCode.INCOMPLETE)
        from harness.slurm_requeue import requeue_incomplete

        # else the job ends normally: the manifest marks it incomplete and the sweep's exit status says so
        requeue_incomplete(output_dir, cfg.retry.requeues, summary["missing"])
    return summary["average_reward"]


if __name__ == "__main__":
    main()
