"""What the harness costs between model calls, against a τ-bench `run.py`-style thread pool.

A fake backend replays the oracle's actions after sleeping a fixed latency per call, so
conversations are real τ-bench conversations that end and score normally. Each
(runner, domain, concurrency) cell runs in its own process, so peak RSS is that cell's own.

    python benchmarks/harness_overhead.py            # full table, a few minutes on 2 cores
    python benchmarks/harness_overhead.py --quick    # smaller cells

Columns: conv/s (conversations per second of wall time), cpu/turn (process CPU per model
call minus the fake backend's own CPU), lag p50/p99 (how late a 10 ms ticker wakes: an
asyncio task for the harness, a thread for the thread pool), MB/conv (peak RSS growth while
conversations run, over the conversations in flight), end s (from the last model call to the
job's return: writing results.json and summary.json).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# HARNESS_SRC points at another checkout's root to measure that harness with this script.
sys.path.insert(0, os.environ.get("HARNESS_SRC", str(ROOT)))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

TICK_S = 0.01
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class CallStats:
    latency_s: float
    prompt_tokens: int
    completion_tokens: int
    jitter: float = 0.0
    calls: int = 0
    fake_cpu_s: float = 0.0
    finished_at: list[float] = field(default_factory=list)
    opened_at: list[float] = field(default_factory=list)
    """When each conversation's first model call was made."""
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def delay(self) -> float:
        """A latency drawn uniformly from latency × (1 ± jitter), as a loaded server would vary."""
        return self.latency_s * (1 + self.jitter * self.rng.uniform(-1, 1))

    def pad(self, text: str | None) -> str | None:
        """Text replies get filler up to `completion_tokens` (4 characters a token)."""
        if not text:
            return text
        missing = self.completion_tokens * 4 - len(text)
        return text if missing <= 0 else f"{text} {'lorem ipsum ' * (missing // 12)}".rstrip()


