"""Sweep launchers through submitit that give each job the resources of its own config.

hydra-submitit-launcher resolves its settings once, against the sweep's base config, where the
swept values are not set: `model=a,b` would ask for the GPUs of the default model (none) for
every job. These launchers compose each job's config as the job itself will, resolve
`hydra.launcher` in it (so `gpus_per_node: ${oc.select:model.gpus,1}` reads the job's model),
and submit the jobs with equal settings together, one job array per distinct setting.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import BaseSubmititLauncher
from omegaconf import DictConfig, OmegaConf

from harness.cluster.manifest import record_job_submitted
from harness.cluster.slurm_launcher import OnceASweep, refresh_quietly, request_problem, watch_pending
from harness.cluster.sweep_callback import job_subdir
from harness.cluster.weights import engines_problem, job_weights_problem, weights_environment
from harness.errors import ExitCode
from harness.store import ERROR_FILE

log = logging.getLogger(__name__)

VLLM_TARGET = "harness.backends.vllm.VLLMBackend"
OWN_KEYS = ("_target_", "engine_death_requeues")
"""Keys of `hydra.launcher` this module reads, not submitit."""


def vllm_gpus_needed(cfg: DictConfig) -> int:
    """GPUs the job's vLLM engines need (their tensor-parallel size); 0 without vLLM."""
    needed = 0
    for backend in (cfg.backend, OmegaConf.select(cfg, "user.backend")):
        if isinstance(backend, DictConfig) and backend.get("_target_") == VLLM_TARGET:
            needed = max(needed, int(OmegaConf.select(backend, "model.tensor_parallel_size", default=1) or 1))
    return needed


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"[:300]


def failure_line(result: JobReturn, job_dir: Path | None) -> str:
    """`<job dir>/error.txt: <its first line>`, or the exception's first line where there is none."""
    where = (job_dir or Path(str(result.working_dir or "."))) / ERROR_FILE
    try:
        first = where.read_text(errors="replace").strip().splitlines()[0]
    except (OSError, IndexError):
        return _first_line(result._return_value)
    return f"{where}: {first[:300]}"


