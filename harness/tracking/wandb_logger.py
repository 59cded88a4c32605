"""Mirrors one job into one W&B run: config, a history row per conversation, summary, transcripts.

The job's files stay the source of truth: every W&B call is guarded, and a W&B failure only
costs the W&B copy (the job ends with one line saying what was not logged).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import string
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.analysis.measures import fault_counts
from harness.episode.record import ConversationRecord
from harness.episode.variants import variant_label
from harness.errors import validated
from harness.extras import install_hint
from harness.job.guards import mask_argv
from harness.job.metrics import is_success
from harness.job.observers import JobObserver
from harness.store import (
    CONVERSATIONS,
    JOB_FILE,
    RESULTS,
    SUMMARY,
    DamagedFile,
    latest_by_key,
    read_conversations,
    read_json_object,
)
from harness.store.progress import wanted_records
from harness.tracking.conversation_rows import (
    TRANSCRIPT_COLUMNS,
    RunningAverages,
    conversation_metrics,
    transcript_row,
)
from harness.tracking.keys import CONVERSATION_PREFIX, Conversation, Running, Table, Throughput, anatomy_key
from harness.tracking.run_facts import mask_secrets, run_facts

log = logging.getLogger(__name__)

WANDB_SUBDIR = "wandb"
RUN_FILE = "run.json"
"""The run id of this job, kept so that a rerun (a requeued SLURM job) resumes the same run."""
ARTIFACT_FILES = (CONVERSATIONS, RESULTS, SUMMARY, JOB_FILE)


class WandbSettings(BaseModel):
    """The `wandb:` config block."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["offline", "online", "disabled"] = "offline"
    project: str = "tau-emotion"
    entity: str | None = None
    group: str | None = None
    tags: list[str] = []
    init_timeout_s: float = Field(90.0, gt=0)
    transcripts: bool = True
    artifact: bool = True


def wandb_settings(block: dict[str, Any]) -> WandbSettings:
    return validated(WandbSettings, block, prefix="wandb.")


def wandb_observers(
    block: dict[str, Any], config: dict[Any, Any], output_dir: Path, info: dict[str, Any]
) -> list[JobObserver]:
    """The W&B observer for this job, or none when disabled or when wandb is not installed."""
    settings = wandb_settings(block)
    if settings.mode == "disabled":
        return []
    if not wandb_installed():
        log.warning(
            "this job is not logged to W&B: %s, or set wandb.mode=disabled",
            install_hint("wandb", f"wandb.mode={settings.mode}"),
        )
        return []
    return [WandbObserver(settings, config, output_dir, info)]


def wandb_installed() -> bool:
    from importlib.util import find_spec

    try:
        return find_spec("wandb") is not None
    except ValueError:  # `sys.modules["wandb"] = None`: marked unimportable
        return False


def point_wandb_at(directory: Path) -> None:
    """Keep every file wandb writes (runs, staged artifacts, caches, settings) under `directory`."""
    root = directory / WANDB_SUBDIR
    os.environ["WANDB_DIR"] = str(directory)
    os.environ["WANDB_DATA_DIR"] = str(root / "data")
    os.environ["WANDB_CACHE_DIR"] = str(root / "cache")
    os.environ["WANDB_CONFIG_DIR"] = str(root / "config")
    os.environ.setdefault("WANDB_DISABLE_WEAVE", "true")  # else wandb advertises Weave when openai is loaded
    for path in (root / "data", root / "cache", root / "config"):
        path.mkdir(parents=True, exist_ok=True)


def run_name(info: dict[str, Any], seed: Any) -> str:
    variant = variant_label(info["variant"], str(info.get("intensity")), info.get("intensity") is not None)
    return f"{info['model']}/{info['env']}-{info['split']}/{variant}/seed{seed}"


def run_tags(info: dict[str, Any], extra: list[str]) -> list[str]:
    tags = [f"variant:{info['variant']}", f"model:{info['model']}", f"env:{info['env']}"]
    tags.append(f"backend:{info['backend']}")
    if info.get("plumbing_check"):
        tags.append("plumbing-check")
    return [tag[:64] for tag in (*tags, *extra)]


@contextlib.contextmanager
def _masked_argv() -> Iterator[None]:
    saved = sys.argv
    sys.argv = mask_argv(saved)
    try:
        yield
    finally:
        sys.argv = saved


def _new_run_id() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(12))


