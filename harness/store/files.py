"""Whole-file JSON: written atomically, read back as one object or a clear `DamagedFile`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from harness.errors import HarnessError

M = TypeVar("M", bound=BaseModel)


class DamagedFile(HarnessError):
    """A file the harness wrote that no longer reads back; the message names it and the fix."""


def read_json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`, None when there is no such file, `DamagedFile` when it is not one."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise DamagedFile(f"cannot read {path}: {error.strerror}") from None
    try:
        value = json.loads(data.decode())
    except UnicodeDecodeError:
        raise DamagedFile(f"{path} is damaged (not UTF-8)") from None
    except json.JSONDecodeError as error:
        raise DamagedFile(f"{path} is damaged (not JSON: {error.msg} at line {error.lineno})") from None
    if not isinstance(value, dict):
        raise DamagedFile(f"{path} is damaged (a JSON {type(value).__name__}, not an object)")
    return value


def read_model(path: Path, model: type[M], fix: str = "") -> M | None:
    """`path` as `model`; None when absent, `DamagedFile` (ending in `fix`) when it does not fit."""
    suffix = f": {fix}" if fix else ""
    try:
        value = read_json_object(path)
        return None if value is None else model.model_validate(value)
    except DamagedFile as error:
        raise DamagedFile(f"{error}{suffix}") from None
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise DamagedFile(f"{path} is damaged ({where}: {first['msg']}){suffix}") from None


def read_model_or_none(path: Path, model: type[M]) -> M | None:
    """For files rewritten whole from others (summary, state, manifest): a damaged one counts as absent."""
    try:
        return read_model(path, model)
    except DamagedFile:
        return None


def write_json(path: Path, value: Any) -> None:
    """Write atomically, so a killed job never leaves a truncated file behind."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(value, indent=2, ensure_ascii=False))
    os.replace(tmp, path)
