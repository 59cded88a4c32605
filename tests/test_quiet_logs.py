"""What `python -m harness` prints: a 40-conversation API job stays under 10 lines by default."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.logs import VLLM_LEVEL_ENV, quiet_libraries, verbose_loggers
from tests.fake_openai_server import MODEL, Step, fake_openai_server
from tests.helpers import ROOT, TOY

pytest.importorskip("openai", reason="backend=openai needs `pip install -e '.[openai]'`")

KEY_ENV = "TAU_EMOTION_TEST_KEY"


def run_cli(url: str, out: Path, extra: list[str]) -> str:
    """40 conversations (5 toy tasks x 8 trials) on the fake server; stdout + stderr as a terminal shows them."""
    command = [
        sys.executable, "-m", "harness", "backend=openai", "model=gpt-4o-mini", f"model.base_url={url}",
        f"model.api_model={MODEL}", f"model.api_key_env={KEY_ENV}", *TOY, "env.task_range=[0,5]",
        "env.trials=8", "env.max_steps=2", "progress=true", "wandb.mode=disabled", f"hydra.run.dir={out}", *extra,
    ]  # fmt: skip
    env = {**os.environ, KEY_ENV: "sk-test", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    # bytes, so the progress bar's carriage returns stay on one line as on a terminal
    return (done.stdout + done.stderr).decode()


@pytest.mark.slow
def test_a_40_conversation_api_job_prints_under_10_lines(tmp_path: Path) -> None:
    with fake_openai_server([Step(content="Let me check.")]) as server:
        quiet = run_cli(server.url, tmp_path / "quiet", [])
        verbose = run_cli(server.url, tmp_path / "verbose", ["hydra.verbose=true"])
    assert server.user_requests >= 2 * 40
    assert quiet.count("\n") < 10, quiet
    assert "HTTP Request" not in quiet
    assert "average reward 0.0000 over 40 scored conversations" in quiet  # the harness's own line stays
    assert verbose.count("HTTP Request: POST") >= 40 * 2  # hydra.verbose brings the client's lines back


def test_verbose_names_are_spared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VLLM_LEVEL_ENV, raising=False)
    loggers = [logging.getLogger(), logging.getLogger("harness"), logging.getLogger("httpx2")]
    saved = [logger.level for logger in loggers]
    try:
        for logger, level in zip(loggers, [logging.INFO, logging.NOTSET, logging.DEBUG], strict=True):
            logger.setLevel(level)  # the client's DEBUG is what hydra.verbose=[httpx2,vllm] sets
        quiet_libraries(["httpx2", "vllm"])
        assert [logger.level for logger in loggers] == [logging.WARNING, logging.INFO, logging.DEBUG]
    finally:
        for logger, level in zip(loggers, saved, strict=True):
            logger.setLevel(level)
    assert os.environ[VLLM_LEVEL_ENV] == "DEBUG"
    assert verbose_loggers(True) is None and verbose_loggers("root") is None
    assert verbose_loggers(False) == set() and verbose_loggers("harness") == {"harness"}
