"""The report's CSVs on one fixed synthetic sweep, built by two trees of the harness, compared byte for byte.

    python benchmarks/report_identity.py [--base b37edea] [--keep DIR]

The sweep (several variants and doses, unscored endings, `###STOP###` turns, a job still running,
an incomplete one, a failed one, a judge's judgments) is written here without importing the
harness, so both trees read the very same bytes. The base tree is `git archive`d into a temporary
folder; each tree runs `python -m harness.report` on the sweep in its own process. Prints one line
per CSV (same / differs, with the first differing line) and exits 1 when any differs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = [
    ("control", None),
    ("neutral", "medium"),
    ("anger", "low"),
    ("anger", "high"),
    ("frustration", "medium"),
]
TASKS, TRIALS = 12, 3
TEXT = {
    "control": "Hi, I need help with an exchange on my order.",
    "neutral": "Hello, I would like to exchange an item, please.",
    "anger": "This is unacceptable and I am furious. Fix this now!",
    "frustration": "Seriously, again? I already told you this.",
}


def _record(variant: str, intensity: str | None, task: int, trial: int, rng: random.Random) -> dict[str, Any]:
    success = rng.random() < (0.7 if variant in ("control", "neutral") else 0.5)
    unscored = rng.random() < 0.05
    stop = "###STOP###" if rng.random() < 0.5 else "Thanks, that is all. ###STOP###"
    return {
        "env": "retail",
        "split": "test",
        "task_id": task,
        "trial": trial,
        "seed": 1000 * task + trial,
        "variant": variant,
        "reward": 1.0 if success and not unscored else 0.0,
        "termination": "user_error" if unscored else "user_stop",
        "scored": not unscored,
        "error": "user simulator failed" if unscored else None,
        "reward_info": None,
        "user_id": f"user_{task}",
        "instruction": "You want to exchange an item.",
        "instruction_affect": ["impatient"] if task % 4 == 0 else [],
        "counts": {
            "steps": 4 + task % 3,
            "tool_calls": 2,
            "tool_errors": task % 2,
            "malformed_tool_calls": 0,
            "user_turns": 2,
            "agent_replies": 2,
        },
        "usage": {
            "agent_prompt_tokens": 100 + task,
            "agent_completion_tokens": 20,
            "user_prompt_tokens": 50,
            "user_completion_tokens": 10,
        },
        "calls": [{"role": "user", "turn": 0}],
        "started_at": float(task * 10 + trial),
        "duration_s": 1.5,
        "user_messages": [],
        "actions": [],
        "messages": [
            {"role": "system", "content": "policy"},
            {"role": "user", "content": TEXT[variant]},
            {"role": "assistant", "content": "Let me look at that for you."},
            {"role": "user", "content": stop},
        ],
        "model": "toy-model",
        "backend": "synthetic",
        "plumbing_check": False,
        "intensity": intensity,
        "onset_after_turns": 0,
    }


def write_sweep(sweep: Path) -> None:
    rng = random.Random(7)
    for number, (variant, intensity) in enumerate(VARIANTS):
        folder = variant if intensity in (None, "medium") else f"{variant}-{intensity}"
        job = sweep / "toy-model" / "retail-test" / folder / "seed0"
        job.mkdir(parents=True)
        records = [_record(variant, intensity, t, k, rng) for k in range(TRIALS) for t in range(TASKS)]
        info = {
            "model": "toy-model",
            "env": "retail",
            "variant": variant,
            "intensity": intensity,
            "plumbing_check": False,
            "user_simulator": {"backend": "synthetic", "model": "user-model", "temperature": 1.0},
            "job_name": f"toy-{folder}",
        }
        fingerprint = {
            "seed": 0,
            "variant": {"name": variant, "intensity": intensity},
            "model": {"name": "toy-model"},
            "user": {"strategy": "llm", "sampling": {"temperature": 1.0}},
        }
        job_file = {"fingerprint": fingerprint, "info": info, "tasks": list(range(TASKS)), "trials": TRIALS}
        (job / "job.json").write_text(json.dumps(job_file))
        kept = records[:-3] if number == 4 else records  # frustration: still running (no summary yet)
        (job / "conversations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
        if number == 4:
            continue
        successes = sum(r["reward"] for r in records if r["scored"])
        summary = {
            **info,
            "conversations": len(records),
            "average_reward": successes / max(1, sum(r["scored"] for r in records)),
            "state": "incomplete" if number == 2 else "complete",
            "expected": len(records),
            "missing": 2 if number == 2 else 0,
            "missing_by_reason": {"infra_error": 2 if number == 2 else 0, "harness_error": 0, "not_run": 0},
            "user_errors": sum(r["termination"] == "user_error" for r in records),
            "cost": {"wall_s": 10.0},
        }
        (job / "summary.json").write_text(json.dumps(summary))
        if number in (0, 1, 3):
            judgments = job / "judgments"
            judgments.mkdir()
            (judgments / "abc123.json").write_text(
                json.dumps(
                    {
                        "judge": "abc123",
                        "model": "judge-model",
                        "backend": "scripted",
                        "plumbing_check": False,
                    }
                )
            )
            lines = []
            for r in records:
                turns = [
                    {
                        "turn": 0,
                        "emotion": rng.choice(["neutral", "anger", "frustration"]),
                        "intensity": rng.randint(0, 3),
                        "reason": "its words",
                    }
                ]
                flags = (
                    [{"kind": "stopping", "turn": 0, "quote": "###STOP###"}] if r["task_id"] % 5 == 0 else []
                )
                lines.append(
                    {
                        "task_id": r["task_id"],
                        "trial": r["trial"],
                        "conversation_started_at": r["started_at"],
                        "judge": "abc123",
                        "judge_model": "judge-model",
                        "judged_turns": [0],
                        "turns": turns,
                        "fidelity": flags,
                        "error": None,
                        "error_kind": None,
                        "attempts": 1,
                        "usage": {"prompt_tokens": 300, "completion_tokens": 40},
                        "latency_s": 0.1,
                        "judged_at": 0.0,
                    }
                )
            (judgments / "abc123.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    failed = sweep / "toy-model" / "airline-test" / "control" / "seed0"
    failed.mkdir(parents=True)
    (failed / "error.txt").write_text("RuntimeError: the engine died\ntraceback ...\n")


def build(tree: Path, sweep: Path, out: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree), "MPLBACKEND": "Agg"}
    command = [sys.executable, "-m", "harness.report", str(sweep), "--out", str(out), "--no-mixed"]
    command += ["--resamples", "200", "--permutations", "500"]
    return subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=600)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="b37edea", help="the commit to compare the working tree with")
    parser.add_argument("--keep", type=Path, default=None, help="keep the sweep and both reports here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="report-identity-")) if args.keep is None else args.keep
    base = work / "base"
    base.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "archive", args.base], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(base)], input=archive.stdout, check=True)
    sweep = work / "sweep"
    if not sweep.exists():
        write_sweep(sweep)
    reports = {}
    for name, tree in (("base", base), ("head", ROOT)):
        out = work / f"report-{name}"
        done = build(tree, sweep, out)
        if done.returncode != 0:
            print(
                f"{name}: python -m harness.report failed ({done.returncode}): {done.stderr.strip()[-400:]}"
            )
            return 1
        reports[name] = out
    differ = 0
    csvs = sorted({p.relative_to(reports[n]) for n in reports for p in reports[n].rglob("*.csv")})
    for csv in csvs:
        before, after = reports["base"] / csv, reports["head"] / csv
        if not before.exists() or not after.exists():
            print(f"{csv}: only in {'head' if after.exists() else 'base'}")
            differ += 1
            continue
        old, new = before.read_bytes(), after.read_bytes()
        if old == new:
            print(f"{csv}: same ({len(new)} bytes)")
            continue
        differ += 1
        for number, (a, b) in enumerate(zip(old.splitlines(), new.splitlines(), strict=False), start=1):
            if a != b:
                print(
                    f"{csv}: differs, first at line {number}:\n  base: {a.decode()[:200]}\n  head: {b.decode()[:200]}"
                )
                break
        else:
            print(f"{csv}: differs in length ({len(old)} vs {len(new)} bytes)")
    print(f"{len(csvs)} CSVs, {len(csvs) - differ} byte-identical, {differ} differ; files in {work}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
