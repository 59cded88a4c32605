"""Cost from the presets' prices: in summary.json, the W&B run and the report; absent where unpriced."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from harness.job.cost import tokens_cost
from harness.report.build import Settings, build_report
from tests.fake_openai_server import MODEL, REASONING_TOKENS, Step, fake_openai_server
from tests.wandb_support import isolate_wandb, offline_segments, run_job_into

KEY_ENV = "TAU_EMOTION_TEST_KEY"
GPT5_MINI = {"input": 0.25, "cached_input": 0.025, "output": 2.0}
# every fake reply: 100 prompt tokens of which 64 cached, 7 completion tokens
PER_CALL = (36 * 0.25 + 64 * 0.025 + 7 * 2.0) / 1e6


def test_tokens_cost_charges_cached_and_completion_tokens_at_their_prices() -> None:
    assert tokens_cost(GPT5_MINI, 100, 7, 64) == pytest.approx(PER_CALL)
    assert tokens_cost({"input": 1.0, "cached_input": None, "output": 2.0}, 100, 7, 64) == pytest.approx(
        (100 * 1.0 + 7 * 2.0) / 1e6
    )  # no cached price: cached tokens at the input price
    claude = {"input": 3.0, "cached_input": 0.3, "cache_write": 3.75, "output": 15.0}
    # 1000 prompt tokens: 600 read from the cache, 300 written to it, 100 neither
    assert tokens_cost(claude, 1000, 10, 600, 300) == pytest.approx(
        (100 * 3.0 + 600 * 0.3 + 300 * 3.75 + 10 * 15.0) / 1e6
    )
    assert tokens_cost(GPT5_MINI, 100, 7, 64, 36) == pytest.approx(
        (36 * 0.25 + 64 * 0.025 + 7 * 2.0) / 1e6
    )  # no cache-write price: written tokens at the input price
    assert tokens_cost(GPT5_MINI, 0, 0) == 0.0
    assert tokens_cost({"input": None, "cached_input": None, "output": None}, 100, 7) is None
    assert tokens_cost({"input": 1.0, "cached_input": None, "output": None}, 100, 7) is None
    assert tokens_cost(None, 100, 7) is None


def test_priced_preset_costs_in_summary_wandb_and_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("openai")
    isolate_wandb(tmp_path, monkeypatch)
    monkeypatch.setenv(KEY_ENV, "sk-test")
    job_dir = tmp_path / "sweep" / "job"
    with fake_openai_server([Step(content="Let me check.")], reasoning=True) as server:
        summary = run_job_into(
            job_dir,
            [
                "backend=openai",
                "model=gpt-5-mini",
                f"model.base_url={server.url}",
                f"model.api_model={MODEL}",
                f"model.api_key_env={KEY_ENV}",
                "env.tasks=[0,1,2]",
                "env.max_steps=2",
                "wandb.mode=offline",
            ],
        )
    agent_calls, user_calls = len(server.agent_requests), server.user_requests
    cost = summary["cost"]
    assert cost["agent_usd"] == pytest.approx(agent_calls * PER_CALL)
    assert cost["user_usd"] == pytest.approx(user_calls * PER_CALL)
    assert cost["usd"] == pytest.approx((agent_calls + user_calls) * PER_CALL)
    assert cost["usd_per_conversation"] == pytest.approx(cost["usd"] / 3)
    assert cost["agent_reasoning_tokens"] == agent_calls * REASONING_TOKENS
    assert cost["gpu_hours"] is None and cost["wall_s"] > 0  # an API model holds no GPU
    assert json.loads((job_dir / "summary.json").read_text())["cost"] == cost

    (run,) = offline_segments(job_dir)
    assert run.summary["cost"]["usd"] == pytest.approx(cost["usd"])
    rows = [row for row in run.history if "conversation/task_id" in row]
    assert sum(row["conversation/cost_usd"] for row in rows) == pytest.approx(cost["usd"])
    assert sum(row["conversation/user_cost_usd"] for row in rows) == pytest.approx(cost["user_usd"])

    report = build_report(tmp_path / "sweep", settings=Settings(resamples=20, model=False))
    (row,) = report.tables["cost"].to_dict("records")
    assert row["usd"] == pytest.approx(cost["usd"]) and row["user_usd"] == pytest.approx(cost["user_usd"])
    assert row["usd_per_conversation"] == pytest.approx(cost["usd"] / 3)
    assert "## Cost" in report.markdown.read_text()


def test_cost_is_absent_not_zero_without_prices_and_gpu_hours_follow_the_preset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate_wandb(tmp_path, monkeypatch)
    job_dir = tmp_path / "sweep" / "job"
    summary = run_job_into(job_dir, ["env.tasks=[0,1]", "wandb.mode=offline", "model.gpus=2"])
    cost = summary["cost"]
    assert cost["agent_usd"] is None and cost["user_usd"] is None and cost["usd"] is None
    assert cost["usd_per_conversation"] is None
    assert cost["gpu_hours"] == pytest.approx(2 * cost["wall_s"] / 3600)
    (run,) = offline_segments(job_dir)
    rows = [row for row in run.history if "conversation/task_id" in row]
    assert rows and not any("conversation/cost_usd" in row for row in rows)

    report = build_report(tmp_path / "sweep", settings=Settings(resamples=20, model=False))
    (row,) = report.tables["cost"].to_dict("records")
    assert math.isnan(row["usd"]) and math.isnan(row["agent_usd"])
    assert row["gpu_hours"] == pytest.approx(cost["gpu_hours"])