def run_sync(coroutine: Any) -> Any:
    """Drive a coroutine that never awaits (the oracle's `chat`) without an event loop."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise RuntimeError("coroutine awaited")


def control_variant() -> Any:
    import yaml

    from harness.episode.variants import Variant

    return Variant(**yaml.safe_load((ROOT / "conf/variant/control.yaml").read_text()))


def conversation_keys(task_count: int, conversations: int) -> tuple[list[int], int]:
    if conversations <= task_count:
        return list(range(conversations)), 1
    return list(range(task_count)), math.ceil(conversations / task_count)


# ---------------------------------------------------------------- the harness (asyncio) --


def harness_cell(env: str, concurrency: int, conversations: int, stats: CallStats) -> dict[str, Any]:
    from harness.backends.base import ChatModel, ConversationSpec, SharedModelBackend
    from harness.backends.oracle import OracleBackend
    from harness.domains.taubench.loader import load_taubench_domain
    from harness.episode.types import Reply
    from harness.job.runner import Job, run_job

    class FakeModel:
        def __init__(self, inner: ChatModel, opens: bool) -> None:
            self.inner = inner
            self.opens = opens

        async def chat(self, messages: Any, tools: Any, sampling: Any) -> Reply:
            if self.opens:
                self.opens = False
                stats.opened_at.append(time.perf_counter())
            started = time.process_time()
            reply = await self.inner.chat(messages, tools, sampling)
            reply.content = stats.pad(reply.content)
            reply.prompt_tokens, reply.completion_tokens = stats.prompt_tokens, stats.completion_tokens
            reply.latency_s = stats.latency_s
            stats.fake_cpu_s += time.process_time() - started
            stats.calls += 1
            await asyncio.sleep(stats.delay())
            stats.finished_at.append(time.perf_counter())
            return reply

    class FakeBackend(SharedModelBackend):
        name = "fake"
        plumbing_check = True

        def __init__(self) -> None:
            self.oracle = OracleBackend()

        def model_for(self, role: Any, conversation: ConversationSpec) -> ChatModel:
            return FakeModel(self.oracle.model_for(role, conversation), opens=role == "user")

    domain = load_taubench_domain(env)
    # One-off, per-process work (loading the database, hash caches) is not per-conversation work.
    if hasattr(domain, "prepare"):
        domain.prepare()
    else:
        domain.fresh_data()
    variant = control_variant()
    task_ids, trials = conversation_keys(len(domain.tasks), conversations)
    out = Path(tempfile.mkdtemp(prefix="bench-harness-"))

    def job(directory: Path, ids: list[int], trials: int) -> Job:
        return Job(
            domain=domain,
            variant=variant,
            backend=FakeBackend(),
            task_ids=ids,
            trials=trials,
            output_dir=directory,
            concurrency=concurrency,
            fingerprint={"bench": True},
            info={"env": env, "variant": variant.name},
        )

    ticks: list[tuple[float, float, int]] = []

    async def main() -> dict[str, Any]:
        stop = asyncio.Event()

        async def ticker() -> None:
            while not stop.is_set():
                before = time.perf_counter()
                await asyncio.sleep(TICK_S)
                after = time.perf_counter()
                ticks.append((after, after - before - TICK_S, rss_bytes()))

        gc.collect()
        rss_before = rss_bytes()
        tick = asyncio.create_task(ticker())
        cpu0, wall0 = time.process_time(), time.perf_counter()
        summary = await run_job(job(out / "job", task_ids, trials))
        cpu1, wall1 = time.process_time(), time.perf_counter()
        stop.set()
        await tick
        return {
            "summary": summary,
            "cpu": cpu1 - cpu0,
            "wall": wall1 - wall0,
            "start": wall0,
            "rss_before": rss_before,
        }

    try:
        result = asyncio.run(main())
    finally:
        shutil.rmtree(out, ignore_errors=True)
    summary = result["summary"]
    last_call = max(stats.finished_at)
    lags = [lag for at, lag, _ in ticks if at <= last_call]
    peak = max((rss for at, _, rss in ticks if at <= last_call), default=0)
    return {
        "conversations": summary["conversations"],
        "tail_s": result["start"] + result["wall"] - last_call,
        "tail_lag_max_ms": max((lag for at, lag, _ in ticks if at > last_call), default=0.0) * 1e3,
        "average_reward": summary["average_reward"],
        "wall_s": result["wall"],
        "cpu_s": result["cpu"],
        "fake_cpu_s": stats.fake_cpu_s,
        "calls": stats.calls,
        "lag_p50_ms": percentile(lags, 50) * 1e3,
        "lag_p99_ms": percentile(lags, 99) * 1e3,
        "lag_max_ms": max(lags) * 1e3 if lags else float("nan"),
        "peak_rss_growth": peak - result["rss_before"],
        "in_flight": min(concurrency, len(task_ids) * trials),
        "steady_calls_per_s": steady_rate(stats, result["start"]),
    }


def steady_rate(stats: CallStats, start: float) -> float:
    """Calls finished per second while every slot is busy: after the first call, until the last
    conversation has started (after that, slots empty as conversations run out)."""
    if len(stats.finished_at) < 10 or not stats.opened_at:
        return float("nan")
    begin = start + stats.latency_s * (1 + stats.jitter)
    end = max(stats.opened_at)
    inside = sum(1 for t in stats.finished_at if begin <= t <= end)
    return inside / (end - begin) if end - begin > 1 else float("nan")


# ------------------------------------------------ a τ-bench run.py-style thread pool --


def threadpool_cell(env: str, concurrency: int, conversations: int, stats: CallStats) -> dict[str, Any]:
    """τ-bench's `run.py` shape: a new env per task, blocking calls, results file rewritten per task."""
    from tau_bench.envs import get_env
    from tau_bench.types import RESPOND_ACTION_NAME, Action, EnvRunResult

    from harness.backends.base import ConversationSpec
    from harness.domains.roles import roles_for
    from harness.domains.taubench.oracle import OracleAgent, ScriptedUser
    from harness.episode.user import AGENT_GREETING

    variant = control_variant()
    lock = threading.Lock()
    fake_cpu: list[float] = []
    out = Path(tempfile.mkdtemp(prefix="bench-threadpool-"))
    ckpt_path = out / "results.json"

    def fake_call(model: Any, messages: list[dict[str, Any]]) -> Any:
        started = time.thread_time()
        reply = run_sync(model.chat(messages, None, None))
        reply.content = stats.pad(reply.content)
        fake_cpu.append(time.thread_time() - started)
        time.sleep(stats.delay())
        stats.finished_at.append(time.perf_counter())
        return reply

    class FakeUser:
        def __init__(self, spec: ConversationSpec) -> None:
            self.model = ScriptedUser(spec)
            self.history: list[dict[str, Any]] = []

        def reset(self, instruction: str | None = None) -> str:
            stats.opened_at.append(time.perf_counter())
            self.history = [{"role": "user", "content": AGENT_GREETING}]
            return self._next()

        def step(self, content: str) -> str:
            self.history.append({"role": "user", "content": content})
            return self._next()

        def _next(self) -> str:
            text = fake_call(self.model, self.history).content
            self.history.append({"role": "assistant", "content": text})
            return text

        def get_total_cost(self) -> float:
            return 0.0

    def solve(idx: int, trial: int) -> EnvRunResult:
        isolated_env = get_env(
            env, user_strategy="human", user_model="fake", task_split="test", task_index=idx
        )
        spec = ConversationSpec(env, idx, trial, 0, variant.name, isolated_env.tasks[idx], variant.opening())
        isolated_env.user = FakeUser(spec)
        agent = OracleAgent(spec, roles_for(env).confirm)
        reset = isolated_env.reset(task_index=idx)
        info = reset.info.model_dump()
        reward = 0.0
        messages = [
            {"role": "system", "content": isolated_env.wiki},
            {"role": "user", "content": reset.observation},
        ]
        for _ in range(30):
            reply = fake_call(agent, messages)
            next_message = reply.to_message()
            if reply.tool_calls:
                call = reply.tool_calls[0]
                action = Action(name=call.name, kwargs=json.loads(call.arguments))
            else:
                action = Action(name=RESPOND_ACTION_NAME, kwargs={"content": reply.content})
            response = isolated_env.step(action)
            reward = response.reward
            info = {**info, **response.info.model_dump()}
            if action.name != RESPOND_ACTION_NAME:
                next_message["tool_calls"] = next_message["tool_calls"][:1]
                messages += [
                    next_message,
                    {
                        "role": "tool",
                        "tool_call_id": call.id,
                        "name": call.name,
                        "content": response.observation,
                    },
                ]
            else:
                messages += [next_message, {"role": "user", "content": response.observation}]
            if response.done:
                break
        result = EnvRunResult(task_id=idx, reward=reward, info=info, traj=messages, trial=trial)
        with lock:
            data = json.loads(ckpt_path.read_text()) if ckpt_path.exists() else []
            ckpt_path.write_text(json.dumps([*data, result.model_dump()], indent=2))
        return result

    task_count = len(
        get_env(env, user_strategy="human", user_model="fake", task_split="test", task_index=0).tasks
    )
    task_ids, trials = conversation_keys(task_count, conversations)
    keys = [(task, trial) for trial in range(trials) for task in task_ids]
    ticks: list[tuple[float, float, int]] = []
    stop = threading.Event()

    def ticker() -> None:
        while not stop.is_set():
            before = time.perf_counter()
            time.sleep(TICK_S)
            after = time.perf_counter()
            ticks.append((after, after - before - TICK_S, rss_bytes()))

    gc.collect()
    rss_before = rss_bytes()
    tick = threading.Thread(target=ticker, daemon=True)
    tick.start()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            results = list(pool.map(lambda key: solve(*key), keys))
    finally:
        cpu1, wall1 = time.process_time(), time.perf_counter()
        stop.set()
        tick.join()
        shutil.rmtree(out, ignore_errors=True)
    last_call = max(stats.finished_at)
    lags = [lag for at, lag, _ in ticks if at <= last_call]
    peak = max((rss for at, _, rss in ticks if at <= last_call), default=0)
    return {
        "conversations": len(results),
        "tail_s": wall1 - last_call,
        "tail_lag_max_ms": max((lag for at, lag, _ in ticks if at > last_call), default=0.0) * 1e3,
        "average_reward": statistics.fmean(r.reward for r in results),
        "wall_s": wall1 - wall0,
        "cpu_s": cpu1 - cpu0,
        "fake_cpu_s": sum(fake_cpu),
        "calls": len(fake_cpu),
        "lag_p50_ms": percentile(lags, 50) * 1e3,
        "lag_p99_ms": percentile(lags, 99) * 1e3,
        "lag_max_ms": max(lags) * 1e3 if lags else float("nan"),
        "peak_rss_growth": peak - rss_before,
        "in_flight": min(concurrency, len(keys)),
        "steady_calls_per_s": steady_rate(stats, wall0),
    }


