"""`python -m harness`: compose the config with Hydra and run one job per combination."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from harness.errors import HarnessError


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    from harness.app import run

    hydra_cfg = HydraConfig.get()
    output_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        summary = run(cfg, output_dir)
    except HarnessError as error:
        (output_dir / "error.txt").write_text(f"{error}\n")
        if hydra_cfg.mode == RunMode.MULTIRUN:
            raise  # the launcher records this job as failed; the others go on
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    return summary["average_reward"]


if __name__ == "__main__":
    main()
