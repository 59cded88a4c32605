"""Launcher presets, sweep definitions and the sweep manifest, without a scheduler."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from hydra_plugins.hydra_submitit_launcher.config import LocalQueueConf, SlurmQueueConf
from omegaconf import OmegaConf

from harness.cluster.manifest import format_manifest, record_job_end, record_job_start, refresh_manifest
from harness.cluster.sweep_callback import planned_jobs, sweep_command
from harness.episode.variants import variant_kinds
from harness.store import ConversationLog, read_jsonl_records
from tests.helpers import run_module
from tests.report_synthetic import record

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
SWEEPS = sorted(path.stem for path in (CONF / "sweep").glob("*.yaml"))
VARIANTS = sorted(path.stem for path in (CONF / "variant").glob("*.yaml"))
UNDOSED = {name for name, kind in variant_kinds().items() if kind in ("control", "baseline", "placebo")}
"""One persona at every intensity (or none): one directory each."""
SWEEP_NEEDS = {"model_comparison": ["user/backend=openai", "model@user.backend.model=gpt-4o"]}
"""What a ready sweep requires on the command line."""


@pytest.fixture
def hydra_conf() -> Iterator[None]:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        yield


def test_slurm_preset_lists_exactly_the_plugins_keys() -> None:
    preset = OmegaConf.load(CONF / "hydra" / "launcher" / "slurm.yaml")
    schema = {field.name for field in dataclasses.fields(SlurmQueueConf)}
    assert (
        set(preset) - {"defaults", "engine_death_requeues"} == schema
    )  # that one is harness.cluster.launchers'


def test_local_preset_keys_belong_to_the_plugin() -> None:
    preset = OmegaConf.load(CONF / "hydra" / "launcher" / "local.yaml")
    schema = {field.name for field in dataclasses.fields(LocalQueueConf)}
    assert set(preset) - {"defaults"} <= schema


@pytest.mark.usefixtures("hydra_conf")
@pytest.mark.parametrize("sweep", SWEEPS)
@pytest.mark.parametrize("launcher", ["slurm", "local"])
def test_every_sweep_composes_with_every_launcher(sweep: str, launcher: str) -> None:
    overrides = [f"+sweep={sweep}", f"hydra/launcher={launcher}", *SWEEP_NEEDS.get(sweep, [])]
    if launcher == "slurm":
        overrides.append("hydra.launcher.partition=gpu")
    cfg = compose("config", overrides, return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    assert params.variant == "glob(*)"  # every variant file, neutral included, without editing the sweep
    expected_envs = (
        ["tau2_retail", "tau2_airline", "tau2_telecom", "tau2_banking"]
        if sweep.startswith("tau2")
        else ["retail", "airline"]
    )
    assert params.env.split(",") == expected_envs
    assert cfg.name == sweep.replace("_", "-")
    assert cfg.hydra.launcher.name == f"tau-emotion-{cfg.name}"


@pytest.mark.usefixtures("hydra_conf")
def test_slurm_resources_follow_the_model_and_the_command_line() -> None:
    base = ["hydra/launcher=slurm", "hydra.launcher.partition=gpu"]
    default = compose("config", base, return_hydra_config=True).hydra.launcher
    assert (default.gpus_per_node, default.partition, default.max_num_timeout) == (0, "gpu", 3)  # the oracle
    big = compose("config", [*base, "backend=vllm", "model=qwen2.5-72b"], return_hydra_config=True)
    assert big.hydra.launcher.gpus_per_node == big.model.gpus == 4
    unnamed = compose("config", [*base, "~model.gpus"], return_hydra_config=True).hydra.launcher
    assert unnamed.gpus_per_node == 1
    custom = compose(
        "config",
        [*base, "hydra.launcher.timeout_min=720", "hydra.launcher.account=lab"],
        return_hydra_config=True,
    ).hydra.launcher
    assert (custom.timeout_min, custom.account) == (720, "lab")
    missing = compose("config", ["hydra/launcher=slurm"], return_hydra_config=True).hydra.launcher
    assert OmegaConf.is_missing(missing, "partition")


@pytest.mark.usefixtures("hydra_conf")
def test_the_basic_launcher_stays_the_default() -> None:
    cfg = compose("config", [], return_hydra_config=True)
    assert cfg.hydra.launcher._target_.endswith("BasicLauncher")


@pytest.mark.usefixtures("hydra_conf")
def test_the_manifest_plans_one_directory_per_combination() -> None:
    cfg = (
        GlobalHydra.instance()
        .config_loader()
        .load_configuration(
            "config", ["+sweep=smoke", "seed=0,1", "variant=control,anger"], run_mode=RunMode.MULTIRUN
        )
    )
    jobs = planned_jobs(cfg)
    dirs = sorted(job.dir for job in jobs)
    expected = sorted(
        f"oracle/{env}-test/{variant}/seed{seed}"
        for env in ("retail", "airline")
        for variant in ("control", "anger-medium")
        for seed in (0, 1)
    )
    assert dirs == expected
    first = next(job for job in jobs if job.dir == "oracle/retail-test/anger-medium/seed1")
    assert {"env=retail", "variant=anger", "seed=1", "+sweep=smoke"} <= set(first.overrides)
    assert sweep_command(cfg).startswith("python -m harness -m ")


def test_manifest_states_come_from_the_job_directories(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    from harness.cluster.manifest import PlannedJob

    planned = [
        PlannedJob(f"m/{name}", [f"variant={name}"])
        for name in ("done", "failed", "live", "dead", "new", "partial")
    ]
    refresh_manifest(sweep, planned, command="python -m harness -m variant=a,b")
    for name in ("done", "failed", "live", "dead", "partial"):
        (sweep / "m" / name).mkdir(parents=True)
        record_job_start(sweep / "m" / name)
    (sweep / "m" / "done" / "conversations.jsonl").write_text(json.dumps(record("x", "a", 0, 0, True)) + "\n")
    (sweep / "m" / "done" / "summary.json").write_text(json.dumps({"average_reward": 0.5, "scored": 4}))
    record_job_end(sweep / "m" / "done", succeeded=True)
    partial = {
        "state": "incomplete",
        "average_reward": 1.0,
        "missing": 3,
        "missing_by_reason": {"infra_error": 2, "harness_error": 0, "not_run": 1},
        "user_errors": 1,
    }
    (sweep / "m" / "partial" / "summary.json").write_text(json.dumps(partial))
    record_job_end(sweep / "m" / "partial", succeeded=True)
    (sweep / "m" / "failed" / "error.txt").write_text("RuntimeError: boom\n\nTraceback ...\n")
    record_job_end(sweep / "m" / "failed", succeeded=False, error="RuntimeError: boom")
    (sweep / "m" / "dead" / "conversations.jsonl").write_text(
        json.dumps(record("x", "a", 0, 0, True)) + "\n{"
    )
    dead_pid = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    state = json.loads((sweep / "m" / "dead" / "job_state.json").read_text())
    state.update(pid=int(dead_pid.stdout), slurm_job_id=None)
    (sweep / "m" / "dead" / "job_state.json").write_text(json.dumps(state))
    live = json.loads((sweep / "m" / "live" / "job_state.json").read_text())
    assert live["pid"] == os.getpid()
    if live["slurm_job_id"]:
        pytest.skip("running inside a SLURM job: liveness would be asked of squeue")

    manifest = refresh_manifest(sweep)
    states = {job["dir"]: job for job in manifest["jobs"]}
    assert {rel: job["state"] for rel, job in states.items()} == {
        "m/dead": "incomplete",
        "m/done": "complete",
        "m/failed": "failed",
        "m/live": "running",
        "m/new": "missing",
        "m/partial": "incomplete",
    }
    assert manifest["counts"] == {
        "complete": 1,
        "accepted_incomplete": 0,
        "incomplete": 2,
        "failed": 1,
        "damaged": 0,
        "running": 1,
        "pending": 0,
        "missing": 1,
    }
    assert states["m/partial"]["missing_by_reason"] == partial["missing_by_reason"]
    assert states["m/partial"]["user_errors"] == 1
    assert states["m/done"]["average_reward"] == 0.5
    assert states["m/failed"]["error"] == "RuntimeError: boom"
    assert states["m/dead"]["conversations_on_disk"] == 1 and "interrupted" in states["m/dead"]["note"]
    assert states["m/new"]["overrides"] == ["variant=new"]
    assert json.loads((sweep / "manifest.json").read_text())["counts"] == manifest["counts"]
    text = format_manifest(manifest)
    assert "6 jobs: 1 complete, 2 incomplete, 1 failed, 1 running, 1 missing" in text
    assert "m/partial  3 conversations missing (2 infra_error, 1 not_run); 1 user_error" in text
    assert text.endswith("python -m harness -m variant=a,b")


def test_status_command_exit_status_says_whether_all_are_done(tmp_path: Path) -> None:
    job = tmp_path / "m" / "a"
    job.mkdir(parents=True)
    record_job_start(job)
    (job / "conversations.jsonl").write_text(json.dumps(record("x", "a", 0, 0, True)) + "\n")
    (job / "summary.json").write_text(json.dumps({"average_reward": 1.0, "scored": 1}))
    record_job_end(job, succeeded=True)
    status = run_module("harness.sweep", str(tmp_path))
    assert status.returncode == 0 and "1 jobs: 1 complete" in status.stdout
    missing = run_module("harness.sweep", str(tmp_path / "nope"))
    assert missing.returncode == 2 and missing.stderr.strip().startswith("error:")


def test_a_sweep_without_partition_stops_with_one_line() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "-m",
            "+sweep=smoke",
            "hydra/launcher=slurm",
            "name=no-partition",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HYDRA_FULL_ERROR": "0"},
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: set hydra.launcher.partition=... on the command line or in conf/local/slurm.yaml"
    )


def test_an_interrupted_line_is_dropped_and_appends_stay_whole(tmp_path: Path) -> None:
    log_path = tmp_path / "conversations.jsonl"
    log_path.write_bytes(b'{"task_id": 0, "trial": 0}\n{"task_id": 1, "tri')
    with ConversationLog(tmp_path, schema=None) as log:
        log.append({"task_id": 1, "trial": 0, "text": "x" * 100_000})
    assert [(r["task_id"], r["trial"]) for r in read_jsonl_records(log_path).records] == [(0, 0), (1, 0)]
    assert log_path.read_bytes().count(b"\n") == 2


@pytest.mark.usefixtures("hydra_conf")
@pytest.mark.parametrize("sweep", SWEEPS)
def test_every_ready_sweep_plans_every_variant_file(sweep: str) -> None:
    loader = GlobalHydra.instance().config_loader()
    cfg = loader.load_configuration(
        "config", [f"+sweep={sweep}", *SWEEP_NEEDS.get(sweep, [])], run_mode=RunMode.MULTIRUN
    )
    planned = {job.dir.split("/")[2] for job in planned_jobs(cfg)}
    levels = str(cfg.hydra.sweeper.params.get("variant.intensity", "medium")).split(",")
    dynamics = str(cfg.hydra.sweeper.params.get("variant/dynamics", "static")).split(",")
    suffixes = ["" if d == "static" else f"-{d}" for d in dynamics]
    assert "neutral" in VARIANTS
    assert planned == {
        label
        for name in VARIANTS
        for label in (
            [name]
            if name in UNDOSED
            else [f"{name}-{level}{suffix}" for level in levels for suffix in suffixes]
        )
    }


@pytest.mark.usefixtures("hydra_conf")
def test_an_intensity_sweep_gives_each_dose_its_directory_and_one_to_control_and_neutral() -> None:
    loader = GlobalHydra.instance().config_loader()
    cfg = loader.load_configuration(
        "config",
        ["env=retail", "variant=control,neutral,anger", "variant.intensity=low,medium,high"],
        run_mode=RunMode.MULTIRUN,
    )
    dirs = [job.dir for job in planned_jobs(cfg)]
    assert len(dirs) == 9
    assert sorted(set(dirs)) == [
        f"oracle/retail-test/{label}/seed0"
        for label in ("anger-high", "anger-low", "anger-medium", "control", "neutral")
    ]


def test_model_comparison_refuses_to_run_without_one_user_model(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable, "-m", "harness", "-m", "+sweep=model_comparison", "model=gpt-4o,gpt-4o-mini",
            "backend=openai", f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: user.same_as_agent=false (the study sweeps set it) and no user.backend: ")
    assert not (tmp_path / "sweep").exists()


@pytest.mark.usefixtures("hydra_conf")
@pytest.mark.parametrize(
    ("user", "expected"), [([], "gpt-4o"), (["model@user.backend.model=gpt-4o-mini"], "gpt-4o-mini")]
)
def test_model_comparison_gives_every_agent_model_the_same_user(user: list[str], expected: str) -> None:
    loader = GlobalHydra.instance().config_loader()
    overrides = [
        "+sweep=model_comparison",
        "user/backend=openai",
        *user,
        "backend=openai",
        "model=gpt-4o,gpt-4o-mini",
    ]
    cfg = loader.load_configuration("config", overrides, run_mode=RunMode.MULTIRUN)
    jobs = [loader.load_sweep_config(cfg, job.overrides) for job in planned_jobs(cfg)]
    assert {job.model.name for job in jobs} == {"gpt-4o", "gpt-4o-mini"}
    assert {job.user.backend.model.name for job in jobs} == {expected}
