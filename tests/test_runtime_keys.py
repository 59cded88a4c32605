"""Backend keys that change how a backend runs, not what it answers, are declared once by the backend
and left out of the job's fingerprint and the judge's hash alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.backends.base import runtime_keys
from harness.backends.openai_compat import OpenAIBackend
from harness.job.app import build_job
from harness.judge.run import JudgeSettings
from harness.store import JobDir
from tests.helpers import TOY, compose_config, run_toy_job


def test_a_runtime_key_changes_neither_the_job_nor_the_judge(tmp_path: Path) -> None:
    run_toy_job(tmp_path, ["backend.delay_s=0.0"])
    fingerprint = json.loads(JobDir(tmp_path).job_file.read_text())["fingerprint"]
    assert "delay_s" not in fingerprint["backend"]
    assert run_toy_job(tmp_path, ["backend.delay_s=0.001"])["conversations"] == 5  # the same job, resumed
    other = build_job(compose_config([*TOY, "backend.delay_s=0.001"]), tmp_path / "other")
    assert other.fingerprint == fingerprint

    def judge_hash(backend: dict[str, object]) -> str:
        return JudgeSettings(sweep_dir=tmp_path, backend=backend, model={"name": "m"}).judge_hash()

    openai = {"_target_": "harness.backends.openai_compat.OpenAIBackend", "base_url": "http://x"}
    assert runtime_keys(openai) == OpenAIBackend.RUNTIME_KEYS and "timeout_s" in OpenAIBackend.RUNTIME_KEYS
    assert judge_hash({**openai, "timeout_s": 5}) == judge_hash({**openai, "timeout_s": 500})
    assert judge_hash({**openai, "base_url": "http://y"}) != judge_hash(openai)


@pytest.mark.parametrize("key", ["timeout_s", "max_retries"])
def test_a_changed_request_setting_is_the_same_job(key: str) -> None:
    base = {"_target_": "harness.backends.openai_compat.OpenAIBackend", "model": "m"}
    from harness.backends.base import comparable_fingerprint

    one = comparable_fingerprint({"backend": {**base, key: 1}, "user": {"backend": {**base, key: 1}}})
    two = comparable_fingerprint({"backend": {**base, key: 2}, "user": {"backend": {**base, key: 3}}})
    assert one == two == {"backend": base, "user": {"backend": base}}
