"""Reads W&B's local run files (`run-<id>.wandb`) back without a server: config, history, summary.

The file is a LevelDB-style log: a 7-byte header, then 32 KiB blocks of chunks, each chunk with
a 7-byte header (crc32, length, type); chunks join into `wandb_internal_pb2.Record` payloads.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FILE_HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
BLOCK_SIZE = 32 * 1024
CHUNK_HEADER = struct.Struct("<IHB")
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


class WandbFileError(ValueError):
    pass


def read_payloads(path: Path) -> Iterator[bytes]:
    """Every complete record payload in the file; a torn tail (killed writer) ends the iteration."""
    data = path.read_bytes()
    if not data.startswith(FILE_HEADER):
        raise WandbFileError(f"{path} is not a W&B run file (bad header)")
    offset = len(FILE_HEADER)
    pending: list[bytes] = []
    while offset + CHUNK_HEADER.size <= len(data):
        left_in_block = BLOCK_SIZE - offset % BLOCK_SIZE
        if left_in_block < CHUNK_HEADER.size:
            offset += left_in_block
            continue
        checksum, length, kind = CHUNK_HEADER.unpack_from(data, offset)
        start = offset + CHUNK_HEADER.size
        payload = data[start : start + length]
        if kind == 0 and length == 0:
            offset += left_in_block  # zero padding up to the next block
            continue
        if len(payload) < length or zlib.crc32(bytes([kind]) + payload) != checksum:
            return
        offset = start + length
        if kind == FULL:
            yield payload
        elif kind == FIRST:
            pending = [payload]
        elif kind == MIDDLE:
            pending.append(payload)
        elif kind == LAST:
            pending.append(payload)
            yield b"".join(pending)
            pending = []


def read_records(path: Path) -> Iterator[Any]:
    from wandb.proto import wandb_internal_pb2

    for payload in read_payloads(path):
        record = wandb_internal_pb2.Record()  # type: ignore[attr-defined]
        record.ParseFromString(payload)
        yield record


def _items_to_dict(items: Any) -> dict[str, Any]:
    """Config/summary/history items (`key` or `nested_key` + `value_json`) as a nested dict."""
    result: dict[str, Any] = {}
    for item in items:
        path = list(item.nested_key) or [item.key]
        target = result
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = json.loads(item.value_json)
    return result


@dataclass
class OfflineRun:
    """What one `run-<id>.wandb` file holds."""

    path: Path
    run_id: str = ""
    project: str = ""
    entity: str = ""
    group: str = ""
    job_type: str = ""
    name: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    """Each logged artifact: name, type and its manifest entries {path: digest}."""
    exit_code: int | None = None

    @property
    def run_dir(self) -> Path:
        return self.path.parent

    @property
    def started(self) -> str:
        """The `YYYYMMDD_HHMMSS` stamp of the run directory's name."""
        return self.run_dir.name.split("-")[2] if self.run_dir.name.count("-") >= 3 else ""

    @property
    def repeat(self) -> int:
        """N of the `-N` wandb appends to a run directory made in the same second as an earlier one."""
        parts = self.run_dir.name.split("-")  # offline-run-<stamp>-<id>[-N]
        return int(parts[4]) if len(parts) == 5 and parts[4].isdigit() else 0


def read_run(path: Path) -> OfflineRun:
    """Parse one `run-<id>.wandb` file (or the run directory holding it)."""
    if path.is_dir():
        files = sorted(path.glob("run-*.wandb"))
        if not files:
            raise WandbFileError(f"no run-*.wandb file in {path}")
        path = files[0]
    run = OfflineRun(path=path)
    for record in read_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            if run.run_id and r.run_id and r.run_id != run.run_id:
                raise WandbFileError(f"{path} holds two runs ({run.run_id}, {r.run_id})")
            run.run_id = r.run_id or run.run_id
            run.project, run.entity = r.project or run.project, r.entity or run.entity
            run.group, run.job_type = r.run_group or run.group, r.job_type or run.job_type
            run.name = r.display_name or run.name
            run.tags = list(r.tags) or run.tags
            run.config.update(_config_values(r.config.update))
        elif kind == "config":
            run.config.update(_config_values(record.config.update))
        elif kind == "history":
            run.history.append(_items_to_dict(record.history.item))
        elif kind == "summary":
            _merge(run.summary, _items_to_dict(record.summary.update))
            for item in record.summary.remove:
                run.summary.pop(item.key, None)
        elif kind == "artifact":
            a = record.artifact
            run.artifacts.append(
                {
                    "name": a.name,
                    "type": a.type,
                    "entries": {e.path: e.digest for e in a.manifest.contents},
                }
            )
        elif kind == "exit":
            run.exit_code = record.exit.exit_code
    return run


def _config_values(items: Any) -> dict[str, Any]:
    """wandb stores each config key as `{"value": ...}` (and `_wandb` for its own use)."""
    raw = _items_to_dict(items)
    return {
        key: value["value"] if isinstance(value, dict) and "value" in value else value
        for key, value in raw.items()
        if key != "_wandb"
    }


def _merge(target: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def find_runs(root: Path) -> list[OfflineRun]:
    """Every run file under `root`, oldest first."""
    runs = [read_run(path) for path in root.rglob("run-*.wandb")]
    return sorted(runs, key=lambda run: (run.started, run.repeat, str(run.path)))
