"""The conversation viewer at the scale of a large sweep: size on disk and time to open.

Writes a sweep of generated conversations shaped like real τ-bench ones (the agent's policy as
system prompt — τ-bench's own wiki where τ-bench is installed —, several user turns, tool calls
with JSON results, the simulator's view and every model call, as `harness.episode.record` has them),
builds the viewer with `python -m harness.view`'s code, then opens it from `file://` in
headless chromium and measures how long the index takes to show, a filter to apply, a
conversation to open and a text search to finish.

    python benchmarks/viewer_scale.py                      # 20,000 conversations
    python benchmarks/viewer_scale.py --conversations 2000 --keep /tmp/viewer-sweep

Targets: the index shows in under 2 s; the viewer is under 25 % of the sweep's JSONL.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # τ-bench imports litellm: no network

from harness.view import build_viewer, load, viewer_size  # noqa: E402
from tests.toy_domain import WIKI as TOY_WIKI  # noqa: E402
from tests.viewer_support import CHROMIUM_ARGS  # noqa: E402

VARIANTS = ("control", "frustration", "anxiety", "anger", "confusion")
ENVS = ("retail", "airline")
TRIALS = 4


def policies() -> dict[str, str]:
    try:
        from tau_bench.envs.airline.wiki import WIKI as AIRLINE
        from tau_bench.envs.retail.wiki import WIKI as RETAIL
    except ImportError:  # about the size of τ-bench's (5.7 and 6.2 kB)
        return {"retail": (TOY_WIKI + "\n") * 30, "airline": (TOY_WIKI + "\n") * 32}
    return {"retail": RETAIL, "airline": AIRLINE}


class Conversations:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.policies = policies()
        self.words = sorted(
            {w.strip(".,:;()`*#-").lower() for p in self.policies.values() for w in p.split()} - {""}
        )

    def text(self, low: int, high: int) -> str:
        words = self.rng.choices(self.words, k=self.rng.randint(low, high))
        return " ".join(words).capitalize() + "."

    def tool_result(self) -> str:
        items = [
            {
                "name": self.text(1, 3),
                "product_id": str(self.rng.randrange(10**9, 10**10)),
                "item_id": str(self.rng.randrange(10**9, 10**10)),
                "price": round(self.rng.uniform(5, 900), 2),
                "options": {
                    "color": self.rng.choice(["red", "blue", "black"]),
                    "size": self.rng.choice("SML"),
                },
            }
            for _ in range(self.rng.randint(1, 5))
        ]
        return json.dumps(
            {
                "order_id": f"#W{self.rng.randrange(10**7):07d}",
                "user_id": f"user_{self.rng.randrange(10**4)}",
                "address": {
                    "address1": self.text(2, 4),
                    "city": self.text(1, 2),
                    "zip": str(self.rng.randrange(10**5)),
                },
                "items": items,
                "status": self.rng.choice(["pending", "delivered", "processed"]),
            }
        )

    def record(self, env: str, variant: str, task: int, trial: int) -> dict[str, Any]:
        rng = self.rng
        messages: list[dict[str, Any]] = [{"role": "system", "content": self.policies[env]}]
        user_view: list[dict[str, Any]] = [{"role": "user", "content": "Hi! How can I help you today?"}]
        calls: list[dict[str, Any]] = []
        actions: list[dict[str, Any]] = []
        turns = rng.randint(3, 12)
        tool_calls = 0
        for turn in range(turns):
            said = self.text(8, 60) if turn < turns - 1 else "###STOP###"
            messages.append({"role": "user", "content": said})
            user_view.append({"role": "assistant", "content": said})
            calls.append(
                {
                    "role": "user",
                    "turn": turn,
                    "affect_active": variant != "control",
                    "prompt_tokens": 900,
                    "completion_tokens": 40,
                    "latency_s": 0.8,
                }
            )
            if turn == turns - 1:
                break
            for _ in range(rng.randint(0, 2)):
                name = rng.choice(
                    ["get_order_details", "get_user_details", "find_user_id_by_email", "cancel_pending_order"]
                )
                arguments = {"order_id": f"#W{rng.randrange(10**7):07d}"}
                call_id = f"call_{tool_calls}"
                messages.append(
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": call_id,
                                "type": "function",
                                "function": {"name": name, "arguments": json.dumps(arguments)},
                            }
                        ],
                    }
                )
                messages.append(
                    {"role": "tool", "tool_call_id": call_id, "name": name, "content": self.tool_result()}
                )
                actions.append({"name": name, "kwargs": arguments})
                calls.append(
                    {
                        "role": "agent",
                        "step": len(calls),
                        "prompt_tokens": 4000,
                        "completion_tokens": 30,
                        "cached_tokens": 3500,
                        "latency_s": 0.5,
                        "parse_error": None,
                    }
                )
                tool_calls += 1
            reply = self.text(15, 80)
            messages.append({"role": "assistant", "content": reply})
            user_view.append({"role": "user", "content": reply})
            actions.append({"name": "respond", "kwargs": {"content": reply}})
            calls.append(
                {
                    "role": "agent",
                    "step": len(calls),
                    "prompt_tokens": 4200,
                    "completion_tokens": 90,
                    "cached_tokens": 3500,
                    "latency_s": 1.2,
                    "parse_error": None,
                }
            )
        success = rng.random() < (0.7 if variant == "control" else 0.55)
        ground_truth = [a for a in actions if a["name"] != "respond"][:3]
        return {
            "env": env, "split": "test", "task_id": task, "trial": trial, "seed": (task * 1000 + trial) * 7919 % 2**31,
            "variant": variant, "reward": 1.0 if success else 0.0,
            "termination": rng.choices(["user_stop", "transfer_to_human", "max_steps"], [85, 10, 5])[0],
            "scored": True, "error": None,
            "reward_info": {"reward": 1.0 if success else 0.0, "info": {"r_actions": success, "gt_data_hash": f"{rng.getrandbits(256):064x}"}, "actions": ground_truth},
            "user_id": f"user_{task}", "instruction": self.text(40, 120), "instruction_affect": [],
            "counts": {"steps": len(calls) - turns, "tool_calls": tool_calls, "tool_errors": 0, "malformed_tool_calls": 0, "user_turns": turns, "agent_replies": turns - 1},
            "usage": {"agent_prompt_tokens": 40000, "agent_completion_tokens": 900, "agent_cached_tokens": 30000, "agent_latency_s": 9.0, "user_prompt_tokens": 9000, "user_completion_tokens": 400, "user_latency_s": 7.0},
            "calls": calls, "started_at": 1.7e9, "duration_s": 16.0,
            "messages": messages, "user_messages": user_view, "actions": actions,
            "job_name": "scale", "model": "qwen2.5-7b", "backend": "vllm", "plumbing_check": False,
            "intensity": None if variant == "control" else "medium", "onset_after_turns": 0, "harness_version": "0.1.0",
        }  # fmt: skip


def write_sweep(sweep: Path, conversations: int, seed: int) -> int:
    """Writes the sweep's JSONL files; returns their total size."""
    generator = Conversations(seed)
    per_job = conversations // (len(VARIANTS) * len(ENVS))
    tasks = per_job // TRIALS
    total = 0
    for env in ENVS:
        for variant in VARIANTS:
            job = sweep / "qwen2.5-7b" / f"{env}-test" / variant / "seed0"
            job.mkdir(parents=True)
            with (job / "conversations.jsonl").open("w") as file:
                for task in range(tasks):
                    for trial in range(TRIALS):
                        file.write(json.dumps(generator.record(env, variant, task, trial)) + "\n")
            total += (job / "conversations.jsonl").stat().st_size
    return total


