"""The locks of the env cache: one read-write lock per env folder, and the package cache's.

Each env has ``locks/<env>.lock``: runs that test in the env hold it to read, a build or a
removal holds it to write. Lock files are made here so that they honour the umask (filelock
would make them 0600, locking out the other users of a cache shared through a group), and
are never deleted: two processes could then hold "the" lock at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

from filelock import ReadWriteLock, Timeout

from .. import atomic
from ..errors import CacheError
from . import layout

#: how often a wait for an env's lock asks whether the run was interrupted
LOCK_POLL_SECONDS = 0.2


class LockWaitCancelled(Exception):
    """The run was interrupted while it waited for another run's lock on an env."""


def open_lock(root: Path, name: str) -> ReadWriteLock:
    """The read-write lock of the env folder ``name``: tests run under its read lock, builds
    and removals under its write lock."""
    path = layout.lock_file(root, name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.touch_lock_file(path)  # made here, honouring the umask (see above)
        # A fresh instance per use: one instance coordinates processes, not threads.
        return ReadWriteLock(path, is_singleton=False)
    except (sqlite3.Error, OSError, ValueError) as exc:
        raise _lock_error(path, exc) from None


@contextlib.contextmanager
def hold(
    lock: ReadWriteLock,
    mode: Literal["read", "write"],
    cancelled: Callable[[], bool] | None,
) -> Iterator[None]:
    """Hold ``lock`` in ``mode``, waiting in slices so that an interrupted run stops waiting."""
    acquire = lock.acquire_write if mode == "write" else lock.acquire_read
    try:
        while True:
            try:
                acquire(timeout=-1 if cancelled is None else LOCK_POLL_SECONDS)
                break
            except Timeout:
                if cancelled is not None and cancelled():
                    raise LockWaitCancelled(lock.lock_file) from None
    except (sqlite3.Error, OSError, ValueError) as exc:
        raise _lock_error(Path(lock.lock_file), exc) from None
    try:
        yield
    finally:
        lock.release()


def _lock_error(path: Path, exc: BaseException) -> CacheError:
    return CacheError(
        f"cannot use the lock file {path}: {exc}",
        hint="if no run uses this cache now, delete that file; it is made again when needed",
    )


def env_lock(root: Path, name: str) -> ReadWriteLock:
    """The lock of :func:`open_lock`, for removing: a lock file that cannot be made is left
    to the lock's own error (told as a skip by :func:`try_write_lock`)."""
    path = layout.lock_file(root, name)
    with contextlib.suppress(OSError):
        # as the cache makes it: honouring the umask, for caches shared through a group
        atomic.touch_lock_file(path)
    return ReadWriteLock(path, is_singleton=False)


IN_USE = "in use by another run (its lock is held): skipped"


@contextlib.contextmanager
def try_write_lock(root: Path, name: str) -> Iterator[str]:
    """Hold the env's write lock if nobody holds its lock now, without waiting.

    Yields "" while holding it, else why it cannot be had (then nothing may be removed).
    """
    if not (root / "locks").is_dir():
        yield ""  # no lock folder: no run has ever locked anything here
        return
    try:
        lock = env_lock(root, name)
        lock.acquire_write(timeout=0)  # one try (filelock 3.21 refuses blocking=False with it)
    except Timeout:
        yield IN_USE
        return
    except (sqlite3.Error, OSError, ValueError) as exc:
        yield f"cannot take its lock ({exc}): skipped"
        return
    try:
        yield ""
    finally:
        lock.release()


@contextlib.contextmanager
def flock(path: Path) -> Iterator[bool]:
    """An exclusive flock on ``path`` (made if missing, as rattler makes it), without waiting."""
    try:
        # never through a link: that would create or lock the file it points at
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    except OSError:
        yield False  # a lock we cannot take: leave what it guards alone
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
