"""Checks on the config before anything is written: no credentials in it, no name that leaves `outputs/`.

Both run twice: on the command line in `python -m harness` before Hydra starts (Hydra's own
errors would echo an override's value), and on the composed config in the `ConfigGuard` callback
(`conf/config.yaml`), whose `on_run_start`/`on_multirun_start` run before Hydra writes
`.hydra/*.yaml` or any output directory — that one also sees keys put in config files.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from harness.credentials import KEY_SHAPES, is_credential_name, looks_like_key
from harness.errors import ConfigError, ExitCode, file_error

MASK = "***"
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
CHECKED_SECTIONS = ("model", "backend", "user")
"""Where a credential-named key is refused (values shaped like a key are refused anywhere)."""
PATH_NAMES = ("name", "model.name", "variant.name", "env.name", "env.split")
"""Config values that become directory names under `outputs/`."""


def is_variable_name(value: Any) -> bool:
    """`OPENAI_API_KEY`, `my_key`; not `a-b`, nor a long mix of cases and digits (a pasted key)."""
    text = str(value)
    pasted = len(text) >= 24 and all(
        any(test(c) for c in text) for test in (str.islower, str.isupper, str.isdigit)
    )
    return ENV_NAME.fullmatch(text) is not None and not pasted


def _leaves(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}[{index}]")
    else:
        yield path, value


def credential_paths(config: Mapping[Any, Any]) -> list[str]:
    """Dotted paths of the config's credentials: a named key under model/backend/user, a key-shaped
    value anywhere, or an `api_key_env` that holds something other than a variable's name."""
    found = []
    for path, value in _leaves({k: v for k, v in config.items() if k != "hydra"}, ""):
        named = path.split(".")[0] in CHECKED_SECTIONS and is_credential_name(re.sub(r"\[\d+\]$", "", path))
        not_a_variable = path.endswith("api_key_env") and value is not None and not is_variable_name(value)
        if (named and value not in (None, "")) or looks_like_key(value) or not_a_variable:
            found.append(path)
    return found


def credential_error(path: str) -> ConfigError:
    """The one line for a credential at `path`; it never shows the value."""
    section = "user.backend.model" if path.startswith("user.") else "model"
    if path.endswith("api_key_env"):
        return ConfigError(
            f"`{path}` must name an environment variable (letters, digits, `_`) that holds the key, "
            "not the key itself; its value is not shown"
        )
    return ConfigError(
        f"`{path}` looks like a credential: keys never go in the config (it is written to job.json, "
        f".hydra/ and W&B); put the key in an environment variable and name it with "
        f"`{section}.api_key_env=<VARIABLE>`"
    )


def refuse_credentials(config: Mapping[Any, Any]) -> None:
    found = credential_paths(config)
    if found:
        raise credential_error(found[0])


def mask_credentials(value: Any) -> Any:
    """A copy with every credential-named key's value and every key-shaped string replaced by `***`."""
    if isinstance(value, Mapping):
        return {
            key: MASK if is_credential_name(str(key)) and item not in (None, "") else mask_credentials(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_credentials(item) for item in value]
    return KEY_SHAPES.sub(MASK, value) if isinstance(value, str) else value


def mask_argv(argv: list[str]) -> list[str]:
    """The command line with credential overrides' values and key-shaped text masked."""
    masked = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and is_credential_name(key.lstrip("+~").split(".")[-1]) and value:
            arg = f"{key}={MASK}"
        masked.append(KEY_SHAPES.sub(MASK, arg))
    return masked


def path_name_error(key: str, value: Any) -> ConfigError | None:
    """Why `value` cannot name a directory (`/`, `\\`, `..`, empty, NUL), or None when it can."""
    if value is None:  # not set: the schemas say whether it must be
        return None
    text = str(value)
    if text in ("", ".", "..") or any(bad in text for bad in ("/", "\\", "\0")):
        shown = "" if looks_like_key(text) else f" (got {text[:40]!r})"
        return ConfigError(
            f"`{key}` is used as a directory name under outputs/ and cannot be empty, `.` or `..` "
            f"or contain `/` or `\\`{shown}; use letters, digits, `-`, `_` or `.`"
        )
    return None


def refuse_bad_path_names(config: Mapping[Any, Any]) -> None:
    for key in PATH_NAMES:
        value: Any = config
        for part in key.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if (error := path_name_error(key, value)) is not None:
            raise error


def check_command_line(argv: list[str]) -> None:
    """Refuse credentials and bad directory names among the overrides, each value of a sweep included."""
    from hydra._internal.utils import get_args_parser
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    arguments, unknown = get_args_parser().parse_known_args(argv)
    for text in [*(arguments.overrides or []), *(arg for arg in unknown if not arg.startswith("-"))]:
        key = text.partition("=")[0].lstrip("+~")
        if looks_like_key(text) or (
            key.split(".")[0] != "hydra" and is_credential_name(key.split(".")[-1]) and "=" in text
        ):
            raise credential_error(key)
        if key not in PATH_NAMES:
            continue
        try:
            [override] = OverridesParser.create().parse_overrides([text])
        except HydraException:
            continue  # Hydra reports it
        values = override.sweep_string_iterator() if override.is_sweep_override() else [override.value()]
        for value in values:
            if (error := path_name_error(key, value)) is not None:
                raise error


class ConfigGuard(Callback):
    """Refuses a composed config holding a credential or a bad directory name, and an output
    directory that cannot be written, before Hydra writes anything there."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check_or_exit(config)
        _probe_or_exit(config, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check_or_exit(config)
        _probe_or_exit(config, "hydra.sweep.dir")


def probe_writable(directory: Path) -> None:
    """Write a byte in `directory`: an OSError says it cannot hold the job's files.

    The directories it had to create are removed again, so a run that stops later (a config that
    cannot compose) leaves nothing behind.
    """
    created = [path for path in (directory, *directory.parents) if not path.exists()]
    directory.mkdir(parents=True, exist_ok=True)
    probe = directory / f".write-probe-{os.getpid()}"
    try:
        with probe.open("wb") as file:
            file.write(b"\n")
            file.flush()
            os.fsync(file.fileno())
    finally:
        probe.unlink(missing_ok=True)
        for path in created:  # deepest first
            with contextlib.suppress(OSError):
                path.rmdir()


def _probe_or_exit(config: DictConfig, key: str) -> None:
    try:
        directory = Path(str(OmegaConf.select(config, key)))
    except Exception:  # an interpolation Hydra resolves later (`${hydra:...}`): Hydra reports it
        return
    try:
        probe_writable(directory)
    except OSError as error:
        line, code = file_error(OSError(error.errno, error.strerror, str(directory))) or ("", ExitCode.FAILED)
        print(f"error: {line}", file=sys.stderr)
        sys.exit(code)


def _check_or_exit(config: DictConfig) -> None:
    # Hydra turns a callback's exceptions into warnings: exit here, with one line.
    job = OmegaConf.masked_copy(config, [str(key) for key in config if key != "hydra"])
    try:
        resolved = OmegaConf.to_container(job, resolve=True)
    except Exception:  # e.g. a `???` left for a later step: check what is written as it is
        resolved = OmegaConf.to_container(job, resolve=False)
    assert isinstance(resolved, dict)
    try:
        refuse_credentials(resolved)
        refuse_bad_path_names(resolved)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(ExitCode.CONFIG)