# ---------------------------------------------------------------- the reward step ------


def reward_cell(env: str, tasks: int) -> dict[str, Any]:
    """Seconds per conversation for the reward step, on a successful and a failing database."""
    from tau_bench.envs import get_env
    from tau_bench.types import Action

    from harness.domains.taubench.loader import load_taubench_domain

    shared = load_taubench_domain(env)
    ids = list(range(0, len(shared.tasks), max(1, len(shared.tasks) // tasks)))[:tasks]
    timings: dict[str, list[float]] = {"taubench": [], "uncached": [], "cached": []}
    for task_id in ids:
        gt = shared.ground_truth_actions(task_id)
        for succeed in (True, False):
            applied = gt if succeed else gt[:-1]
            tau_env = get_env(
                env, user_strategy="human", user_model="fake", task_split="test", task_index=task_id
            )
            tau_env.data = tau_env.data_load_func()
            tau_env.task = tau_env.tasks[task_id]
            for action in applied:
                if action.name not in tau_env.terminate_tools:
                    tau_env.step(Action(name=action.name, kwargs=action.kwargs))
            started = time.perf_counter()
            tau_env.calculate_reward()
            timings["taubench"].append(time.perf_counter() - started)

            shared._gt_hashes.pop(task_id, None)
            for domain, key in ((shared, "uncached"), (shared, "cached")):
                data = workspace(domain)
                for action in applied:
                    if action.name not in domain.terminate_tools:
                        domain.execute(data, action)
                started = time.perf_counter()
                domain.score(task_id, data, [])
                timings[key].append(time.perf_counter() - started)
    return {key: statistics.fmean(values) for key, values in timings.items()}


def workspace(domain: Any) -> Any:
    """The per-conversation database the runner uses (`new_data` where the Domain has it)."""
    return domain.new_data() if hasattr(domain, "new_data") else domain.fresh_data()


# ---------------------------------------------------------------- driver ----------------


def worker(args: argparse.Namespace) -> None:
    stats = CallStats(args.latency, args.prompt_tokens, args.completion_tokens, args.jitter)
    if args.worker == "reward":
        result = reward_cell(args.env, args.tasks)
    elif args.worker == "harness":
        result = harness_cell(args.env, args.concurrency, args.conversations, stats)
    else:
        result = threadpool_cell(args.env, args.concurrency, args.conversations, stats)
    print("RESULT " + json.dumps(result))


def spawn(args: argparse.Namespace, **cell: Any) -> dict[str, Any]:
    command = [sys.executable, __file__, "--latency", str(args.latency), "--jitter", str(args.jitter)]
    command += [
        "--prompt-tokens",
        str(args.prompt_tokens),
        "--completion-tokens",
        str(args.completion_tokens),
    ]
    for key, value in cell.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise SystemExit(f"benchmark cell {cell} failed:\n{done.stderr[-3000:]}")


def row(runner: str, env: str, concurrency: int, r: dict[str, Any]) -> str:
    turns = max(r["calls"], 1)
    harness_cpu = r["cpu_s"] - r["fake_cpu_s"]
    return (
        f"| {runner:<10} | {env:<7} | {concurrency:>4} | {r['conversations']:>5} | {r['average_reward']:.3f} "
        f"| {r['conversations'] / r['wall_s']:>8.1f} | {harness_cpu / turns * 1e3:>7.2f} "
        f"| {r['lag_p50_ms']:>6.1f} | {r['lag_p99_ms']:>7.1f} | {r['peak_rss_growth'] / r['in_flight'] / 2**20:>7.2f} "
        f"| {r['tail_s']:>5.2f} |"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--latency", type=float, default=0.02, help="fake seconds per model call")
    parser.add_argument("--jitter", type=float, default=0.5, help="latency varies by ± this fraction")
    parser.add_argument("--prompt-tokens", type=int, default=2000)
    parser.add_argument("--completion-tokens", type=int, default=60)
    parser.add_argument("--levels", default="1,8,64,256,512", help="harness concurrency levels")
    parser.add_argument("--threadpool-levels", default="1,8,32", help="thread-pool concurrency levels")
    parser.add_argument("--envs", default="retail,airline")
    parser.add_argument(
        "--target-latency", type=float, default=1.0, help="latency of the calls-in-flight check"
    )
    parser.add_argument(
        "--inflight", default="256,512", help="concurrency levels of the calls-in-flight check"
    )
    parser.add_argument(
        "--sections", default="table,inflight,reward", help="which parts to run: table, inflight, reward"
    )
    parser.add_argument("--quick", action="store_true", help="fewer conversations per cell")
    parser.add_argument("--worker", choices=["harness", "threadpool", "reward"], help=argparse.SUPPRESS)
    parser.add_argument("--env", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--conversations", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tasks", type=int, default=8, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return

    scale = 0.5 if args.quick else 1.0
    envs = args.envs.split(",")
    print(
        f"# harness overhead — {time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}; fake latency {args.latency * 1e3:.0f} ms/call, "
        f"{args.prompt_tokens} prompt + {args.completion_tokens} completion tokens"
    )
    sections = set(args.sections.split(","))
    if "table" in sections:
        print_table(args, envs, scale)
    if "inflight" in sections:
        print_inflight(args, envs, scale)
    if "reward" in sections:
        print_reward(args, envs, scale)


def print_table(args: argparse.Namespace, envs: list[str], scale: float) -> None:
    print()
    print(
        "| runner     | env     | conc | convs | reward |   conv/s | cpu/turn ms | lag p50 ms | lag p99 ms | MB/conv | end s |"
    )
    print(
        "|------------|---------|-----:|------:|-------:|---------:|------------:|-----------:|-----------:|--------:|------:|"
    )
    side_by_side: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    threadpool_levels = [int(x) for x in args.threadpool_levels.split(",") if x]
    # the harness also runs at the thread pool's levels, so every thread-pool cell has its twin
    harness_levels = sorted({int(x) for x in args.levels.split(",") if x} | set(threadpool_levels))
    for env in envs:
        for runner, levels in (("harness", harness_levels), ("threadpool", threadpool_levels)):
            for level in levels:
                if runner == "harness":
                    count = max(int(max(2 * level, 16 if level == 1 else 64) * scale), level)
                else:
                    count = max(int(max(level, 8 if level == 1 else 32) * scale), min(level, 8))
                result = spawn(args, worker=runner, env=env, concurrency=level, conversations=count)
                side_by_side.setdefault((env, level), {})[runner] = result
                print(row(runner, env, level, result), flush=True)
    print(
        "(lag percentiles while conversations run; `end s`: from the last model call to the job's return, "
        "i.e. writing results.json and summary.json)"
    )

    print()
    print("Side by side (harness ÷ thread pool, same workload and machine):")
    for (env, level), cell in side_by_side.items():
        if len(cell) == 2:
            h, t = cell["harness"], cell["threadpool"]
            h_cpu = (h["cpu_s"] - h["fake_cpu_s"]) / max(h["calls"], 1)
            t_cpu = (t["cpu_s"] - t["fake_cpu_s"]) / max(t["calls"], 1)
            print(
                f"  {env:<7} conc {level:>3}: conv/s x{(h['conversations'] / h['wall_s']) / (t['conversations'] / t['wall_s']):.1f}, "
                f"CPU/turn {t_cpu / h_cpu:.1f}x less, memory/conv "
                f"{t['peak_rss_growth'] / t['in_flight'] / max(h['peak_rss_growth'] / h['in_flight'], 1):.1f}x less"
            )


def print_inflight(args: argparse.Namespace, envs: list[str], scale: float) -> None:
    print()
    print(
        f"In flight at {args.target_latency:.1f} s ± {args.jitter:.0%} per call (calls/s counted while every slot is busy):"
    )
    target = argparse.Namespace(**{**vars(args), "latency": args.target_latency})
    levels = [int(x) for x in args.inflight.split(",") if x]
    for position, level in enumerate(levels):
        env = envs[position % len(envs)]
        count = max(int(2 * level * scale), level)
        r = spawn(target, worker="harness", env=env, concurrency=level, conversations=count)
        print(
            f"  {env:<7} conc {level}: {r['steady_calls_per_s']:.1f} calls/s (ideal {level / args.target_latency:.0f}, "
            f"target >= {0.8 * level / args.target_latency:.0f}); loop lag p50 {r['lag_p50_ms']:.1f} ms, "
            f"p99 {r['lag_p99_ms']:.1f} ms, max {r['lag_max_ms']:.1f} ms; "
            f"CPU/turn {(r['cpu_s'] - r['fake_cpu_s']) / r['calls'] * 1e3:.2f} ms; "
            f"{r['peak_rss_growth'] / r['in_flight'] / 2**20:.2f} MB/conv; reward {r['average_reward']:.3f}",
            flush=True,
        )


def print_reward(args: argparse.Namespace, envs: list[str], scale: float) -> None:
    print()
    print("Reward step per conversation (ms; mean over a successful and a failing database per task):")
    for env in envs:
        r = spawn(args, worker="reward", env=env, tasks=max(2, int(8 * scale)))
        print(
            f"  {env:<7} τ-bench Env.calculate_reward {r['taubench'] * 1e3:8.1f} | "
            f"Domain.score first time for the task {r['uncached'] * 1e3:7.2f} | "
            f"with the cached ground-truth hash {r['cached'] * 1e3:7.2f}"
        )


if __name__ == "__main__":
    main()
