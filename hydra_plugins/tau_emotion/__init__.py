"""tau-emotion's SLURM launcher, registered with Hydra (Hydra finds launchers under `hydra_plugins`).

The work is done in `harness.slurm_launcher`; this subclass only gives it a name Hydra accepts.
"""

try:
    from harness.slurm_launcher import SlurmLauncher as _SlurmLauncher
except ImportError:  # the `slurm` extra (hydra-submitit-launcher) is not installed
    pass
else:

    class SlurmLauncher(_SlurmLauncher):
        """`hydra/launcher=slurm`: hydra-submitit-launcher's, + impossible-request check and pending reasons."""
