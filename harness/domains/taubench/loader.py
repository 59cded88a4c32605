"""Loads τ-bench's retail and airline domains (an optional dependency)."""

from __future__ import annotations

import importlib
import importlib.util
import os
from functools import cache

from harness.domains.taubench.domain import TauBenchDomain
from harness.errors import ConfigError, MissingDependencyError
from harness.extras import TAU_BENCH_COMMIT as TAU_BENCH_COMMIT  # re-exported
from harness.extras import install_hint

INSTALL_HINT = install_hint("tau", "env=retail|airline")
TASK_LISTS = {
    ("retail", "test"): ("tasks_test", "TASKS_TEST"),
    ("retail", "train"): ("tasks_train", "TASKS_TRAIN"),
    ("retail", "dev"): ("tasks_dev", "TASKS_DEV"),
    ("airline", "test"): ("tasks_test", "TASKS"),
}
SPLITS = {"retail": ("test", "train", "dev"), "airline": ("test",)}


def taubench_available() -> bool:
    return importlib.util.find_spec("tau_bench") is not None


@cache
def load_taubench_domain(name: str, split: str = "test") -> TauBenchDomain:
    """τ-bench's own tools, data, tasks and wiki for `name` ("retail" or "airline")."""
    if name not in SPLITS:
        raise ConfigError(f"env.domain.name={name!r} is not a τ-bench domain; choose one of {sorted(SPLITS)}")
    if split not in SPLITS[name]:
        raise ConfigError(
            f"env.split={split!r} does not exist for {name}; choose one of {list(SPLITS[name])}"
        )
    # litellm, imported by tau_bench.envs, fetches a price table from the internet unless told not to.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    module, attribute = TASK_LISTS[(name, split)]
    try:
        package = f"tau_bench.envs.{name}"
        data_module = importlib.import_module(f"{package}.data")
        tools_module = importlib.import_module(f"{package}.tools")
        wiki = importlib.import_module(f"{package}.wiki").WIKI
        tasks = getattr(importlib.import_module(f"{package}.{module}"), attribute)
    except ImportError as error:
        if error.name and error.name.startswith("tau_bench"):
            raise MissingDependencyError(INSTALL_HINT) from error
        raise
    return TauBenchDomain(
        name=name,
        split=split,
        tools=tools_module.ALL_TOOLS,
        tasks=tasks,
        wiki=wiki,
        data_load_func=data_module.load_data,
        terminate_tools=("transfer_to_human_agents",),
    )
