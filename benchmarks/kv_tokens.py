"""Measures the figures behind `env.kv_tokens` (conf/env/retail.yaml, airline.yaml) on τ-bench's own data.

    python benchmarks/kv_tokens.py [retail airline]

Counts, with tiktoken's cl100k_base (GPT-4's; Llama-3 and Qwen2.5 tokenizers land within ~10%): the
agent's shared prefix (wiki + tool schemas), the simulated user's prompt, and the tool calls and results
of each test task's gold actions replayed on its database (retail's gold actions include the lookups;
airline's are only the writes). Runs offline: litellm ships the cl100k_base file.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.domains.taubench.loader import load_taubench_domain  # noqa: E402
from harness.episode.types import Action  # noqa: E402

CALL_OVERHEAD = 20
"""Tokens of the chat template around one tool call and its result."""


def encoder() -> object:
    if "TIKTOKEN_CACHE_DIR" not in os.environ:
        import litellm

        os.environ["TIKTOKEN_CACHE_DIR"] = str(
            Path(litellm.__file__).parent / "litellm_core_utils" / "tokenizers"
        )
    import tiktoken

    return tiktoken.get_encoding("cl100k_base")


def spread(values: list[int]) -> str:
    ordered = sorted(values)
    return (
        f"mean {statistics.mean(values):,.0f}, p90 {ordered[int(0.9 * len(ordered))]:,}, max {ordered[-1]:,}"
    )


def main() -> None:
    enc = encoder()

    def count(text: str) -> int:
        return len(enc.encode(text))  # type: ignore[attr-defined]

    for name in sys.argv[1:] or ["retail", "airline"]:
        domain = load_taubench_domain(name=name, split="test")
        domain.prepare()
        wiki, tools = count(domain.wiki), count(json.dumps(domain.tools_info))
        tool_io, users, actions = [], [], []
        for task_id, task in enumerate(domain.tasks):
            state = domain.new_state(task_id)
            total = 0
            for gold in task.actions:
                action = Action(gold.name, gold.kwargs)
                total += (
                    count(domain.execute(state, action)) + count(json.dumps(action.kwargs)) + CALL_OVERHEAD
                )
            tool_io.append(total)
            actions.append(len(task.actions))
            users.append(count(domain.user_prompt(task_id, "llm")))
        print(
            f"{name}: {len(domain.tasks)} tasks; shared prefix {wiki + tools:,} (wiki {wiki:,}, tools {tools:,}); "
            f"gold actions per task {spread(actions)}; their calls and results {spread(tool_io)} tokens; "
            f"user prompt {spread(users)} tokens"
        )


if __name__ == "__main__":
    main()