class PerJobResources(BaseSubmititLauncher):
    """hydra-submitit-launcher's launcher, each job submitted with its own resolved settings."""

    refuse_without_gpus = False

    def __init__(self, engine_death_requeues: int = 0, **params: Any) -> None:
        super().__init__(**params)
        self.engine_death_requeues = engine_death_requeues

    def job_params(self, overrides: Sequence[str], num: int) -> dict[str, Any]:
        """This job's launcher settings, resolved in its own config."""
        assert self.hydra_context is not None and self.config is not None
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        params = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
        assert isinstance(params, dict)
        for key in OWN_KEYS:
            params.pop(key, None)
        parts = {
            key: OmegaConf.to_container(cfg[key], resolve=True)
            for key in ("backend", "user", "weights")
            if key in cfg
        }
        problem = engines_problem(parts) or job_weights_problem(parts)
        if problem:  # before anything is submitted
            print(f"error: job #{num}: {problem}", file=sys.stderr)
            sys.exit(ExitCode.CONFIG)
        if self._EXECUTOR == "slurm":
            weights = OmegaConf.to_container(cfg.weights, resolve=True) if "weights" in cfg else {}
            assert isinstance(weights, dict)
            exports = [f"export {k}={shlex.quote(v)}" for k, v in weights_environment(weights, True).items()]
            params["setup"] = [*(params.get("setup") or []), *exports]
        needed = vllm_gpus_needed(cfg)
        have = int(params.get("gpus_per_node") or 0)
        if self.refuse_without_gpus and needed > have and not params.get("gres"):
            print(
                f"error: job #{num} (model {OmegaConf.select(cfg, 'model.name')}) runs backend=vllm with "
                f"tensor_parallel_size={needed} but would ask SLURM for hydra.launcher.gpus_per_node={have}; "
                "set `gpus` in its model preset or hydra.launcher.gpus_per_node",
                file=sys.stderr,
            )
            sys.exit(ExitCode.CONFIG)
        return {str(key): value for key, value in params.items()}

    def executor(self, params: dict[str, Any]) -> Any:
        """A submitit executor with these settings (as hydra-submitit-launcher builds it)."""
        import submitit

        init_keys = {"max_num_timeout"}
        executor = submitit.AutoExecutor(
            cluster=self._EXECUTOR,
            folder=params["submitit_folder"],
            **{f"{self._EXECUTOR}_{key}": value for key, value in params.items() if key in init_keys},
        )
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(
            **{
                key if key in base else f"{self._EXECUTOR}_{key}": value
                for key, value in params.items()
                if key not in init_keys | {"submitit_folder"}
            }
        )
        return executor

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        quiet = OnceASweep()  # submitit repeats its sacct warning on every poll
        submitit_log = logging.getLogger("submitit")
        submitit_log.addFilter(quiet)
        try:
            return self._launch(job_overrides, initial_job_idx)
        finally:
            submitit_log.removeFilter(quiet)

    def _launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        assert self.config is not None
        groups: dict[str, tuple[dict[str, Any], list[int]]] = {}
        for index, overrides in enumerate(job_overrides):
            params = self.job_params(overrides, initial_job_idx + index)
            key = json.dumps(params, sort_keys=True, default=str)
            groups.setdefault(key, (params, []))[1].append(index)
        if self._EXECUTOR == "slurm":
            for params, _ in groups.values():
                problem = request_problem(params)
                if problem:  # before anything is submitted
                    print(f"error: {problem}", file=sys.stderr)
                    sys.exit(ExitCode.CONFIG)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log.info(f"Submitit '{self._EXECUTOR}' sweep output dir : {sweep_dir}")
        submitted: list[tuple[int, Any]] = []
        for params, indices in groups.values():
            resources = ", ".join(
                f"{key}={params[key]}"
                for key in ("gpus_per_node", "cpus_per_task", "mem_gb")
                if key in params
            )
            calls = []
            for index in indices:
                num = initial_job_idx + index
                log.info(f"\t#{num} : {' '.join(filter_overrides(job_overrides[index]))} ({resources})")
                calls.append(
                    (
                        list(job_overrides[index]),
                        "hydra.sweep.dir",
                        num,
                        f"job_id_for_{num}",
                        Singleton.get_state(),
                    )
                )
            jobs = self.executor(params).map_array(self, *zip(*calls, strict=True))
            submitted.extend(zip(indices, jobs, strict=True))
        dirs: list[str] = []
        if self._EXECUTOR == "slurm":
            dirs = self._record_submitted(submitted, job_overrides, initial_job_idx, sweep_dir)
            watch_pending([job for _, job in submitted], dirs, sweep_dir)
        results: list[JobReturn | None] = [None] * len(job_overrides)
        for position, (index, job) in enumerate(submitted):
            job_dir = sweep_dir / dirs[position] if position < len(dirs) else None
            try:
                result = job.results()[0]
            except Exception as error:  # submitit could not get the job's result (killed, lost)
                print(
                    f"error: job #{initial_job_idx + index} (SLURM {job.job_id}) did not finish: "
                    f"{_first_line(error)}",
                    file=sys.stderr,
                )
                continue
            if result.status == JobStatus.FAILED:
                print(
                    f"error: job #{initial_job_idx + index} failed: {failure_line(result, job_dir)}",
                    file=sys.stderr,
                )
                # reported in one line here and as failed in the manifest: the sweep's exit status counts it
                result.status, result._return_value = JobStatus.COMPLETED, None
            results[index] = result
        return [result for result in results if result is not None]

    def _record_submitted(
        self,
        submitted: Sequence[tuple[int, Any]],
        job_overrides: Sequence[Sequence[str]],
        first: int,
        sweep_dir: Path,
    ) -> list[str]:
        """Each SLURM job as `pending` in the sweep manifest, with its SLURM id; returns the job dirs."""
        assert self.config is not None and self.hydra_context is not None
        dirs = []
        for index, job in submitted:
            number = first + index
            try:
                rel = job_subdir(self.config, self.hydra_context.config_loader, job_overrides[index], number)
                record_job_submitted(sweep_dir / rel, str(job.job_id))
            except Exception as error:  # the manifest must never stop a sweep
                log.warning("could not record SLURM job %s in the manifest: %s", job.job_id, error)
                rel = f"#{number}"
            dirs.append(rel)
        refresh_quietly(sweep_dir)
        return dirs
