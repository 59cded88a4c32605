"""What the SLURM launcher asks SLURM: whether a request can run at all, and why jobs wait.

Before submitting, a request that no node of the partition can meet (CPUs, memory, GPUs,
nodes, time) stops the sweep with one line naming the setting to change. After submitting, each
job's state is recorded as `pending` with its SLURM job id, and while jobs wait their SLURM
reason (`squeue %r`) is logged when it changes and shown in the manifest.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.cluster.manifest import refresh_manifest, slurm_queue

log = logging.getLogger(__name__)

POLL_S = 5.0
"""How often the submitting command asks SLURM about jobs that wait."""
STUCK_REASONS = {
    "PartitionConfig": "cpus_per_task, mem_gb or gpus_per_node",
    "PartitionNodeLimit": "nodes",
    "PartitionTimeLimit": "timeout_min",
    "ReqNodeNotAvail": "partition or exclude",
    "InvalidQOS": "qos",
    "InvalidAccount": "account",
}
"""Reasons a job waits that do not clear by themselves, and the launcher settings to change."""


@dataclass(frozen=True)
class Node:
    name: str
    cpus: int
    memory_mb: int
    gpus: int


def watch_pending(jobs: Sequence[Any], dirs: Sequence[str], sweep_dir: Path) -> None:
    """Until every job ended: log each waiting job's SLURM reason when it changes."""
    reported: dict[str, str] = {}
    while not all(job.done() for job in jobs):
        queue = slurm_queue() or {}
        changed = False
        for job, rel in zip(jobs, dirs, strict=True):
            job_id = str(job.job_id)
            state, reason = queue.get(job_id, ("", ""))
            reason = reason if reason and reason not in ("None", "(null)") else "unknown"
            if state == "PENDING" and reported.get(job_id) != reason:
                hint = STUCK_REASONS.get(reason)
                log.log(
                    logging.WARNING if hint else logging.INFO,
                    "SLURM job %s (%s) is pending: %s%s",
                    job_id,
                    rel,
                    reason,
                    f" (it will not start as asked: change hydra.launcher.{hint})" if hint else "",
                )
                reported[job_id], changed = reason, True
            elif state != "PENDING" and job_id in reported:
                del reported[job_id]
                changed = True
        if changed:
            refresh_quietly(sweep_dir)
        time.sleep(POLL_S)


class OnceASweep(logging.Filter):
    """Drops submitit's "Bypassing sacct error" warnings, saying once a sweep, in one line, why.

    Without slurmdbd every poll repeats it (through each of its handlers); the jobs' results still
    come back through their files.
    """

    def __init__(self) -> None:
        super().__init__()
        self.seen = False

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "Bypassing sacct error" not in message:
            return True
        if not self.seen:
            self.seen = True
            said = " ".join(message.split("Bypassing sacct error", 1)[1].split())[:200]
            log.warning(
                "sacct is not available here (%s); job states come from squeue and the jobs' files", said
            )
        return False


def refresh_quietly(sweep_dir: Path) -> None:
    try:
        refresh_manifest(sweep_dir)
    except OSError as error:
        log.warning("could not update the sweep manifest: %s", error)


