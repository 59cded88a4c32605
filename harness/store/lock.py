"""One advisory lock helper for job directories, with the fallback for file systems without flock.

Some Lustre and NFS mounts refuse `flock` (ENOLCK, EOPNOTSUPP, ENOSYS): there the lock is
skipped with one warning per directory and the job runs unlocked rather than failing at start.
Every lock of the store (a job's run lock, an append log's writer lock) goes through here.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

_warned: set[str] = set()


class Locked(Exception):
    """Another process holds the lock (only with `wait=False`)."""


def lock_fd(fd: int, where: Path, wait: bool = True) -> bool:
    """An exclusive flock on the open `fd`; False where the file system has none.

    With `wait=False`, `Locked` when another process holds it. Closing `fd` releases the lock.
    """
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        raise Locked(str(where)) from None
    except OSError as error:
        directory = str(where if where.is_dir() else where.parent)
        if directory not in _warned:
            _warned.add(directory)
            log.warning("no file locks in %s (%s): running without the job lock", directory, error.strerror)
        return False
    return True


def acquire(path: Path, wait: bool = True) -> int | None:
    """An exclusive flock on `path` (a file, created if missing, or a directory): its descriptor.

    None where the file system has no flock. With `wait=False`, `Locked` when another process holds it.
    """
    fd = os.open(path, os.O_RDONLY) if path.is_dir() else os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if lock_fd(fd, path, wait):
            return fd
    except Locked:
        os.close(fd)
        raise
    os.close(fd)
    return None


def release(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)  # closing the descriptor releases the flock


@contextmanager
def locked(path: Path, wait: bool = True) -> Iterator[None]:
    """Hold `acquire(path, wait)` for the block."""
    fd = acquire(path, wait)
    try:
        yield
    finally:
        release(fd)


def is_held(path: Path) -> bool:
    """Whether another process holds the lock on `path`; False where it is missing or flock is not there."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False  # no flock on this filesystem: nothing can be told
    finally:
        os.close(fd)  # closing releases a lock just taken
    return False
