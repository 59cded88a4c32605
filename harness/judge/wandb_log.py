"""Judgments into each job's own W&B run: a `judgments/<judge>` table beside `transcripts`, and summary figures.

The job's run is resumed by the id in `<job>/wandb/run.json` (offline runs resume too); a job that
never had a run gets one there, which the job's own next attempt then resumes. A W&B failure costs
only the W&B copy.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from harness.judge.schema import EMOTIONS, FLAG_KINDS
from harness.store import JobDir, latest_by_key, read_conversations, read_json_object
from harness.store.judgments import read_judgments

log = logging.getLogger(__name__)

COLUMNS = [
    "task_id",
    "trial",
    "judge",
    "judge_model",
    "emotions",
    "fidelity_flags",
    "error",
    "prompt_tokens",
    "completion_tokens",
]


def judgment_row(judgment: dict[str, Any]) -> list[Any]:
    turns = judgment.get("turns") or []
    flags = judgment.get("fidelity") or []
    return [
        judgment["task_id"],
        judgment["trial"],
        judgment["judge"],
        judgment.get("judge_model"),
        "\n".join(f"turn {t['turn']}: {t['emotion']} {t['intensity']} ({t['reason']})" for t in turns),
        "\n".join(f"turn {f['turn']}: {f['kind']}: {f['quote']!r}" for f in flags),
        judgment.get("error"),
        judgment["usage"]["prompt_tokens"],
        judgment["usage"]["completion_tokens"],
    ]


def job_figures(judgments: list[dict[str, Any]], onsets: dict[tuple[int, int], int]) -> dict[str, float]:
    """Shares of the judged emotions over active turns, mean intensity, fidelity flag rates, errors."""
    emotions: Counter[str] = Counter()
    intensities: list[int] = []
    valid = [j for j in judgments if j.get("turns") is not None]
    for judgment in valid:
        onset = onsets.get((judgment["task_id"], judgment["trial"]), 0)
        for turn in judgment["turns"]:
            if turn["turn"] >= onset:
                emotions[turn["emotion"]] += 1
                intensities.append(turn["intensity"])
    active = sum(emotions.values())
    figures: dict[str, float] = {
        "conversations": len(judgments),
        "errors": len(judgments) - len(valid),
        "active_turns": active,
        "mean_intensity": sum(intensities) / active if active else float("nan"),
    }
    figures.update({f"emotion_share/{e}": emotions[e] / active if active else float("nan") for e in EMOTIONS})
    for kind in ("any", *FLAG_KINDS):
        flagged = sum(1 for j in valid if any(kind in ("any", f["kind"]) for f in j["fidelity"]))
        figures[f"fidelity_rate/{kind}"] = flagged / len(valid) if valid else float("nan")
    return figures


def log_judgments(block: dict[str, Any], job_dir: Path, judge: str) -> None:
    from harness.tracking.wandb_logger import wandb_installed, wandb_settings

    settings = wandb_settings({**block})
    if settings.mode == "disabled" or not wandb_installed():
        return
    judgments = sorted(
        read_judgments(JobDir(job_dir).judgments(judge)).values(), key=lambda j: (j["trial"], j["task_id"])
    )
    if not judgments:
        return
    records = latest_by_key(read_conversations(JobDir(job_dir).conversations))
    onsets = {key: int(r.get("onset_after_turns") or 0) for key, r in records.items()}
    try:
        _log(settings, job_dir, judge, judgments, job_figures(judgments, onsets))
    except Exception as error:
        log.warning(
            "W&B: could not log the judgments of %s (%s: %s); they are in %s",
            job_dir,
            type(error).__name__,
            error,
            JobDir(job_dir).judgments(judge),
        )


def _log(
    settings: Any, job_dir: Path, judge: str, judgments: list[dict[str, Any]], figures: dict[str, float]
) -> None:
    from harness.tracking.wandb_logger import WANDB_SUBDIR, point_wandb_at

    run_id = _run_id(job_dir)
    point_wandb_at(job_dir)
    import wandb

    info = read_json_object(JobDir(job_dir).judge_info(judge)) or {}
    run = wandb.init(
        project=settings.project,
        entity=settings.entity,
        id=run_id,
        resume="allow",
        mode=settings.mode,
        dir=str(job_dir),
        reinit="create_new",
        settings=wandb.Settings(
            init_timeout=settings.init_timeout_s, console="off", quiet=True, silent=True, save_code=False
        ),
    )
    try:
        run.summary[f"judgments/{judge}"] = wandb.Table(
            columns=list[str | int](COLUMNS), data=[judgment_row(j) for j in judgments]
        )
        run.summary.update({f"judge/{judge}/{key}": value for key, value in figures.items()})
        run.summary[f"judge/{judge}/model"] = info.get("model")
        run.summary[f"judge/{judge}/plumbing_check"] = info.get("plumbing_check")
        run.finish()
    finally:
        wandb.teardown()
    log.debug("W&B: judgments of %s logged to run %s in %s", job_dir, run_id, job_dir / WANDB_SUBDIR)


def _run_id(job_dir: Path) -> str:
    """The job's run id (a job that never had a run gets one, which its next attempt resumes)."""
    import secrets

    from harness.tracking.wandb_logger import RUN_FILE, WANDB_SUBDIR

    path = job_dir / WANDB_SUBDIR / RUN_FILE
    if path.exists():
        return str(json.loads(path.read_text())["id"])
    run_id = secrets.token_hex(6)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"id": run_id}) + "\n")
    return run_id
