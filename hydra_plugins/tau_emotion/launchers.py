"""`hydra/launcher=slurm` and `hydra/launcher=local`: see `harness.cluster.launchers`."""

from __future__ import annotations

try:
    from harness.cluster.launchers import PerJobResources
except ImportError:  # the `slurm` extra (hydra-submitit-launcher) is not installed
    pass
else:

    class SlurmLauncher(PerJobResources):
        _EXECUTOR = "slurm"
        refuse_without_gpus = True

    class LocalLauncher(PerJobResources):
        _EXECUTOR = "local"
