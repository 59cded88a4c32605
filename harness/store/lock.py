"""One advisory lock helper for job directories, with the fallback for file systems without flock.

Some Lustre and NFS mounts refuse `flock` (ENOLCK, EOPNOTSUPP, ENOSYS): there the lock is
skipped with one warning and the job runs unlocked rather than failing at start.
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


def acquire(path: Path, wait: bool = True) -> int | None:
    """An exclusive flock on `path` (a file, created if missing, or a directory); its descriptor.

    None where the file system has no flock. With `wait=False`, `Locked` when another process holds it.
    """
    directory = path if path.is_dir() else path.parent
    fd = os.open(path, os.O_RDONLY) if path == directory else os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        raise Locked(str(path)) from None
    except OSError as error:
        os.close(fd)
        if str(directory) not in _warned:
            _warned.add(str(directory))
            log.warning("no file locks in %s (%s): running without the job lock", directory, error.strerror)
        return None
    return fd


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
