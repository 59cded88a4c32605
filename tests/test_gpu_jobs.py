"""Each job of a sweep asks SLURM for the GPUs of its own model, and a vLLM job never asks for none.

The sweeps run the oracle backend on the toy domain (no model loads), so the GPU count comes
from the model preset alone; the real local SLURM (`bash .ci/slurm-up.sh`, one fake GPU) takes
the jobs, and submitit's submission scripts show what `sbatch` got.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

from tests.helpers import TOY
from tests.test_slurm import LAUNCHER, SWEEP_TIMEOUT_S, _why_not

ROOT = Path(__file__).resolve().parents[1]

needs_submitit = pytest.mark.skipif(
    find_spec("hydra_plugins.hydra_submitit_launcher") is None,
    reason="hydra-submitit-launcher is not installed (`pip install -e '.[slurm]'`)",
)


def sweep(
    sweep_dir: Path, *overrides: str, timeout_s: int = SWEEP_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "-m",
            *LAUNCHER,
            f"name=gpujobs-{os.getpid()}",
            f"hydra.sweep.dir={sweep_dir}",
            *TOY,
            "env.tasks=[0]",
            *overrides,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s + 30,
        env={**os.environ, "HYDRA_FULL_ERROR": "0"},
    )


def sbatch_gpus(sweep_dir: Path, slurm_job_id: str) -> int:
    """`--gpus-per-node` in the sbatch script submitit wrote for this job (or its array)."""
    first = slurm_job_id.split("_")[0]
    script = (sweep_dir / ".submitit" / first / f"{first}_submission.sh").read_text()
    found = re.findall(r"^#SBATCH --gpus-per-node=(\d+)$", script, flags=re.MULTILINE)
    assert len(found) == 1, script
    return int(found[0])


@needs_submitit
def test_a_vllm_job_that_would_get_no_gpu_is_refused_before_anything_is_submitted(tmp_path: Path) -> None:
    result = sweep(
        tmp_path / "refused", "backend=vllm", "model=qwen2.5-7b,oracle", "weights.check=false", timeout_s=60
    )  # no weights here: the GPU check is the one under test
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        "error: job #1 (model oracle) runs backend=vllm with tensor_parallel_size=1 but would ask SLURM "
        "for hydra.launcher.gpus_per_node=0; set `gpus` in its model preset or hydra.launcher.gpus_per_node"
    )
    assert not (tmp_path / "refused" / ".submitit").exists()


@pytest.mark.slurm
@pytest.mark.skipif(_why_not is not None, reason=_why_not or "")
def test_each_job_of_a_model_sweep_asks_for_the_gpus_of_its_own_model(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "models"
    # three jobs, two GPU counts: the two oracle jobs form one array, the qwen job another
    done = sweep(sweep_dir, "backend=oracle", "model=oracle,qwen2.5-7b", "variant=control,anger")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    jobs = json.loads((sweep_dir / "manifest.json").read_text())["jobs"]
    assert len(jobs) == 4 and all(job["state"] == "complete" for job in jobs)
    got = {job["dir"]: sbatch_gpus(sweep_dir, job["slurm_job_id"]) for job in jobs}
    assert got == {
        "oracle/toy-test/control/seed0": 0,
        "oracle/toy-test/anger-medium/seed0": 0,
        "qwen2.5-7b-instruct/toy-test/control/seed0": 1,
        "qwen2.5-7b-instruct/toy-test/anger-medium/seed0": 1,
    }
    for job in jobs:  # each job ran the model of its own directory
        summary = json.loads((sweep_dir / job["dir"] / "summary.json").read_text())
        assert job["dir"].startswith(summary["model"] + "/")
