"""The first thing to run on a GPU node: one model preset, a handful of real conversations.

    python benchmarks/gpu_smoke.py model=qwen2.5-7b [any other override, e.g. env=airline concurrency=64]
    python benchmarks/gpu_smoke.py --tiny-cpu        # the tiny random model on vLLM's CPU build

It starts the engine from the preset exactly as a job does (`backend=vllm`), reads its KV-cache
size, caps the concurrency to it as a job does (`env.kv_tokens`), and runs enough conversations to
keep the KV cache full: two waves at that concurrency (tasks repeated as trials where the split has
too few; `env.tasks=`/`env.task_range=` on the command line choose them instead). It prints the GPU
memory in use, the engine's start time, the KV-cache size and the cap, conversations/s, generated
tokens/s, the prefix-cache hit rate, the peak KV-cache use and the preemptions, the conversations'
endings, and the engine settings in force. A node
that is misconfigured (wrong GPU count, too little memory, a chat template that cannot render
tools, a tool parser that reads nothing) shows here in a minute, not after a night.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hydra import compose, initialize_config_dir  # noqa: E402

from harness.backends.vllm import VLLMBackend  # noqa: E402
from harness.job.app import build_job  # noqa: E402
from harness.job.capacity import concurrency_cap  # noqa: E402
from harness.job.runner import run_job  # noqa: E402

DEFAULTS = [
    "backend=vllm",
    "name=gpu-smoke",
    "env.max_steps=10",
    "progress=false",
    "wandb.mode=disabled",
]
"""Before the command line's overrides, which replace them."""


def vllm_counters() -> dict[str, float]:
    """vLLM's Prometheus counters and gauges this script reports, summed over engines."""
    from prometheus_client import REGISTRY

    wanted = {
        "vllm:prefix_cache_hits_total",
        "vllm:prefix_cache_queries_total",
        "vllm:num_preemptions_total",
        "vllm:kv_cache_usage_perc",
    }
    values: Counter[str] = Counter()
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            if sample.name in wanted:
                values[sample.name] += sample.value
    return dict(values)


def gpu_memory() -> list[str]:
    """Memory in use on each visible NVIDIA GPU (the engine runs in its own processes)."""
    try:
        import pynvml
    except ImportError:
        return ["n/a (pynvml, from nvidia-ml-py, is not installed)"]
    try:
        pynvml.nvmlInit()
    except Exception as error:  # no NVIDIA driver: a CPU build or another accelerator
        return [f"n/a (no NVIDIA GPU: {error})"]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    indices = (
        [int(i) for i in visible.split(",") if i.strip().isdigit()]
        if visible
        else range(pynvml.nvmlDeviceGetCount())
    )
    lines = []
    for index in indices:
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        info = pynvml.nvmlDeviceGetMemoryInfo(handle)
        lines.append(
            f"GPU {index} {pynvml.nvmlDeviceGetName(handle)}: {info.used / 2**30:.1f} of "
            f"{info.total / 2**30:.1f} GiB in use"
        )
    return lines


WAVES = 2
"""Conversations run: this many times the concurrency in force, so the KV cache stays full."""


def fill(job: Any, conversations: int) -> None:
    """Give `job` `conversations` (task, trial) pairs: its tasks in order, repeated as trials."""
    tasks = len(job.domain.tasks)
    job.task_ids = list(range(min(conversations, tasks)))
    job.trials = -(-conversations // len(job.task_ids))


async def sample_kv_usage(peak: list[float]) -> None:
    """Keep the highest KV-cache use vLLM's gauge shows while the job runs (it is ~0 at the end)."""
    while True:
        peak[0] = max(peak[0], vllm_counters().get("vllm:kv_cache_usage_perc", 0.0))
        await asyncio.sleep(0.25)


async def smoke(overrides: list[str], output_dir: Path) -> dict[str, Any]:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[*DEFAULTS, *overrides])
    job = build_job(cfg, output_dir)
    backend = job.backend
    if not isinstance(backend, VLLMBackend):
        raise SystemExit("error: gpu_smoke runs backend=vllm only")
    chosen = any(o.split("=")[0].lstrip("+") in ("env.tasks", "env.task_range") for o in overrides)
    configured = job.concurrency
    started = time.perf_counter()
    # the job enters them again and shares the running engines
    async with backend, job.user_backend or backend as user:
        start_s = time.perf_counter() - started
        in_force, cap = concurrency_cap(configured, job.kv_tokens, backend, user, job.domain.name)
        kv_cache_tokens = backend.kv_cache_tokens
        if not chosen:
            fill(job, WAVES * in_force)
        before = vllm_counters()
        peak = [0.0]
        sampler = asyncio.create_task(sample_kv_usage(peak))
        started = time.perf_counter()
        try:
            await run_job(job)
        finally:
            sampler.cancel()
        wall = time.perf_counter() - started
        after = vllm_counters()
        memory = gpu_memory()
        settings = backend.settings
    records = [json.loads(line) for line in (output_dir / "conversations.jsonl").open()]
    calls = [call for record in records for call in record["calls"]]
    generated = sum(call.get("completion_tokens") or 0 for call in calls)
    hits = after.get("vllm:prefix_cache_hits_total", 0) - before.get("vllm:prefix_cache_hits_total", 0)
    queries = after.get("vllm:prefix_cache_queries_total", 0) - before.get(
        "vllm:prefix_cache_queries_total", 0
    )
    return {
        "records": records,
        "calls": calls,
        "start_s": start_s,
        "wall_s": wall,
        "generated": generated,
        "hit_rate": hits / queries if queries else None,
        "preemptions": after.get("vllm:num_preemptions_total", 0)
        - before.get("vllm:num_preemptions_total", 0),
        "kv_usage": after.get("vllm:kv_cache_usage_perc"),
        "kv_peak": max(peak[0], after.get("vllm:kv_cache_usage_perc", 0.0)),
        "kv_cache_tokens": kv_cache_tokens,
        "cap": cap,
        "configured": configured,
        "memory": memory,
        "settings": settings,
        "concurrency": job.concurrency,
    }


