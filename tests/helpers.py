"""Shared helpers: compose the real config, point it at the toy domain or τ-bench's, run jobs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from harness.domains.taubench.loader import taubench_available
from harness.job.app import build_job
from harness.job.runner import run_job

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
TOY = ["env.domain._target_=tests.toy_domain.load_toy_domain", "env.name=toy", "progress=false"]


def compose_config(overrides: list[str]) -> DictConfig:
    """The real config from conf/, progress bar and retry passes off, with `overrides`."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=["progress=false", "retry.passes=0", *overrides])


@dataclass(frozen=True)
class DomainCase:
    """A domain for whole-conversation tests on a real model."""

    name: str
    overrides: tuple[str, ...]
    min_prompt_tokens: int  # the agent's prompts hold the wiki and every tool schema: at least this many
    marks: tuple[pytest.MarkDecorator, ...] = ()

    def param(self) -> object:
        """This case as a `pytest.mark.parametrize` value, shown as `[<name>]` in test ids."""
        return pytest.param(self, id=self.name, marks=self.marks)


def conversation_domain() -> DomainCase:
    """τ-bench's retail domain where τ-bench is installed, else the project's toy shop."""
    if taubench_available():
        return DomainCase("retail", ("env=retail",), 1000, (pytest.mark.taubench,))
    return DomainCase("toy", tuple(TOY), 500)


def run_toy_job(out: Path, overrides: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    cfg = compose_config([*TOY, *overrides])
    return asyncio.run(run_job(build_job(cfg, out)))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_module(
    module: str, *args: str, cwd: Path = ROOT, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m <module> <args>` in a fresh interpreter, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def harness_cli(args: list[str], cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run_module("harness", *args, cwd=cwd, timeout=timeout)


def taubench_fields(reward: dict[str, Any]) -> dict[str, Any]:
    """A harness reward as τ-bench gives it: without `r_actions` beside the outputs of an output task (the
    harness's one addition there: whether the database matched too, which fidelity reads)."""
    info = dict(reward["info"])
    if "outputs" in info:
        info.pop("r_actions", None)
    return {**reward, "info": info}


@contextmanager
def local_http_server(
    handler: type[BaseHTTPRequestHandler] = BaseHTTPRequestHandler,
) -> Iterator[ThreadingHTTPServer]:
    """An HTTP server on a free port of 127.0.0.1, serving on its own thread until the block ends."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
