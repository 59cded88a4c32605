"""`python -m harness.judge.sample SWEEP_DIR --n 200`: a blinded, stratified sample for human raters.

The sample is drawn from the sweep's judgeable conversations, stratified by (variant, intensity,
outcome) with as equal a share per stratum as their sizes allow, in a seeded random order. It is
written as a rating page (`<out>/page/`, static HTML from the viewer's machinery: give raters this
folder) and a key (`<out>/key.json`: keep it apart from the raters). The page shows what the judge
sees (the instruction and the conversation as the agent saw it), never the variant, its persona or
the job; every conversation is named by a salted hash only the key resolves. A rater rates each
customer turn's emotion (the judge's taxonomy) and intensity, and each conversation's fidelity, and
saves a JSON file from the page (a download, no server). `python -m harness.judge.agree` reads them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import secrets
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.episode.record import ConversationRecord
from harness.errors import ExitCode
from harness.job.metrics import is_success
from harness.judge.prompt import render_transcript
from harness.judge.run import judgeable
from harness.store import CONVERSATIONS, find_job_dirs, latest_by_key, read_conversations, write_json

KEY_FILE = "key.json"
PAGE_DIR = "page"
SAMPLE_FORMAT = "tau-emotion-rating-sample"


@dataclass(frozen=True)
class Candidate:
    job: str
    record: ConversationRecord

    @property
    def outcome(self) -> str:
        if not self.record.get("scored"):
            return "unscored"
        return "success" if is_success(self.record["reward"]) else "failure"

    @property
    def stratum(self) -> tuple[str, str, str]:
        return (str(self.record["variant"]), str(self.record.get("intensity")), self.outcome)


def candidates(sweep_dir: Path) -> list[Candidate]:
    """Every judgeable conversation of the sweep (its latest attempt), in a stable order."""
    found = []
    for job_dir in find_job_dirs(sweep_dir):
        job = str(job_dir.relative_to(sweep_dir))
        for record in latest_by_key(read_conversations(job_dir / CONVERSATIONS)).values():
            if judgeable(record):
                found.append(Candidate(job, record))
    return sorted(found, key=lambda c: (c.job, c.record["task_id"], c.record["trial"]))


def allocate(sizes: dict[Any, int], n: int) -> dict[Any, int]:
    """As equal a number per stratum as their sizes allow, `n` in all (or everything, if fewer)."""
    take = dict.fromkeys(sizes, 0)
    left = min(n, sum(sizes.values()))
    open_strata = sorted(sizes, key=str)
    while left > 0:
        open_strata = [s for s in open_strata if take[s] < sizes[s]]
        share = max(1, left // len(open_strata))
        for stratum in open_strata:
            extra = min(share, sizes[stratum] - take[stratum], left)
            take[stratum] += extra
            left -= extra
            if left == 0:
                break
    return take


def draw(found: list[Candidate], n: int, rng: np.random.Generator) -> list[Candidate]:
    strata: dict[tuple[str, str, str], list[Candidate]] = defaultdict(list)
    for candidate in found:
        strata[candidate.stratum].append(candidate)
    take = allocate({s: len(members) for s, members in strata.items()}, n)
    chosen: list[Candidate] = []
    for stratum in sorted(strata):
        members = strata[stratum]
        chosen.extend(members[i] for i in sorted(rng.choice(len(members), take[stratum], replace=False)))
    order = rng.permutation(len(chosen))
    return [chosen[i] for i in order]


def item_id(salt: str, candidate: Candidate) -> str:
    name = f"{salt}/{candidate.job}/{candidate.record['task_id']}/{candidate.record['trial']}"
    return hashlib.sha256(name.encode()).hexdigest()[:12]


def blinded_item(identifier: str, record: ConversationRecord) -> dict[str, Any]:
    """What a rater sees: the instruction and the agent's view of the dialogue, customer turns numbered."""
    transcript = render_transcript(record)
    messages: list[dict[str, Any]] = []
    turn = 0
    for message in record.get("messages") or []:
        role = message.get("role")
        content = message["content"] if isinstance(message.get("content"), str) else ""
        if role == "user":
            messages.append({"role": "customer", "turn": turn, "text": content.replace("###STOP###", "").strip(),
                             "ends": "###STOP###" in content, "rate": turn in transcript.judged})  # fmt: skip
            turn += 1
        elif role == "assistant":
            calls = [
                f"{(c.get('function') or {}).get('name')}({(c.get('function') or {}).get('arguments', '')})"
                for c in message.get("tool_calls") or []
            ]
            messages.append({"role": "agent", "text": (content or "").strip(), "calls": calls})
        elif role == "tool":
            messages.append({"role": "tool", "text": (content or "")[:400]})
    return {
        "id": identifier,
        "instruction": str(record.get("instruction", "")).strip(),
        "messages": messages,
        "turns": transcript.judged,
    }


