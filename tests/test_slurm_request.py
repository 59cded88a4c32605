"""Reading what `sinfo` and `scontrol show partition` print, for the check before a SLURM submission."""

from __future__ import annotations

import pytest

from harness.cluster.slurm_launcher import gres_gpus, slurm_minutes


@pytest.mark.parametrize(
    ("limit", "minutes"),
    [
        ("UNLIMITED", None),
        ("30", 30),
        ("04:00:00", 240),
        ("1-00:00:00", 1440),
        ("2-12", 3600),
        ("1-02:30", 1590),
        ("10:30", 11),  # MM:SS, a started minute counts
    ],
)
def test_slurm_time_limits_in_minutes(limit: str, minutes: int | None) -> None:
    assert slurm_minutes(limit) == minutes


@pytest.mark.parametrize(
    ("gres", "gpus"),
    [("(null)", 0), ("gpu:1", 1), ("gpu:a100:4(S:0-1)", 4), ("gpu:t4:2,gpu:a10:1", 3), ("mps:100", 0)],
)
def test_gpus_of_a_node_from_its_gres(gres: str, gpus: int) -> None:
    assert gres_gpus(gres) == gpus
