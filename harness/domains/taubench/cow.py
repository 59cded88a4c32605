"""Copy-on-write views of a JSON-like database shared by many conversations.

`CowDict(base)` behaves like a private deep copy of `base` (a tree of plain dicts and lists)
but copies lazily: a container is copied (shallowly, one level) the first time it is reached,
so a conversation holds copies only of the tables and records it touched. `base` is never
modified. Every way of reaching a child container (indexing, `get`, `values`, `items`,
iteration, `pop`, `copy`, `dict(view)`, slicing...) returns the view's own copy of it, so the
base cannot leak to code that mutates it.

Each view knows whether anything under it changed (`dirty`) and which base container it
started from (`origin`), so a hash of a view can reuse the cached hash of every part that is
still pristine (see `harness.domains.taubench.datahash.DataHasher`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from typing import Any, SupportsIndex

_MISSING: Any = object()


class _Node:
    """Bookkeeping shared by both views: where the node came from and whether it changed."""

    __slots__ = ()
    _origin: Any
    _parent: CowDict | CowList | None
    _dirty: bool

    def _touch(self) -> None:
        node: Any = self
        while node is not None and not node._dirty:
            node._dirty = True
            node = node._parent


def _wrap(value: Any, parent: CowDict | CowList | None) -> Any:
    kind = type(value)
    if kind is dict:
        return CowDict(value, parent)
    if kind is list:
        return CowList(value, parent)
    return value


def is_pristine(value: Any, base: Any) -> bool:
    """Whether `value` still equals `base` because nothing was changed since it was taken from it."""
    if value is base:
        return True
    kind = type(value)
    return (kind is CowDict or kind is CowList) and not value._dirty and value._origin is base


def to_plain(value: Any) -> Any:
    """A plain deep copy (dicts and lists) of a view or of any JSON-like value."""
    if isinstance(value, dict):
        return {key: to_plain(child) for key, child in dict.items(value)}
    if isinstance(value, list):
        return [to_plain(child) for child in list.__iter__(value)]
    return copy.deepcopy(value)


class CowDict(_Node, dict):
    __slots__ = ("_changed", "_dirty", "_origin", "_parent")

    def __init__(self, origin: dict[Any, Any], parent: CowDict | CowList | None = None) -> None:
        dict.__init__(self, origin)
        self._origin = origin
        self._parent = parent
        self._dirty = False
        # The database and its tables (the top two levels) record which keys may differ from
        # their origin, so that hashing a big table need not look at every record.
        self._changed: set[Any] | None = set() if parent is None or parent._parent is None else None

    @property
    def changed_keys(self) -> set[Any] | None:
        """Keys whose value may differ from the origin's; None when not tracked."""
        return self._changed

    @property
    def dirty(self) -> bool:
        return self._dirty

    @property
    def origin(self) -> dict[Any, Any]:
        return self._origin

    # Reads: a base container is replaced by this view's copy before it is handed out.
    def _own(self, key: Any, value: Any) -> Any:
        kind = type(value)
        if (kind is dict or kind is list) and self._origin.get(key, _MISSING) is value:
            value = _wrap(value, self)
            dict.__setitem__(self, key, value)
            if self._changed is not None:
                self._changed.add(key)
        return value

    def _own_all(self) -> None:
        origin, changed = self._origin, self._changed
        for key, value in dict.items(self):
            kind = type(value)
            if (kind is dict or kind is list) and origin.get(key, _MISSING) is value:
                dict.__setitem__(self, key, _wrap(value, self))
                if changed is not None:
                    changed.add(key)

    def __getitem__(self, key: Any) -> Any:
        return self._own(key, dict.__getitem__(self, key))

    def get(self, key: Any, default: Any = None) -> Any:
        value = dict.get(self, key, _MISSING)
        return default if value is _MISSING else self._own(key, value)

    def values(self) -> Any:
        self._own_all()
        return dict.values(self)

    def items(self) -> Any:
        self._own_all()
        return dict.items(self)

    def __iter__(self) -> Iterator[Any]:
        # Defined so that dict(view), {**view} and dict.update(view) read through __getitem__.
        return dict.__iter__(self)

    def copy(self) -> dict[Any, Any]:
        self._own_all()
        return dict(dict.items(self))

    def __copy__(self) -> dict[Any, Any]:
        return self.copy()

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[Any, Any]:
        return to_plain(self)

    def __reduce_ex__(self, protocol: SupportsIndex) -> Any:
        return (dict, (to_plain(self),))

    def __or__(self, other: Any) -> Any:
        if not isinstance(other, dict):
            return NotImplemented
        merged = self.copy()
        merged.update(other)
        return merged

    def __ror__(self, other: Any) -> Any:
        if not isinstance(other, dict):
            return NotImplemented
        merged = dict(other)
        merged.update(self.copy())
        return merged

    # Writes: mark this view and its ancestors changed.
    def __setitem__(self, key: Any, value: Any) -> None:
        dict.__setitem__(self, key, value)
        if self._changed is not None:
            self._changed.add(key)
        self._touch()

    def __delitem__(self, key: Any) -> None:
        dict.__delitem__(self, key)
        if self._changed is not None:
            self._changed.add(key)
        self._touch()

    def pop(self, key: Any, default: Any = _MISSING) -> Any:
        if not dict.__contains__(self, key):
            if default is _MISSING:
                raise KeyError(key)
            return default
        value = self[key]
        del self[key]
        return value

    def popitem(self) -> tuple[Any, Any]:
        if not dict.__len__(self):
            raise KeyError("popitem(): dictionary is empty")
        key = next(reversed(dict.keys(self)))
        return key, self.pop(key)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if dict.__contains__(self, key):
            return self[key]
        self[key] = default
        return default

    def update(self, *args: Any, **kwargs: Any) -> None:
        dict.update(self, *args, **kwargs)
        self._changed = None
        self._touch()

    def clear(self) -> None:
        dict.clear(self)
        self._changed = None
        self._touch()

    def __ior__(self, other: Any) -> CowDict:
        self.update(other)
        return self


