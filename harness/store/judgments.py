"""Judgments on disk: `<job>/judgments/<judge>.jsonl`, one line per judged conversation.

`<judge>` is the hash of everything that defines a judgment (model, backend, sampling, prompt,
schema, limits), so a changed judge writes a separate set next to the old one instead of mixing
them; `<judge>.json` beside it says which judge it is. Each line is appended and fsynced as the
conversation is judged (`JudgmentLog`, the same append log and damage policy as the
conversations), so a killed judge loses nothing and a rerun judges only what is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from harness.judge.schema import Judgment
from harness.store.jsonl import AppendLog, JsonlRead, read_jsonl_records
from harness.store.layout import JobDir
from harness.store.models import Key

JUDGMENT_SCHEMA: TypeAdapter[Judgment] = TypeAdapter(Judgment)


def read_judgment_log(path: Path) -> JsonlRead:
    """Every line of one judgment log, good and damaged (a reader never changes the file)."""
    return read_jsonl_records(path, JUDGMENT_SCHEMA)


def read_judgments(path: Path) -> dict[Key, dict[str, Any]]:
    """The latest judgment of each (task, trial); a half-written last line and damaged lines are left out."""
    return {(j["task_id"], j["trial"]): j for j in read_judgment_log(path).records}


def read_job_judgments(job_dir: Path) -> dict[str, dict[Key, Judgment]]:
    """Judge hash → (task, trial) → its latest judgment, typed, for every judge of the job."""
    directory = JobDir(job_dir)
    return {
        judge: {
            key: Judgment.model_validate(j) for key, j in read_judgments(directory.judgments(judge)).items()
        }
        for judge in directory.judges()
    }


class JudgmentLog(AppendLog):
    """The one writer of a judgment log (a second judge of the same hash fails at once)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, JUDGMENT_SCHEMA)
