"""Throughput of `backend=vllm` through the harness: τ-bench retail conversations on the tiny model.

For each concurrency it runs real jobs (config -> build_job -> run_job) on one shared engine
and prints conversations/s, generated tokens/s and the prefix-cache hit rate that vLLM's own
Prometheus counters report. Needs vLLM and τ-bench. Run from the repository root:

    python benchmarks/vllm_engine.py [--concurrency 1 8 32 128] [--max-steps 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.job.app import build, build_job, settings_from  # noqa: E402
from harness.job.runner import run_job  # noqa: E402
from tests.helpers import compose_config  # noqa: E402
from tests.tinymodel import tiny_model, tiny_vllm_overrides  # noqa: E402


def prefix_cache_counters() -> tuple[float, float]:
    """vLLM's cumulative prefix-cache (hits, queries) in tokens, summed over engines."""
    from prometheus_client import REGISTRY

    hits = queries = 0.0
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            if sample.name == "vllm:prefix_cache_hits_total":
                hits += sample.value
            elif sample.name == "vllm:prefix_cache_queries_total":
                queries += sample.value
    return hits, queries


def overrides(model_dir: Path, concurrency: int, max_steps: int) -> list[str]:
    conversations = max(8, 2 * concurrency)
    trials = -(-conversations // 115)
    tasks = -(-conversations // trials)
    return [
        *tiny_vllm_overrides(model_dir),
        "env=retail",
        f"env.task_range=[0,{tasks}]",
        f"env.trials={trials}",
        f"env.max_steps={max_steps}",
        f"concurrency={concurrency}",
        "agent.sampling.max_tokens=32",
        "user.sampling.max_tokens=16",
        "backend.max_num_seqs=256",
    ]


async def measure(levels: list[int], max_steps: int) -> list[dict[str, Any]]:
    model_dir = tiny_model()
    backend = build(settings_from(compose_config(overrides(model_dir, 1, max_steps))).backend)
    rows = []
    async with backend:
        for concurrency in levels:
            await backend.engine.reset_prefix_cache()
            with tempfile.TemporaryDirectory() as output:
                job = build_job(compose_config(overrides(model_dir, concurrency, max_steps)), Path(output))
                job.backend = backend  # one engine for every level: no reload between them
                hits0, queries0 = prefix_cache_counters()
                started = time.perf_counter()
                await run_job(job)
                wall = time.perf_counter() - started
                hits1, queries1 = prefix_cache_counters()
                records = [json.loads(line) for line in (Path(output) / "conversations.jsonl").open()]
            generated = sum(
                r["usage"]["agent_completion_tokens"] + r["usage"]["user_completion_tokens"] for r in records
            )
            rows.append(
                {
                    "concurrency": concurrency,
                    "conversations": len(records),
                    "model_calls": sum(len(r["calls"]) for r in records),
                    "wall_s": wall,
                    "conversations_per_s": len(records) / wall,
                    "generated_tokens_per_s": generated / wall,
                    "prefix_cache_hit_rate": (hits1 - hits0) / (queries1 - queries0)
                    if queries1 > queries0
                    else None,
                    "infra_or_harness_errors": sum(
                        r["termination"] in ("infra_error", "harness_error") for r in records
                    ),
                }
            )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    head = "| concurrency | conversations | model calls | wall s | conversations/s | generated tokens/s | prefix-cache hit rate |"
    lines = [head, "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        rate = "n/a" if r["prefix_cache_hit_rate"] is None else f"{r['prefix_cache_hit_rate']:.1%}"
        lines.append(
            f"| {r['concurrency']} | {r['conversations']} | {r['model_calls']} | {r['wall_s']:.1f} | "
            f"{r['conversations_per_s']:.2f} | {r['generated_tokens_per_s']:.0f} | {rate} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--max-steps", type=int, default=4, help="agent steps per conversation")
    args = parser.parse_args()
    import vllm

    rows = asyncio.run(measure(args.concurrency, args.max_steps))
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC | vllm {vllm.__version__} | {platform.machine()} | "
        f"tiny random Qwen2 (2 layers, hidden 128), float32, enforce_eager, τ-bench retail, "
        f"max_steps={args.max_steps}, agent max_tokens=32, user max_tokens=16"
    )
    print(table(rows))
    if any(r["infra_or_harness_errors"] for r in rows):
        print(
            "warning: some conversations ended in infra/harness errors:",
            [r["infra_or_harness_errors"] for r in rows],
        )


if __name__ == "__main__":
    main()
