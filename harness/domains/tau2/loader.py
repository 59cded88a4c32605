"""Loads a τ²-bench domain and task split (an optional dependency with data of its own)."""

from __future__ import annotations

import importlib.util
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.extras import install_hint, require

INSTALL_HINT = install_hint("tau2", "env=tau2_retail|tau2_airline|tau2_telecom|tau2_banking")
DATA_FILES = {
    "retail": ("db.json", "policy.md"),
    "airline": ("db.json", "policy.md"),
    "telecom": ("db.toml", "user_db.toml", "main_policy.md", "tech_support_manual.md"),
    "banking_knowledge": ("db.json", "documents", "tasks"),
}
ENV_NAMES = {"banking_knowledge": "tau2_banking"}
"""The harness's env name where it is not `tau2_<τ² domain>`."""
BASE_SPLIT = "base"
"""Every task of a domain: the only split of a domain without `split_tasks.json` (banking_knowledge)."""
SMALL_TELECOM_TASKS = "tasks_small.json"
"""τ²'s telecom `small` split as a file of its own, used where the full `tasks.json` is absent."""


def tau2_available() -> bool:
    return importlib.util.find_spec("tau2") is not None


def data_dir() -> Path:
    """`$TAU2_DATA_DIR/tau2`, checked: τ²'s data is not inside its package."""
    root = os.environ.get("TAU2_DATA_DIR")
    if not root:
        raise ConfigError(
            "TAU2_DATA_DIR is not set: point it at τ²-bench's `data` folder (holding tau2/domains)"
        )
    folder = Path(root) / "tau2"
    if not (folder / "domains").is_dir():
        raise ConfigError(
            f"TAU2_DATA_DIR={root} has no tau2/domains folder: point it at τ²-bench's `data` folder"
        )
    return folder


def _import_tau2() -> Any:
    """τ²'s registry, with its import-time logging silenced and litellm kept offline."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    loguru = require("tau2", "loguru", "τ²-bench")
    loguru.logger.disable("tau2")
    return require("tau2", "tau2.registry", "τ²-bench").registry


def _need(path: Path) -> Path:
    if not path.exists():
        raise ConfigError(
            f"τ²-bench data file {path} is missing (TAU2_DATA_DIR={os.environ.get('TAU2_DATA_DIR')})"
        )
    return path


def splits(name: str) -> dict[str, list[str]]:
    """τ²'s task splits of a domain (`split_tasks.json`): split name -> task ids."""
    folder = data_dir() / "domains" / name
    if name == "banking_knowledge":
        return {BASE_SPLIT: [task.id for task in _import_tau2().get_tasks_loader(name)()]}
    return json.loads(_need(folder / "split_tasks.json").read_text())


def load_tasks(name: str, split: str) -> list[Any]:
    """τ²'s tasks of one split, in τ²'s order."""
    folder = data_dir() / "domains" / name
    registry = _import_tau2()
    wanted = splits(name)
    if split not in wanted:
        raise ConfigError(
            f"env.split={split!r} does not exist for tau2_{name}; choose one of {sorted(wanted)}"
        )
    tasks_file = folder / "tasks.json"
    if name == "telecom" and not tasks_file.is_file() and split == "small":
        from tau2.domains.telecom.environment import load_tasks as load_telecom_tasks

        tasks = load_telecom_tasks(str(_need(folder / SMALL_TELECOM_TASKS)))
        ids = set(wanted[split])
        return [task for task in tasks if task.id in ids]
    if name == "banking_knowledge":
        return list(registry.get_tasks_loader(name)())
    _need(tasks_file)
    return list(registry.get_tasks_loader(name)(split))


@cache
def load_tau2_domain(name: str, split: str = "test", retrieval: str | None = None) -> Any:
    """τ²'s own environment, tools, policy, tasks and evaluator for `name` (retail, airline, telecom,
    banking_knowledge). `retrieval` is banking_knowledge's knowledge-retrieval configuration."""
    if name not in DATA_FILES:
        raise ConfigError(
            f"env.domain.name={name!r} is not a τ²-bench domain; choose one of {sorted(DATA_FILES)}"
        )
    if retrieval is not None and name != "banking_knowledge":
        raise ConfigError(f"env.domain.retrieval is only for tau2_banking, not tau2_{name}: leave it null")
    folder = data_dir() / "domains" / name
    registry = _import_tau2()
    for file in DATA_FILES[name]:
        _need(folder / file)
    tasks = load_tasks(name, split)
    from harness.domains.tau2.domain import Tau2Domain  # imports τ²: after its logging is silenced

    env_kwargs = None
    if name == "banking_knowledge":
        from harness.domains.tau2.retrieval import banking_env_kwargs, check_retrieval

        env_kwargs = banking_env_kwargs(check_retrieval(retrieval))
    return Tau2Domain(
        name=name,
        split=split,
        tasks=tasks,
        constructor=registry.get_env_constructor(name),
        env_name=ENV_NAMES.get(name, f"tau2_{name}"),
        env_kwargs=env_kwargs,
    )
