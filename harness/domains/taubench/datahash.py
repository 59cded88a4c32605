"""τ-bench's database hash, and a fast way to compute exactly the same digest for views.

τ-bench scores a database by `sha256(str(to_hashable(data)))`. For copy-on-write views of one
base database (`harness.domains.taubench.cow`), `DataHasher` keeps the text of every base record and the SHA-256
state at the start of every record, so a digest resumes from the state just before the first
record the conversation changed and hashes only from there on, reusing the cached text of
every unchanged record. The digest is byte-for-byte τ-bench's.
"""

from __future__ import annotations

import threading
from bisect import insort
from collections.abc import Sequence
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

from harness.domains.taubench.cow import CowDict, is_pristine

_MISSING: Any = object()


def to_hashable(item: Any) -> Any:
    """τ-bench's `to_hashable`, unchanged: the database hash must match its reward exactly."""
    if isinstance(item, dict):
        return tuple((key, to_hashable(value)) for key, value in sorted(item.items()))
    if isinstance(item, list):
        return tuple(to_hashable(element) for element in item)
    if isinstance(item, set):
        return tuple(sorted(to_hashable(element) for element in item))
    return item


def data_hash(data: dict[str, Any]) -> str:
    """τ-bench's `Env.get_data_hash`."""
    return sha256(str(to_hashable(data)).encode("utf-8")).hexdigest()


def _raw_hashable(item: Any) -> Any:
    """`to_hashable` reading views directly (no copies are made); the same result."""
    if isinstance(item, dict):
        return tuple((key, _raw_hashable(value)) for key, value in sorted(dict.items(item)))
    if isinstance(item, list):
        return tuple(_raw_hashable(element) for element in list.__iter__(item))
    if isinstance(item, set):
        return tuple(sorted(_raw_hashable(element) for element in item))
    return item


def _record_text(key: Any, record: Any) -> str:
    return repr((key, _raw_hashable(record)))


def _tuple_text(parts: Sequence[str]) -> str:
    """`repr` of a tuple whose elements have the reprs `parts`."""
    return f"({parts[0]},)" if len(parts) == 1 else "(" + ", ".join(parts) + ")"


def _tuple_tail(parts: Sequence[str], start: int) -> str:
    """The end of `_tuple_text(parts)` from element `start` (the separator before it excluded)."""
    return ", ".join(parts[start:]) + (",)" if len(parts) == 1 else ")")


@dataclass(frozen=True, slots=True)
class _Table:
    name: Any
    base: dict[Any, Any]
    order: list[Any]
    """The base table's keys, sorted."""
    index: dict[Any, int]
    parts: list[str]
    """repr((key, to_hashable(record))) of every base record, in key order."""
    encoded: bytes
    """repr((name, to_hashable(base table))), UTF-8."""
    checkpoints: list[Any]
    """SHA-256 states just before each record's text; one more for a record appended at the end."""


class DataHasher:
    """`data_hash` for `CowDict` views of one base database, without rehashing what did not change."""

    def __init__(self, base: dict[str, Any]) -> None:
        self.base = base
        self._names = sorted(base)
        self._tables: list[_Table] | None = None
        self._base_digest: str | None = None
        self._lock = threading.Lock()

    def prepare(self) -> None:
        """Build the cached text and checkpoints (about one full hash of the database, once)."""
        if self._tables is None:
            with self._lock:
                if self._tables is None:
                    self._tables, self._base_digest = self._build()

    def _build(self) -> tuple[list[_Table], str]:
        tables = []
        state = sha256(b"(")
        for position, name in enumerate(self._names):
            base = self.base[name]
            if type(base) is not dict:
                return [], data_hash(self.base)  # not a dict of tables: no checkpoints
            if position:
                state.update(b", ")
            order = sorted(base)
            parts = [repr((key, to_hashable(base[key]))) for key in order]
            state.update(f"({name!r}, (".encode())
            checkpoints = []
            for number, part in enumerate(parts):
                if number:
                    state.update(b", ")
                checkpoints.append(state.copy())
                state.update(part.encode())
            after_last = state.copy()
            if parts:
                after_last.update(b", ")
            checkpoints.append(after_last)
            state.update(b",))" if len(parts) == 1 else b"))")
            encoded = f"({name!r}, {_tuple_text(parts)})".encode()
            index = {key: i for i, key in enumerate(order)}
            tables.append(_Table(name, base, order, index, parts, encoded, checkpoints))
        return tables, data_hash(self.base)

    def digest(self, data: dict[str, Any]) -> str:
        if not (isinstance(data, CowDict) and data.origin is self.base):
            return data_hash(data)
        self.prepare()
        assert self._tables is not None and self._base_digest is not None
        if not self._tables or sorted(dict.keys(data)) != self._names:
            return data_hash(data)
        for position, table in enumerate(self._tables):
            value = dict.__getitem__(data, table.name)
            if is_pristine(value, table.base):
                continue
            if not isinstance(value, dict):
                return data_hash(data)
            parts, first = self._changed_parts(table, value)
            if first is None:
                continue
            first = min(first, max(len(parts) - 1, 0))
            state = table.checkpoints[first].copy()
            state.update((_tuple_tail(parts, first) + ")").encode())
            for later in self._tables[position + 1 :]:
                state.update(b", ")
                later_value = dict.__getitem__(data, later.name)
                if is_pristine(later_value, later.base):
                    state.update(later.encoded)
                elif isinstance(later_value, dict):
                    later_parts, later_first = self._changed_parts(later, later_value)
                    if later_first is None:
                        state.update(later.encoded)
                    else:
                        state.update(f"({later.name!r}, {_tuple_text(later_parts)})".encode())
                else:
                    return data_hash(data)
            state.update(b",)" if len(self._tables) == 1 else b")")
            return state.hexdigest()
        return self._base_digest

    @staticmethod
    def _changed_parts(table: _Table, value: dict[Any, Any]) -> tuple[list[str], int | None]:
        """The record texts of a changed table, and the first position where they differ from the base."""
        base, index = table.base, table.index
        changed = value.changed_keys if isinstance(value, CowDict) else None
        if changed is None:
            changed = set(dict.keys(value)) | set(base)
        modified, added, removed = [], [], []
        for key in changed:
            present, original = dict.__contains__(value, key), base.get(key, _MISSING)
            if original is _MISSING:
                if present:
                    added.append(key)
            elif not present:
                removed.append(key)
            elif not is_pristine(dict.__getitem__(value, key), original):
                modified.append(key)
        if not added and not removed:
            if not modified:
                return table.parts, None
            parts = list(table.parts)
            for key in modified:
                parts[index[key]] = _record_text(key, dict.__getitem__(value, key))
            return parts, min(index[key] for key in modified)
        gone = set(removed)
        order = [key for key in table.order if key not in gone] if gone else list(table.order)
        for key in added:
            insort(order, key)
        fresh = set(modified) | set(added)
        parts = [
            _record_text(key, dict.__getitem__(value, key)) if key in fresh else table.parts[index[key]]
            for key in order
        ]
        first = 0
        limit = min(len(order), len(table.order))
        while first < limit and order[first] == table.order[first] and parts[first] is table.parts[first]:
            first += 1
        return parts, first