class CowList(_Node, list):
    __slots__ = ("_base_ids", "_dirty", "_origin", "_parent")

    def __init__(self, origin: list[Any], parent: CowDict | CowList | None = None) -> None:
        list.__init__(self, origin)
        self._origin = origin
        self._parent = parent
        self._dirty = False
        self._base_ids: frozenset[int] | None = None

    @property
    def dirty(self) -> bool:
        return self._dirty

    @property
    def origin(self) -> list[Any]:
        return self._origin

    def _is_base(self, value: Any) -> bool:
        kind = type(value)
        if kind is not dict and kind is not list:
            return False
        if self._base_ids is None:
            self._base_ids = frozenset(id(child) for child in self._origin if type(child) in (dict, list))
        return id(value) in self._base_ids

    def _own_at(self, index: int, value: Any) -> Any:
        if self._is_base(value):
            value = _wrap(value, self)
            list.__setitem__(self, index, value)
        return value

    def _own_all(self) -> None:
        for index, value in enumerate(list.__iter__(self)):
            self._own_at(index, value)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(list.__len__(self)))]
        value = list.__getitem__(self, index)
        return self._own_at(index, value)

    def __iter__(self) -> Iterator[Any]:
        index = 0
        while index < list.__len__(self):
            yield self._own_at(index, list.__getitem__(self, index))
            index += 1

    def __reversed__(self) -> Iterator[Any]:
        index = list.__len__(self) - 1
        while index >= 0:
            if index < list.__len__(self):
                yield self._own_at(index, list.__getitem__(self, index))
            index -= 1

    def copy(self) -> list[Any]:
        self._own_all()
        return list(list.__iter__(self))

    def __copy__(self) -> list[Any]:
        return self.copy()

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return to_plain(self)

    def __reduce_ex__(self, protocol: SupportsIndex) -> Any:
        return (list, (to_plain(self),))

    def __add__(self, other: Any) -> Any:
        return self.copy() + other

    def __radd__(self, other: Any) -> Any:
        return other + self.copy()

    def __mul__(self, count: SupportsIndex) -> list[Any]:
        return self.copy() * count

    __rmul__ = __mul__

    def __setitem__(self, index: Any, value: Any) -> None:
        list.__setitem__(self, index, value)
        self._touch()

    def __delitem__(self, index: Any) -> None:
        list.__delitem__(self, index)
        self._touch()

    def append(self, value: Any) -> None:
        list.append(self, value)
        self._touch()

    def extend(self, values: Iterable[Any]) -> None:
        list.extend(self, values)
        self._touch()

    def insert(self, index: SupportsIndex, value: Any) -> None:
        list.insert(self, index, value)
        self._touch()

    def remove(self, value: Any) -> None:
        list.remove(self, value)
        self._touch()

    def pop(self, index: SupportsIndex = -1) -> Any:
        value = self[index]
        list.pop(self, index)
        self._touch()
        return value

    def clear(self) -> None:
        list.clear(self)
        self._touch()

    def sort(self, *args: Any, **kwargs: Any) -> None:
        self._own_all()
        list.sort(self, *args, **kwargs)
        self._touch()

    def reverse(self) -> None:
        list.reverse(self)
        self._touch()

    def __iadd__(self, values: Iterable[Any]) -> CowList:  # type: ignore[misc]
        self.extend(values)
        return self

    def __imul__(self, count: SupportsIndex) -> CowList:
        list.__imul__(self, count)
        self._touch()
        return self
