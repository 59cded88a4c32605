"""What a job prints: the harness's own lines; other libraries only from WARNING up.

The HTTP client logs one INFO line per model call, vLLM a few dozen per engine start; a study of
thousands of conversations would drown its own messages in them. `hydra.verbose=true` (everything
at DEBUG) or `hydra.verbose=[httpx2,vllm]` (those loggers) brings them back.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any

HARNESS = "harness"
VLLM_LEVEL_ENV = "VLLM_LOGGING_LEVEL"
"""vLLM configures its own logger when imported (a handler of its own, not the root's)."""


def verbose_loggers(verbose: Any) -> set[str] | None:
    """The logger names `hydra.verbose` asks for; None when it asks for every logger."""
    if verbose is True or verbose in ("true", "root", "__root__"):
        return None
    if not verbose:
        return set()
    names = [verbose] if isinstance(verbose, str) else list(verbose)
    return None if {"root", "__root__"} & set(names) else {str(name) for name in names}


def quiet_libraries(verbose: Any = False) -> None:
    """Raise the root logger to WARNING, keep `harness` at INFO, and spare what `verbose` names."""
    names = verbose_loggers(verbose)
    if names is None:
        os.environ.setdefault(VLLM_LEVEL_ENV, "DEBUG")
        return
    logging.getLogger().setLevel(max(logging.getLogger().level, logging.WARNING))
    harness = logging.getLogger(HARNESS)
    if not _named(HARNESS, names):
        harness.setLevel(logging.INFO)
    os.environ.setdefault(VLLM_LEVEL_ENV, "DEBUG" if _named("vllm", names) else "WARNING")


def _named(logger: str, names: Iterable[str]) -> bool:
    return any(logger == name or logger.startswith(f"{name}.") for name in names)