class WandbObserver:
    def __init__(
        self, settings: WandbSettings, config: dict[str, Any], output_dir: Path, info: dict[str, Any]
    ) -> None:
        self.settings = settings
        self.config = config
        self.output_dir = output_dir
        self.info = info
        self.state_dir = output_dir / WANDB_SUBDIR
        self._run: Any = None
        self._failure: str | None = None
        self._where = ""
        self._not_logged: list[str] = []
        self._logged: set[tuple[int, int, float]] = set()
        self._averages = RunningAverages()
        self._step = 0
        self._started = 0.0
        self._segment_conversations = 0
        self._segment_agent_tokens = 0

    # -- JobObserver -------------------------------------------------------------------------

    def on_start(self, info: dict[str, Any], total: int, already_done: int) -> None:
        self._started = time.perf_counter()
        run_id = self._run_id()
        self._load_logged_rows(run_id)
        try:
            with _masked_argv():  # wandb records the command line
                self._run = self._init_run(run_id)
        except Exception as error:
            self._fail("run init", error)
            return
        self._where = (
            f"run {self._run.id} at {self._run.url}"
            if self.settings.mode == "online"
            else f"offline run {self._run.id} in {self.state_dir} "
            f"(upload: python -m harness.sync_wandb {self.output_dir})"
        )
        self._backfill()

    def on_conversation(self, record: ConversationRecord) -> None:
        self._segment_conversations += 1
        usage = record["usage"]
        self._segment_agent_tokens += usage["agent_prompt_tokens"] + usage["agent_completion_tokens"]
        self._log_conversation(record)

    def on_retry_pass(self, number: int, passes: int, conversations: int) -> None:
        """Nothing to do: a redone conversation is logged as a row of its own when it ends."""

    def on_abort(self, error: BaseException) -> None:
        """Nothing to do: the rows logged so far are in the run's file, W&B's exit hook closes it,
        and the next attempt of the job resumes the same run."""

    def on_end(self, summary: dict[str, Any]) -> None:
        if self._run is not None:
            self._guard("summary", lambda: self._write_summary(summary))
        if self._run is not None and self.settings.transcripts:
            self._guard("transcripts table", self._log_transcripts)
        if self._run is not None and self.settings.artifact:
            self._guard("outputs artifact", self._log_artifact)
        if self._run is not None:
            self._guard("run finish", self._finish)
        self._run = None
        if self._failure is not None:
            lost = "this job" if "run init" in self._not_logged else ", ".join(self._not_logged)
            log.warning(
                "W&B: could not log %s (%s); the local outputs in %s are complete",
                lost,
                self._failure,
                self.output_dir,
            )
        elif self._where:
            log.info("W&B: %s", self._where)

    # -- W&B calls ---------------------------------------------------------------------------

    def _run_id(self) -> str:
        run_file = self.state_dir / RUN_FILE
        try:
            recorded = read_json_object(run_file) or {}
        except DamagedFile as error:
            log.warning("W&B: %s; this attempt starts a new run", error)
            recorded = {}
        if isinstance(recorded.get("id"), str):
            return recorded["id"]
        run_id = _new_run_id()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        run_file.write_text(json.dumps({"id": run_id}) + "\n")
        return run_id

    def _init_run(self, run_id: str) -> Any:
        point_wandb_at(self.output_dir)
        import wandb

        config = {**mask_secrets(self.config), "job": self.info, "run_facts": run_facts()}
        return wandb.init(
            project=self.settings.project,
            entity=self.settings.entity,
            group=self.settings.group or self.config.get("name"),
            job_type=self.info["env"],
            name=run_name(self.info, self.config.get("seed")),
            tags=run_tags(self.info, self.settings.tags),
            config=config,
            id=run_id,
            resume="allow",
            mode=self.settings.mode,
            dir=str(self.output_dir),
            reinit="create_new",
            settings=wandb.Settings(
                init_timeout=self.settings.init_timeout_s,
                console="off",
                quiet=True,
                silent=True,
                save_code=False,
            ),
        )

    def _log_conversation(self, record: ConversationRecord) -> None:
        if self._run is None:
            self._not_logged_conversation()
            return
        metrics = conversation_metrics(record)
        running = self._averages.add(metrics)
        row = {Conversation(key).key: value for key, value in metrics.items() if value is not None}
        row[Conversation.STARTED_AT.key] = record["started_at"]
        row.update({Running(key).key: value for key, value in running.items() if value is not None})
        step = self._step
        if not self._guard("conversation rows", lambda: self._run.log(row, step=step)):
            self._not_logged_conversation()
            return
        self._step += 1
        self._logged.add((record["task_id"], record["trial"], record["started_at"]))

    def _not_logged_conversation(self) -> None:
        if self._failure is not None and "conversation rows" not in self._not_logged:
            self._not_logged.append("conversation rows")

    def _load_logged_rows(self, run_id: str) -> None:
        """What earlier attempts of this job got into the run, read from its own local run files.

        wandb writes `run-<id>.wandb` in online and offline mode alike; rows a killed attempt never
        flushed are not there, so they are logged again, and no row is logged twice.
        """
        from harness.tracking.wandb_files import WandbFileError, read_run

        # one directory per attempt: `<mode>-run-<stamp>-<id>`, `-1`, `-2`... within a second (not `latest-run`)
        for path in sorted(self.state_dir.glob(f"*-{run_id}*/run-{run_id}.wandb")):
            try:
                rows = read_run(path).history
            except (WandbFileError, OSError):
                continue
            for row in rows:
                self._step = max(self._step, int(row["_step"]) + 1)
                if Conversation.STARTED_AT.key not in row:
                    continue
                metrics = {key.removeprefix(CONVERSATION_PREFIX): value for key, value in row.items()}
                self._logged.add((metrics["task_id"], metrics["trial"], metrics["started_at"]))
                self._averages.add(metrics)

    def _backfill(self) -> None:
        """Log conversations on disk that a previous attempt finished but never got into W&B."""
        records = latest_by_key(read_conversations(self.output_dir / CONVERSATIONS)).values()
        for record in sorted(records, key=lambda r: r["started_at"]):
            if (record["task_id"], record["trial"], record["started_at"]) not in self._logged:
                self._log_conversation(record)

    def _write_summary(self, summary: dict[str, Any]) -> None:
        elapsed = time.perf_counter() - self._started
        records = latest_by_key(read_conversations(self.output_dir / CONVERSATIONS)).values()
        self._run.summary.update(
            {
                **summary,
                **{anatomy_key(k): n for k, n in fault_counts(records).items()},
                Throughput.SEGMENT_S.key: elapsed,
                Throughput.SEGMENT_CONVERSATIONS.key: self._segment_conversations,
                Throughput.CONVERSATIONS_PER_S.key: self._segment_conversations / elapsed if elapsed else 0.0,
                Throughput.AGENT_TOKENS_PER_S.key: self._segment_agent_tokens / elapsed if elapsed else 0.0,
            }
        )

    def _job_records(self) -> list[ConversationRecord]:
        """The conversations the summary counts, in the order the job ran them."""
        return wanted_records(self.output_dir)

    def _log_transcripts(self) -> None:
        import wandb

        records = self._job_records()
        columns = list[str | int](TRANSCRIPT_COLUMNS)
        self._run.summary[Table.TRANSCRIPTS] = wandb.Table(
            columns=columns, data=[transcript_row(r) for r in records]
        )
        failed = [r for r in records if r["scored"] and not is_success(r["reward"])]
        self._run.summary[Table.FAILURES] = wandb.Table(
            columns=columns, data=[transcript_row(r) for r in failed]
        )

    def _log_artifact(self) -> None:
        import wandb

        artifact = wandb.Artifact(
            f"job-outputs-{self._run.id}",
            type="job-outputs",
            description=run_name(self.info, self.config.get("seed")),
            metadata={"job_name": self.info["job_name"], "variant": self.info["variant"]},
        )
        for name in ARTIFACT_FILES:
            path = self.output_dir / name
            if name == JOB_FILE and path.exists():  # the job's config, masked like the run's
                job = read_json_object(path) or {}
                if mask_secrets(job) != job:
                    path = self.state_dir / JOB_FILE
                    path.write_text(json.dumps(mask_secrets(job), indent=2))
            if path.exists():
                artifact.add_file(str(path), name=name)
        self._run.log_artifact(artifact)

    def _finish(self) -> None:
        import wandb

        self._run.finish()
        # `finish` returns before wandb-core has flushed the run file; stopping the service waits
        # for it, so the job's W&B files are complete when the job ends (the next init restarts it).
        wandb.teardown()

    def _guard(self, what: str, action: Any) -> bool:
        """Run one W&B call; the first failure stops W&B logging for this job, never the job."""
        try:
            action()
        except Exception as error:
            self._fail(what, error)
            return False
        return True

    def _fail(self, what: str, error: BaseException) -> None:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        self._failure = f"{what} failed: {type(error).__name__}: {first_line}"
        self._not_logged.append(what)
        log.debug("W&B %s failed", what, exc_info=error)
        run, self._run = self._run, None
        if run is not None:
            with contextlib.suppress(Exception):
                run.finish(exit_code=1)
