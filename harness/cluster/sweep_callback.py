"""Hydra callback that keeps a multirun's `manifest.json` up to date (see `harness.cluster.manifest`).

On the submitting machine it lists every job of the sweep before any starts; in each job it
records the job's state when it starts and ends, and recomputes the manifest.
"""

from __future__ import annotations

import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.config_loader import ConfigLoader
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import ConfigCompositionException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from harness.cluster.manifest import (
    PlannedJob,
    format_manifest,
    record_job_end,
    record_job_start,
    refresh_manifest,
)
from harness.errors import ExitCode, jobs_failed_exit_code

log = logging.getLogger(__name__)
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


class SweepManifest(Callback):
    def __init__(self) -> None:
        self._planned: set[str] = set()
        """This run's job directories (empty when they could not be listed in advance)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        missing = sorted(OmegaConf.missing_keys(config.hydra.launcher))
        if missing:  # Hydra turns a callback's exceptions into warnings; stop before submitting anything
            keys = " ".join(f"{key}=..." for key in missing)
            print(f"error: set {keys} on the command line or in conf/local/slurm.yaml", file=sys.stderr)
            sys.exit(2)
        sweep_dir = Path(str(config.hydra.sweep.dir))
        try:
            planned = planned_jobs(config)
        except ConfigCompositionException as error:  # e.g. a required `user/backend`: no job could start
            print(f"error: {one_line(error)}", file=sys.stderr)
            sys.exit(2)
        except Exception as error:  # the manifest must never stop a sweep
            log.warning("could not list the sweep's jobs in advance (%s); jobs will list themselves", error)
            planned = []
        self._planned = {job.dir for job in planned}
        refresh_manifest(sweep_dir, planned, command=sweep_command(config))

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.hydra.mode == RunMode.MULTIRUN:
            record_job_start(Path(config.hydra.runtime.output_dir))
            _refresh_quietly(config)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode == RunMode.MULTIRUN:
            succeeded = job_return.status == JobStatus.COMPLETED
            error = (
                None
                if succeeded
                else f"{type(job_return._return_value).__name__}: {job_return._return_value}"
            )
            record_job_end(Path(config.hydra.runtime.output_dir), succeeded, error)
            _refresh_quietly(config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        manifest = refresh_manifest(Path(str(config.hydra.sweep.dir)))
        log.info("%s", format_manifest(manifest))
        incomplete = [
            job
            for job in manifest["jobs"]
            if job["state"] == "incomplete" and (not self._planned or job["dir"] in self._planned)
        ]
        failed = [
            job
            for job in manifest["jobs"]
            if job["state"] == "failed" and (not self._planned or job["dir"] in self._planned)
        ]
        if failed:  # each was reported in one line as it ended
            sys.exit(jobs_failed_exit_code(len(failed)))
        if incomplete:  # every job returned, some with conversations left: this sweep is not done
            sys.exit(ExitCode.INCOMPLETE)


def one_line(error: ConfigCompositionException) -> str:
    """Hydra's "You must specify 'x', e.g, x=<OPTION>" with its option list on the same line."""
    first, *rest = str(error).splitlines()
    options = [line.strip() for line in rest if line.startswith("\t")]
    return f"{first} (options: {', '.join(options)})" if options else first


def _refresh_quietly(config: DictConfig) -> None:
    try:
        refresh_manifest(Path(str(config.hydra.sweep.dir)).absolute())
    except OSError as error:
        log.warning("could not update the sweep manifest: %s", error)


def planned_jobs(config: DictConfig) -> list[PlannedJob]:
    """The jobs the basic sweeper will launch, each with its directory (empty for other sweepers)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if config.hydra.sweeper.get("_target_") != BASIC_SWEEPER:
        return []
    params = config.hydra.sweeper.get("params") or {}
    arguments = [f"{key}={value}" for key, value in params.items()]
    arguments += list(config.hydra.overrides.task)
    loader = GlobalHydra.instance().config_loader()
    overrides = OverridesParser.create(config_loader=loader).parse_overrides(arguments)
    return [
        PlannedJob(dir=job_subdir(config, loader, job_overrides, num), overrides=list(job_overrides))
        for num, job_overrides in enumerate(BasicSweeper.split_arguments(overrides, None)[0])
    ]


def job_subdir(config: DictConfig, loader: ConfigLoader, overrides: Sequence[str], num: int) -> str:
    """The directory of job number `num` of the sweep, relative to the sweep directory."""
    job_config = loader.load_sweep_config(config, list(overrides))
    with open_dict(job_config.hydra.job):
        job_config.hydra.job.num = num
    return str(OmegaConf.select(job_config, "hydra.sweep.subdir"))


def sweep_command(config: DictConfig) -> str:
    """The command line that launches this sweep again."""
    hydra_overrides = [o for o in config.hydra.overrides.hydra if not o.startswith("hydra.mode=")]
    arguments = [*hydra_overrides, *config.hydra.overrides.task]
    return shlex.join(["python", "-m", "harness", "-m", *arguments])
