"""`hydra/launcher=slurm` and `hydra/launcher=local`: see `harness.launchers`."""

from __future__ import annotations

from harness.launchers import PerJobResources


class SlurmLauncher(PerJobResources):
    _EXECUTOR = "slurm"
    refuse_without_gpus = True


class LocalLauncher(PerJobResources):
    _EXECUTOR = "local"
