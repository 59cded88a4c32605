"""Errors the harness raises on purpose, each with a message meant for the user."""

from __future__ import annotations

import errno
from enum import IntEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from harness.credentials import is_credential_name, looks_like_key

M = TypeVar("M", bound=BaseModel)


class ExitCode(IntEnum):
    """What `python -m harness` (and `python -m harness.sweep`) exit with: documented in docs/slurm.md."""

    OK = 0
    FAILED = 1
    """An unexpected error: the traceback is in the job's `error.txt`."""
    CONFIG = 2
    """A problem the user can fix (config, missing dependency, unreadable file): one line on stderr."""
    INCOMPLETE = 3
    """The job ran, but conversations are left unfinished by infrastructure errors."""
    ENGINE_DIED = 4
    """The in-process model engine died (GPU OOM, NCCL, Xid): rerun or requeue; nothing is lost."""
    JOBS_FAILED = 64
    """A sweep whose jobs failed exits with 64 + their number (at most 127): `$? - 64` jobs failed."""


def jobs_failed_exit_code(failed: int) -> int:
    """The sweep driver's exit status when `failed` jobs failed."""
    return min(int(ExitCode.JOBS_FAILED) + failed, 127)


class HarnessError(Exception):
    """A problem the user can fix (bad config, missing dependency); printed as one line."""


class ConfigError(HarnessError):
    pass


class MissingDependencyError(HarnessError):
    pass


class RequestRejected(ConfigError):
    """The endpoint refuses the request itself (a parameter, the model, a tool schema).

    Every conversation would fail the same way, so the job stops instead of recording each one.
    """


class BackendUnavailable(Exception):
    """The model backend could not answer after its retries: an infrastructure failure."""


class UserSimulatorError(Exception):
    """The simulated user produced something the harness cannot use."""


class UserCutOff(UserSimulatorError):
    """The simulated user's model was cut off at its token limit before it said anything."""


class ModelInputRejected(Exception):
    """The model cannot take this conversation (its chat template or tokenizer refuses a message):
    the model's failure, recorded on the conversation and not redone on resume."""


class ContextWindowExceeded(ModelInputRejected):
    """The conversation no longer fits the model's context window: the model's failure, not infra."""


class EngineDied(Exception):
    """The in-process model engine died (GPU OOM, NCCL timeout, Xid). Every later call would fail,
    so the job stops with `ExitCode.ENGINE_DIED` instead of recording conversations as failed."""


class StrictModel(BaseModel):
    """A config or file schema in which an unknown key is an error (`validated` names it)."""

    model_config = ConfigDict(extra="forbid")


def validated(schema: type[M], data: Any, prefix: str = "", hint: str = "") -> M:
    """`data` validated as `schema`, or a ConfigError naming the first bad key (`prefix` + its path)."""
    try:
        return schema.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        key = prefix + ".".join(str(part) for part in first["loc"])
        shown = _shown_input(key, first.get("input"))
        raise ConfigError(f"config error at `{key}`: {first['msg']}{shown}{hint}") from None


def _shown_input(key: str, value: Any) -> str:
    """` (got ...)`, unless the key or the value might be a credential."""
    name = key.split(".")[-1]
    if is_credential_name(name) or name == "api_key_env" or looks_like_key(repr(value)):
        return ""
    return f" (got {value!r})"


_USER_FIXABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
_DISK = frozenset({*_USER_FIXABLE, errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


def file_error(error: OSError, where: Any = None) -> tuple[str, ExitCode] | None:
    """One line naming the path and the cause of a file-system error, and the exit code it deserves:
    CONFIG for a place the user cannot write (choose another), FAILED for a full or failing disk.

    `where` names the path when the error does not (a failed `write` says only "No space left");
    None for an OSError that is not about files (a socket, a subprocess).
    """
    path = error.filename or (where if error.errno in _DISK else None)
    if path is None:
        return None
    line = f"cannot write {path}: {error.strerror or type(error).__name__}"
    if error.errno in _USER_FIXABLE:
        return (
            f"{line} (choose a writable place with hydra.run.dir=... or hydra.sweep.dir=...)",
            ExitCode.CONFIG,
        )
    return (
        f"{line} (free space or fix the disk, then rerun: finished conversations are kept)",
        ExitCode.FAILED,
    )
