"""Sizes in the cache: disk usage with hard links counted once, and sizes and ages as shown.

**Size** is disk usage (allocated blocks), and every file is counted once however many
hard links it has: envs are hard-linked from the package cache, so an env's ``size`` is
what it holds, while ``frees`` is what removing it gives back (its files with no link
outside it). The package cache ``pkgs/`` is its own row; ``total`` counts each file of the
whole cache folder once.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

SIZE_RE = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[kmgt]?)(?:i?b)?\s*$", re.I)
UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(text: str) -> int:
    """``10G``, ``500M``, ``1.5GiB``, ``2048`` (bytes) -> bytes; units are powers of 1024."""
    match = SIZE_RE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size: write it like 10G, 500M or 2048 (bytes)")
    return int(float(match["number"]) * UNITS[match["unit"].lower()])


def format_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "K", "M", "G"):
        if value < 1024:
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}T"


def format_age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return "just now"
    for limit, unit in ((3600, 60), (86400, 3600), (float("inf"), 86400)):
        if seconds < limit:
            label = {60: "min", 3600: "h", 86400: "d"}[unit]
            return f"{seconds / unit:.0f}{label} ago"
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass
class _Inode:
    size: int
    nlink: int
    owners: dict[str, int] = field(default_factory=dict)  # owner -> links seen in it


class DiskUsage:
    """Every inode under the cache root, with the parts of the cache (owners) linking it."""

    def __init__(self) -> None:
        self.inodes: dict[tuple[int, int], _Inode] = {}

    def add_entry(self, path: Path, owner: str) -> None:
        with contextlib.suppress(OSError):
            self._add(path.lstat(), owner)

    def add_tree(self, path: Path, owner: str) -> None:
        self.add_entry(path, owner)
        if path.is_dir() and not path.is_symlink():
            for entry in _walk(path):
                with contextlib.suppress(OSError):
                    self._add(entry.stat(follow_symlinks=False), owner)

    def _add(self, st: os.stat_result, owner: str) -> None:
        inode = self.inodes.get((st.st_dev, st.st_ino))
        if inode is None:
            blocks = getattr(st, "st_blocks", None)
            size = blocks * 512 if blocks is not None else st.st_size
            inode = self.inodes[(st.st_dev, st.st_ino)] = _Inode(size, st.st_nlink)
        inode.owners[owner] = inode.owners.get(owner, 0) + 1

    def size_of(self, owner: str) -> int:
        return sum(i.size for i in self.inodes.values() if owner in i.owners)

    def size_where(self, wanted: Callable[[str], bool]) -> int:
        """Bytes of the files linked from at least one owner that ``wanted`` accepts."""
        return sum(i.size for i in self.inodes.values() if any(wanted(o) for o in i.owners))

    def frees(self, owner: str) -> int:
        """Bytes given back if ``owner`` were deleted: files with no link anywhere else."""
        return sum(
            i.size
            for i in self.inodes.values()
            if i.owners.keys() == {owner} and i.owners[owner] >= i.nlink
        )

    def forget(self, owner: str) -> int:
        """Account for ``owner``'s deletion; returns the bytes it freed."""
        freed = 0
        for key in list(self.inodes):
            inode = self.inodes[key]
            links = inode.owners.pop(owner, 0)
            if not links:
                continue
            inode.nlink -= links
            if not inode.owners and inode.nlink <= 0:
                freed += inode.size
                del self.inodes[key]
        return freed

    @property
    def total(self) -> int:
        return sum(i.size for i in self.inodes.values())


def _walk(folder: Path) -> Iterator[os.DirEntry[str]]:
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as it:
                for entry in it:
                    yield entry
                    with contextlib.suppress(OSError):
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(Path(entry.path))
        except OSError:
            continue
