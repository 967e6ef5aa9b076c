"""Files written whole or not at all, and never through a link someone planted.

A fixed ``<path>.tmp`` beside the target can be a symlink planted by another user of a
shared folder (or a leftover of a killed run): opening it follows the link, and the data
lands in the victim file. Here the temporary file gets a fresh random name in the target's
own folder, is created exclusively (``O_EXCL``: never an existing file or link), is flushed
to disk, then renamed over the target; ``rename`` replaces a link at the target itself
instead of writing through it. Files keep the mode the umask gives (0666 & ~umask).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically."""
    with open_atomic(path, "wb") as fh:
        fh.write(data)


def write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically."""
    write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def open_atomic(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """A new file (``mode`` "w": UTF-8 text, "wb": bytes) that replaces ``path`` when the
    block ends without an error."""
    tmp = exclusive_temp(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | _NOFOLLOW | _CLOEXEC)
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def exclusive_temp(path: Path) -> Path:
    """Create an empty file with a fresh name beside ``path`` (never an existing one)."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"no free temporary name beside {path}")  # pragma: no cover


def touch_lock_file(path: Path) -> None:
    """Make sure ``path`` is a plain file for a lock, honouring the umask.

    A symlink in its place (planted, or left by anything) is removed, never followed: a lock
    library opening it would create or truncate the file it points at.
    """
    flags = os.O_WRONLY | os.O_CREAT | _NOFOLLOW | _CLOEXEC
    try:
        fd = os.open(path, flags, 0o666)
    except OSError:
        if not path.is_symlink():
            raise
        path.unlink()
        fd = os.open(path, flags | os.O_EXCL, 0o666)
    os.close(fd)
