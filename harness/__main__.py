"""`python -m harness`: compose the config with Hydra and run one job per combination."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from harness.errors import EngineDied, ExitCode, HarnessError
from harness.requeue import requeue_this_job
from harness.store import ERROR_FILE


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    from harness.app import run

    hydra_cfg = HydraConfig.get()
    output_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    (output_dir / ERROR_FILE).unlink(missing_ok=True)
    try:
        summary = run(cfg, output_dir)
    except EngineDied as error:
        (output_dir / ERROR_FILE).write_text(f"{error}\n")
        requeued = requeue_this_job(int(hydra_cfg.launcher.get("engine_death_requeues", 0)))
        if multirun and requeued is None:
            raise  # a job of a local sweep: recorded as failed, the others go on
        print(f"error: {error}" + (f" ({requeued})" if requeued else ""), file=sys.stderr)
        sys.exit(ExitCode.ENGINE_DIED)
    except HarnessError as error:
        (output_dir / ERROR_FILE).write_text(f"{error}\n")
        if multirun:
            raise  # the launcher records this job as failed; the others go on
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except Exception as error:
        (output_dir / ERROR_FILE).write_text(f"{type(error).__name__}: {error}\n\n{traceback.format_exc()}")
        raise
    return summary["average_reward"]


if __name__ == "__main__":
    main()