def measure(page_url: str, runs: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    times: dict[str, list[float]] = {
        "index_s": [],
        "index_wall_s": [],
        "failed_only_s": [],
        "open_s": [],
        "search_s": [],
    }
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        for _ in range(runs):
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            started = time.perf_counter()
            page.goto(page_url)
            page.wait_for_function("window.VIEWER_READY && document.querySelectorAll('#rows tr').length > 0")
            times["index_wall_s"].append(time.perf_counter() - started)
            times["index_s"].append(page.evaluate("window.VIEWER_READY_MS") / 1000)
            started = time.perf_counter()
            page.check("#failed-only")
            page.wait_for_function("!document.querySelector('#rows tr[data-outcome=\"1\"]')")
            times["failed_only_s"].append(time.perf_counter() - started)
            started = time.perf_counter()
            page.keyboard.press("Enter")
            page.wait_for_selector("#chat .msg")
            times["open_s"].append(time.perf_counter() - started)
            page.keyboard.press("u")
            page.wait_for_selector("#search")
            started = time.perf_counter()
            page.fill("#search", "refund")
            page.press("#search", "Enter")
            page.wait_for_function(
                "document.getElementById('count').textContent.includes(' of ')", timeout=120_000
            )
            times["search_s"].append(time.perf_counter() - started)
            page.close()
        browser.close()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--conversations", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3, help="times the page is opened")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, default=None, help="write the sweep here and keep it")
    args = parser.parse_args()
    if shutil.which("chromium") is None:
        print("chromium is not installed (apt-get install -y chromium)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="viewer-scale-"))
    sweep = args.keep or work / "sweep"
    try:
        started = time.perf_counter()
        jsonl = write_sweep(sweep, args.conversations, args.seed)
        print(f"sweep: {sweep} ({time.perf_counter() - started:.1f} s to write)")
        started = time.perf_counter()
        loaded = load(sweep)
        page = build_viewer(loaded)
        built = time.perf_counter() - started
        size = viewer_size(page.parent)
        print(
            f"conversations: {loaded.conversations} in {len(loaded.jobs)} jobs; viewer built in {built:.1f} s"
        )
        print(
            f"JSONL: {jsonl / 1e6:.1f} MB; viewer: {size / 1e6:.1f} MB = {100 * size / jsonl:.1f} % of the JSONL (target < 25 %)"
        )
        index = (page.parent / "data" / "index.js").stat().st_size
        print(f"index file: {index / 1e6:.2f} MB")
        times = measure(page.as_uri(), args.runs)
        for name, values in times.items():
            shown = ", ".join(f"{v:.2f}" for v in values)
            print(f"{name}: median {statistics.median(values):.2f} s ({shown})")
        print(f"index opens in {statistics.median(times['index_s']):.2f} s (page's own clock; target < 2 s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