def request_problem(params: dict[str, Any]) -> str | None:
    """One line saying which setting no node of the partition can meet, or None (also without SLURM)."""
    partition = params.get("partition")
    if not partition or shutil.which("sinfo") is None:
        return None
    nodes = partition_nodes(str(partition))
    if nodes is None:
        return None
    if not nodes:
        known = _run(["sinfo", "--noheader", "--format=%R"]) or ""
        names = sorted({name.strip() for name in known.split() if name.strip()})
        return (
            f"hydra.launcher.partition={partition}: SLURM has no such partition (it has: {', '.join(names)})"
        )
    limits = partition_limits(str(partition))
    cpus = int(params.get("cpus_per_task") or 1) * int(params.get("tasks_per_node") or 1)
    if params.get("cpus_per_gpu") and params.get("gpus_per_node"):
        cpus = max(cpus, int(params["cpus_per_gpu"]) * int(params["gpus_per_node"]))
    wanted = {  # setting: (asked, what each node has room for, how to show that room)
        "cpus_per_task": (
            cpus,
            [min(n.cpus, limits.get("MaxCPUsPerNode", n.cpus)) for n in nodes],
            "{} CPUs",
        ),
        "mem_gb": (
            int(float(params.get("mem_gb") or 0) * 1024),
            [min(n.memory_mb, limits.get("MaxMemPerNode", n.memory_mb)) for n in nodes],
            "{} MB",
        ),
        "gpus_per_node": (int(params.get("gpus_per_node") or 0), [n.gpus for n in nodes], "{} GPUs"),
    }
    timeout_min = int(params.get("timeout_min") or 0)
    if "MaxTime" in limits and timeout_min > limits["MaxTime"]:
        return (
            f"hydra.launcher.timeout_min={timeout_min}: partition {partition} allows at most "
            f"{limits['MaxTime']} minutes; lower hydra.launcher.timeout_min (jobs out of time are "
            "requeued and resume, up to max_num_timeout times)"
        )
    requested_nodes = int(params.get("nodes") or 1)
    if requested_nodes > min(len(nodes), limits.get("MaxNodes", len(nodes))):
        return (
            f"hydra.launcher.nodes={requested_nodes}: partition {partition} has {len(nodes)} node(s); "
            f"set hydra.launcher.nodes to at most {len(nodes)}"
        )
    fits = [all(asked <= room[i] for asked, room, _ in wanted.values()) for i in range(len(nodes))]
    if sum(fits) >= requested_nodes:
        return None
    keys = [key for key, (asked, room, _) in wanted.items() if asked > max(room)]
    keys = keys or [key for key, (asked, _, _) in wanted.items() if asked]  # each fits alone, not together
    details = ", ".join(
        f"hydra.launcher.{key}={params.get(key)} (its largest node has {shown.format(max(room))})"
        for key, (_, room, shown) in ((key, wanted[key]) for key in keys)
    )
    return (
        f"no node of SLURM partition {partition} can run these jobs: {details}; lower "
        f"{' and '.join(keys)} on the command line or in conf/local/slurm.yaml, or choose another partition"
    )


def partition_nodes(partition: str) -> list[Node] | None:
    """The partition's nodes with their CPUs, memory and GPUs; [] when SLURM has no such partition."""
    listed = _run(["sinfo", "--noheader", "--Node", f"--partition={partition}", "--format=%N|%c|%m|%G"])
    if listed is None:
        return None
    nodes = {}
    for line in listed.splitlines():
        fields = line.strip().split("|")
        if len(fields) == 4:
            name, cpus, memory, gres = fields
            nodes[name] = Node(name, _int(cpus), _int(memory), gres_gpus(gres))
    return list(nodes.values())


def partition_limits(partition: str) -> dict[str, int]:
    """Limits the partition sets, where it sets one: MaxCPUsPerNode, MaxMemPerNode (MB), MaxNodes,
    MaxTime (minutes)."""
    shown = _run(["scontrol", "show", "partition", partition, "--oneliner"]) or ""
    limits = {}
    for item in shown.split():
        key, _, value = item.partition("=")
        if key in ("MaxCPUsPerNode", "MaxMemPerNode", "MaxNodes") and value.isdigit():
            limits[key] = int(value)
        elif key == "MaxTime" and (minutes := slurm_minutes(value)) is not None:
            limits[key] = minutes
    return limits


def slurm_minutes(value: str) -> int | None:
    """Minutes in a SLURM time limit (`MM`, `HH:MM:SS`, `D-HH[:MM[:SS]]`); None for UNLIMITED."""
    days, _, clock = value.rpartition("-") if "-" in value else ("0", "", value)
    parts = clock.split(":")
    if not days.isdigit() or not all(part.isdigit() for part in parts) or len(parts) > 3:
        return None
    numbers = [int(part) for part in parts]
    if "-" in value:  # D-HH, D-HH:MM, D-HH:MM:SS
        hours, minutes, seconds = [*numbers, 0, 0][:3]
    elif len(numbers) == 1:  # MM
        hours, minutes, seconds = 0, numbers[0], 0
    else:  # MM:SS or HH:MM:SS
        hours, minutes, seconds = [0, *numbers][-3:] if len(numbers) == 2 else numbers
    return int(days) * 24 * 60 + hours * 60 + minutes + (1 if seconds else 0)


def gres_gpus(gres: str) -> int:
    """GPUs in a `sinfo %G` field such as `gpu:1`, `gpu:a100:4(S:0-1)` or `(null)`."""
    total = 0
    for item in gres.split(","):
        parts = item.split("(")[0].split(":")
        if parts[0] == "gpu" and len(parts) >= 2:
            total += _int(parts[-1])
    return total


def _int(text: str) -> int:
    digits = "".join(ch for ch in text.strip().rstrip("+") if ch.isdigit())
    return int(digits) if digits else 0


def _run(command: list[str]) -> str | None:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=30, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return None
