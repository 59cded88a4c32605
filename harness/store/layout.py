"""Every file name of a job directory and of a sweep directory, owned by `JobDir` and `SweepDir`.

A job directory holds `job.json` (what defines the job), `conversations.jsonl` (the source of
truth, one record per finished conversation), `summary.json` and the environment's own results
export (derived from it), `error.txt` (the latest run failed), `job_state.json` (what the
launcher saw), `judgments/<judge>.jsonl` with `judgments/<judge>.json`, `<log>.quarantine`
(damaged lines set aside) and `.job.lock` (held while a run of the job is in progress).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

JOB_FILE = "job.json"
CONVERSATIONS = "conversations.jsonl"
SUMMARY = "summary.json"
RESULTS = "results.json"
"""τ-bench's own results format (written by τ-bench jobs only)."""
TAU2_RESULTS = "tau2_results.json"
"""τ²-bench's own results format (written by τ² jobs only)."""
ERROR_FILE = "error.txt"
JOB_STATE = "job_state.json"
JOB_LOCK = ".job.lock"
JUDGMENTS_DIR = "judgments"
MANIFEST = "manifest.json"
QUARANTINE_SUFFIX = ".quarantine"
"""Lines set aside from `<file>` go to `<file>.quarantine` beside it, one JSON entry each."""
JOB_MARKERS = (JOB_FILE, CONVERSATIONS, ERROR_FILE)
"""A directory holding one of these is a job directory."""


def quarantine_of(path: Path) -> Path:
    return path.with_name(path.name + QUARANTINE_SUFFIX)


@dataclass(frozen=True)
class JobDir:
    """One job's directory: where each of its files is, and its one lock."""

    path: Path

    @property
    def job_file(self) -> Path:
        return self.path / JOB_FILE

    @property
    def conversations(self) -> Path:
        return self.path / CONVERSATIONS

    @property
    def summary(self) -> Path:
        return self.path / SUMMARY

    @property
    def results(self) -> Path:
        return self.path / RESULTS

    @property
    def tau2_results(self) -> Path:
        return self.path / TAU2_RESULTS

    @property
    def error(self) -> Path:
        return self.path / ERROR_FILE

    @property
    def launch_state(self) -> Path:
        """`job_state.json`: pending, running, done, failed as the launcher and callback saw it."""
        return self.path / JOB_STATE

    @property
    def judgments_dir(self) -> Path:
        return self.path / JUDGMENTS_DIR

    def judgments(self, judge: str) -> Path:
        """`judgments/<judge>.jsonl`: one line per judged conversation, by the judge of that hash."""
        return self.judgments_dir / f"{judge}.jsonl"

    def judge_info(self, judge: str) -> Path:
        """`judgments/<judge>.json`: which judge that is (model, backend, prompt, ...)."""
        return self.judgments_dir / f"{judge}.json"

    def judges(self) -> list[str]:
        """The judges that have judged conversations of this job (their hashes)."""
        return sorted(path.stem for path in self.judgments_dir.glob("*.jsonl"))

    def error_line(self) -> str | None:
        """The first line of `error.txt`; None when the latest run did not fail."""
        try:
            lines = self.error.read_text(errors="replace").strip().splitlines()
        except FileNotFoundError:
            return None
        return lines[0] if lines else ERROR_FILE

    @contextmanager
    def hold(self) -> Iterator[None]:
        """One run at a time in the directory: waits for a run in progress to end.

        (A sweep over intensities launches control and neutral once per intensity into one
        directory; the later ones wait, then find the work done.)
        """
        self.path.mkdir(parents=True, exist_ok=True)
        with (self.path / JOB_LOCK).open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def held(self) -> bool:
        """Whether a run of this job is in progress (here, or in a process sharing the filesystem)."""
        try:
            fd = os.open(self.path / JOB_LOCK, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            return False  # no flock on this filesystem: nothing can be told
        finally:
            os.close(fd)  # closing releases a lock just taken
        return False


@dataclass(frozen=True)
class SweepDir:
    """A sweep's directory: its manifest and the job directories at or under it."""

    path: Path

    @property
    def manifest(self) -> Path:
        return self.path / MANIFEST

    def launch_states(self) -> list[Path]:
        """The `job_state.json` of every job a launcher has seen."""
        return sorted(self.path.glob(f"**/{JOB_STATE}"))

    def job_dirs(self) -> list[JobDir]:
        return [JobDir(path) for path in find_job_dirs(self.path)]


def find_job_dirs(root: Path) -> list[Path]:
    """Every directory at or under `root` that holds a job: a job.json, conversations or an error."""
    found = {path.parent for marker in JOB_MARKERS for path in root.rglob(marker)}
    return sorted(found)
