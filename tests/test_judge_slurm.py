"""The judge sent through the real SLURM launcher, as on a GPU node (`bash .ci/slurm-up.sh` starts one here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.store.layout import JUDGMENTS_DIR
from tests.helpers import read_jsonl
from tests.judge_support import SCRIPTED_JUDGE, judge_cli, oracle_sweep
from tests.test_slurm import LAUNCHER, NO_GPU, _why_not

pytestmark = [pytest.mark.slurm, pytest.mark.skipif(_why_not is not None, reason=_why_not or "")]


def test_the_judge_runs_as_a_slurm_job(tmp_path: Path) -> None:
    jobs = oracle_sweep(tmp_path, ("control", "anger"))
    result = judge_cli([str(tmp_path), "-m", *LAUNCHER, NO_GPU, *SCRIPTED_JUDGE], timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    logs = list((tmp_path / ".judge").glob("multirun-*/.submitit/*/*_log.out"))
    assert logs, "no SLURM job log: the judge did not run through the launcher"
    for job in jobs:
        (path,) = (job / JUDGMENTS_DIR).glob("*.jsonl")
        assert len(read_jsonl(path)) == 5
