"""Hydra plugins of tau-emotion (Hydra loads launchers only from the `hydra_plugins` package)."""