def write_sample(sweep_dir: Path, out: Path, n: int, seed: int) -> tuple[Path, Path, int]:
    """Draw and write the sample; returns (the page, the key, the number of conversations)."""
    from harness.judge.schema import EMOTIONS, FLAG_KINDS
    from harness.view.rating import write_rating_page

    found = candidates(sweep_dir)
    if not found:
        raise ValueError(f"{sweep_dir} holds no finished conversations with a customer message to rate")
    rng = np.random.default_rng(seed)
    chosen = draw(found, n, rng)
    salt = secrets.token_hex(16)
    sample = hashlib.sha256(f"{salt}/sample".encode()).hexdigest()[:12]
    items, key = [], {}
    for candidate in chosen:
        identifier = item_id(salt, candidate)
        record = candidate.record
        items.append(blinded_item(identifier, record))
        key[identifier] = {
            "job": candidate.job, "task_id": record["task_id"], "trial": record["trial"],
            "conversation_started_at": record.get("started_at"), "variant": record["variant"],
            "intensity": record.get("intensity"), "onset_after_turns": record.get("onset_after_turns"),
            "outcome": candidate.outcome, "turns": render_transcript(record).judged,
        }  # fmt: skip
    data = {
        "format": SAMPLE_FORMAT, "sample": sample, "emotions": list(EMOTIONS), "intensities": [0, 1, 2, 3],
        "flag_kinds": list(FLAG_KINDS), "items": items,
    }  # fmt: skip
    page = write_rating_page(data, out / PAGE_DIR)
    strata: dict[str, int] = defaultdict(int)
    for candidate in chosen:
        strata["/".join(candidate.stratum)] += 1
    key_path = out / KEY_FILE
    write_json(
        key_path,
        {"format": "tau-emotion-rating-key", "sample": sample, "sweep_dir": str(sweep_dir.resolve()),
         "seed": seed, "salt": salt, "strata": dict(sorted(strata.items())), "items": key},
    )  # fmt: skip
    return page, key_path, len(chosen)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.judge.sample", description=__doc__.split("\n")[0]
    )
    parser.add_argument("sweep_dir", type=Path, help="a sweep directory (outputs/sweeps/<name>)")
    parser.add_argument("--n", type=int, default=200, help="conversations in the sample (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="the draw's random seed (default 0)")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default SWEEP_DIR/rating)")
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        print(f"error: sweep_dir={args.sweep_dir} is not a directory", file=sys.stderr)
        return ExitCode.CONFIG
    if args.n < 1:
        print(f"error: --n must be at least 1, got {args.n}", file=sys.stderr)
        return ExitCode.CONFIG
    try:
        page, key, count = write_sample(
            args.sweep_dir, args.out or args.sweep_dir / "rating", args.n, args.seed
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.CONFIG
    strata = json.loads(key.read_text())["strata"]
    print(f"rating page: {page} ({count} conversations in {len(strata)} strata; give raters {page.parent})")
    print(f"key: {key} (keep it apart from the raters)")
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
