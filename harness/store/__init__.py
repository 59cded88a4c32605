"""The job directory and everything in it: the contract between running a study and reading it.

`layout` names every file (`JobDir`, `SweepDir`), `files` reads and writes whole JSON files,
`jsonl` is the one append log and tolerant reader (one damage policy for every log),
`conversations` and `judgments` are the two logs, `models` types `job.json` and `summary.json`,
`progress` says how far a job got and its one `job_state()`. `conversations.jsonl` is the
source of truth; `summary.json` and the environment's results export derive from it.
Every reader of a job (report, judge, viewer, manifest, W&B, cost) goes through here.
"""

from harness.store.conversations import ConversationLog
from harness.store.files import DamagedFile, read_json_object, read_model, read_model_or_none, write_json
from harness.store.jsonl import AppendLog, BadLine, JsonlRead, quarantined_count, read_jsonl_records
from harness.store.layout import (
    CONVERSATIONS,
    ERROR_FILE,
    JOB_FILE,
    MANIFEST,
    QUARANTINE_SUFFIX,
    RESULTS,
    SUMMARY,
    TAU2_RESULTS,
    JobDir,
    SweepDir,
    find_job_dirs,
)
from harness.store.models import JobFile, Key, Summary
from harness.store.progress import (
    STATES,
    JobProgress,
    JobStatus,
    State,
    job_progress,
    job_state,
    latest_by_key,
    read_conversations,
    read_job_file,
    read_summary,
)

__all__ = [
    "CONVERSATIONS",
    "ERROR_FILE",
    "JOB_FILE",
    "MANIFEST",
    "QUARANTINE_SUFFIX",
    "RESULTS",
    "STATES",
    "SUMMARY",
    "TAU2_RESULTS",
    "AppendLog",
    "BadLine",
    "ConversationLog",
    "DamagedFile",
    "JobDir",
    "JobFile",
    "JobProgress",
    "JobStatus",
    "JsonlRead",
    "Key",
    "State",
    "Summary",
    "SweepDir",
    "find_job_dirs",
    "job_progress",
    "job_state",
    "latest_by_key",
    "quarantined_count",
    "read_conversations",
    "read_job_file",
    "read_json_object",
    "read_jsonl_records",
    "read_model",
    "read_model_or_none",
    "read_summary",
    "write_json",
]
