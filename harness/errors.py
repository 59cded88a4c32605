"""Errors the harness raises on purpose, each with a message meant for the user."""

from __future__ import annotations

from enum import IntEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ExitCode(IntEnum):
    """What `python -m harness` (and `harness.sweep`) exit with: documented in docs/slurm.md."""

    OK = 0
    FAILED = 1
    """An unexpected error: the traceback is in the job's `error.txt`."""
    CONFIG = 2
    """A problem the user can fix (config, missing dependency, unreadable file): one line on stderr."""
    INCOMPLETE = 3
    """The job ran, but conversations are left unfinished by infrastructure errors."""
    ENGINE_DIED = 4
    """The in-process model engine died (GPU OOM, NCCL, Xid): rerun or requeue; nothing is lost."""


class HarnessError(Exception):
    """A problem the user can fix (bad config, missing dependency); printed as one line."""


class ConfigError(HarnessError):
    pass


class MissingDependencyError(HarnessError):
    pass


class BackendUnavailable(Exception):
    """The model backend could not answer after its retries: an infrastructure failure."""


class UserSimulatorError(Exception):
    """The simulated user produced something the harness cannot use."""


class ModelInputRejected(Exception):
    """The model cannot take this conversation (its chat template or tokenizer refuses a message):
    the model's failure, recorded on the conversation and not redone on resume."""


class ContextWindowExceeded(ModelInputRejected):
    """The conversation no longer fits the model's context window: the model's failure, not infra."""


class EngineDied(Exception):
    """The in-process model engine died (GPU OOM, NCCL timeout, Xid). Every later call would fail,
    so the job stops with `ExitCode.ENGINE_DIED` instead of recording conversations as failed."""


def validated(schema: type[M], data: Any, prefix: str = "", hint: str = "") -> M:
    """`data` validated as `schema`, or a ConfigError naming the first bad key (`prefix` + its path)."""
    try:
        return schema.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        key = prefix + ".".join(str(part) for part in first["loc"])
        raise ConfigError(
            f"config error at `{key}`: {first['msg']} (got {first.get('input')!r}){hint}"
        ) from None