def report(result: dict[str, Any]) -> str:
    records, calls, wall = result["records"], result["calls"], result["wall_s"]
    endings = Counter(record["termination"] for record in records)
    finishes = Counter(str(call.get("finish_reason")) for call in calls)
    agent_calls = [call for call in calls if call["role"] == "agent"]
    rate, kv_usage = result["hit_rate"], result["kv_usage"]
    cap = result["cap"]
    lines = [
        f"engine start: {result['start_s']:.1f} s",
        *(f"memory: {line}" for line in result["memory"]),
        f"KV cache: {result['kv_cache_tokens'] or 0:,} tokens; concurrency {result['configured']} "
        + (
            f"{'capped to' if cap['capped'] else 'kept at'} {cap['in_force']} ({cap['reason']})"
            if cap
            else "(no env.kv_tokens: not capped)"
        ),
        f"conversations: {len(records)} in {wall:.1f} s at concurrency {result['concurrency']} "
        f"= {len(records) / wall:.2f} conversations/s",
        f"model calls: {len(calls)} ({len(agent_calls)} agent), {result['generated']} tokens generated "
        f"= {result['generated'] / wall:.0f} generated tokens/s",
        f"prefix-cache hit rate: {'n/a' if rate is None else f'{rate:.1%}'}",
        f"KV cache in use: peak {result['kv_peak']:.1%}, at the end "
        f"{'n/a' if kv_usage is None else f'{kv_usage:.1%}'}; preemptions: {result['preemptions']:.0f}"
        + (
            " (the conversations need more KV cache than env.kv_tokens says: lower concurrency= "
            "or raise env.kv_tokens)"
            if result["preemptions"]
            else ""
        ),
        f"endings: {dict(endings)}",
        f"finish reasons: {dict(finishes)}; malformed tool calls: "
        f"{sum(r['counts']['malformed_tool_calls'] for r in records)}, cut off by max_tokens: "
        f"{sum(r['counts'].get('truncated_tool_calls', 0) for r in records)}",
        "settings in force:",
        *(f"  {key}: {value}" for key, value in result["settings"].items()),
    ]
    problems = endings.get("infra_error", 0) + endings.get("harness_error", 0)
    if problems:
        first = next(r["error"] for r in records if r["termination"] in ("infra_error", "harness_error"))
        lines.append(f"PROBLEM: {problems} conversations ended in infra/harness errors; first: {first[:300]}")
    return "\n".join(lines)


def main() -> None:
    overrides = sys.argv[1:]
    if overrides[:1] == ["--tiny-cpu"]:
        from tests.tinymodel import tiny_model, tiny_vllm_overrides

        cpu_sized = [
            "concurrency=16",
            "backend.kv_cache_memory_bytes=67108864",  # 64k tokens of the tiny model: the cap binds
            "env.max_steps=4",
            "agent.sampling.max_tokens=64",
            "user.sampling.max_tokens=32",
        ]
        overrides = [*tiny_vllm_overrides(tiny_model()), *cpu_sized, *overrides[1:]]
    import vllm

    print(
        f"gpu_smoke: {platform.node()}, Python {platform.python_version()}, vllm {vllm.__version__}, "
        f"overrides: {' '.join(overrides)}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="gpu-smoke-") as output:
        print(report(asyncio.run(smoke(overrides, Path(output)))))


if __name__ == "__main__":
    main()
