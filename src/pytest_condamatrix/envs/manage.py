"""Inspect and clean the env cache: list envs, prune them by age or size, remove some by name.

What counts as what:

- **Size** is disk usage (allocated blocks), and every file is counted once however many
  hard links it has: envs are hard-linked from the package cache, so an env's ``size`` is
  what it holds, while ``frees`` is what removing it gives back (its files with no link
  outside it). The package cache ``pkgs/`` is its own row; ``total`` counts each file of the
  whole cache folder once.
- **Last used** is the time of ``locks/<env>.used``, which every run touches when it uses the
  env (falling back to the stamp's build time, then the folder's time).
- **Stale** means *not used for more than N days* (default 30). It deliberately does not ask
  whether the current project still maps a cell to the env: the cache is shared by every
  project of the user (and by CI jobs), so an env no cell of *this* project uses may well
  be another project's current env. Age is the one test that is right for all of them.

Removing never races a run: each env is removed only under its write lock, taken without
waiting; an env another run holds (tests running in it, or a build in progress) is skipped
and said so. Lock files are kept: deleting a lock file another process may be waiting on
would let two processes hold "the" lock at once (they are empty files).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import ReadWriteLock, Timeout

from .. import atomic
from . import layout
from .cache import STAMP
from .layout import ENV_NAME, KEEP_RUNS, LEFTOVER_NAME

DEFAULT_STALE_DAYS = 30.0
#: leftovers in tmp/ or trash/ whose env cannot be told from their name are removed after this
UNKNOWN_LEFTOVER_SECONDS = 24 * 3600.0
SIZE_RE = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[kmgt]?)(?:i?b)?\s*$", re.I)
UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}

Say = Callable[[str], None]


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


# ---------------------------------------------------------------------------------------------
# disk usage with hard links counted once


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


# ---------------------------------------------------------------------------------------------
# what is in the cache


@dataclass(frozen=True)
class EnvEntry:
    """One env folder of the cache."""

    name: str  # <cell>-<hash8>, the folder name
    path: Path
    cell: str
    key: str  # the full key from the stamp; the folder's hash8 when the stamp is missing
    valid: bool  # False: no readable stamp (a build that never finished), always prunable
    built_at: float | None
    last_used: float
    engine: str
    packages: tuple[str, ...]
    size: int
    frees: int

    @property
    def owner(self) -> str:
        return f"envs/{self.name}"

    def to_json(self, now: float, stale_days: float) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "cell": self.cell,
            "key": self.key,
            "valid": self.valid,
            "engine": self.engine,
            "built_at": self.built_at,
            "last_used": self.last_used,
            "size": self.size,
            "frees": self.frees,
            "stale": is_stale(self, now, stale_days),
            "packages": list(self.packages),
        }


def is_stale(env: EnvEntry, now: float, stale_days: float) -> bool:
    return not env.valid or now - env.last_used > stale_days * 86400


@dataclass
class CacheListing:
    """A snapshot of the cache folder."""

    root: Path
    exists: bool
    envs: list[EnvEntry]
    packages: list[str]  # package-cache entries (folders under pkgs/)
    usage: DiskUsage

    @property
    def package_cache_size(self) -> int:
        return self.usage.size_where(lambda owner: owner.startswith("pkgs/"))

    @property
    def other_size(self) -> int:
        """runs/, tmp/, trash/, repodata/, locks/ and anything else that is not an env or pkgs."""
        return self.usage.size_where(lambda owner: not owner.startswith(("envs/", "pkgs/")))

    @property
    def total(self) -> int:
        return self.usage.total

    def to_json(self, now: float, stale_days: float) -> dict[str, Any]:
        return {
            "format": 1,
            "root": str(self.root),
            "exists": self.exists,
            "stale_days": stale_days,
            "envs": [e.to_json(now, stale_days) for e in self.envs],
            "package_cache": {
                "path": str(self.root / "pkgs"),
                "size": self.package_cache_size,
                "entries": len(self.packages),
            },
            "other_size": self.other_size,
            "total_size": self.total,
        }


#: folders whose entries are measured one by one (each entry is its own owner)
PARTS = ("envs", "pkgs", "tmp", "trash", "runs")


def scan(root: Path) -> CacheListing:
    """Read the cache folder (never creating it) and measure it, each file once."""
    usage = DiskUsage()
    if not root.is_dir():
        return CacheListing(root, False, [], [], usage)
    for child in _children(root):
        if child.name in PARTS and child.is_dir() and not child.is_symlink():
            usage.add_entry(child, "other")  # the folder itself, not its content
            for sub in _children(child):
                usage.add_tree(sub, f"{child.name}/{sub.name}")
        else:
            usage.add_tree(child, "other")
    env_paths = sorted(p for p in _children(root / "envs") if _is_env_entry(p))
    packages = sorted(p.name for p in _children(root / "pkgs") if p.is_dir() and not p.is_symlink())
    envs = [_env_entry(root, path, usage) for path in env_paths]
    return CacheListing(root, True, envs, packages, usage)


def _is_env_entry(path: Path) -> bool:
    """A folder of envs/, or a link named as ours (dangling or not): never a valid env, and
    listed so that prune and remove see it; other links are not ours and stay unseen."""
    if path.is_symlink():
        return ENV_NAME.fullmatch(path.name) is not None
    return path.is_dir()


def _children(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []


def _env_entry(root: Path, path: Path, usage: DiskUsage) -> EnvEntry:
    stamp: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        # a link is never read through: what it points at is not in the cache
        data = {} if path.is_symlink() else json.loads((path / STAMP).read_text("utf-8"))
        if isinstance(data, dict):
            stamp = data
    match = ENV_NAME.fullmatch(path.name)
    key = stamp.get("key")
    valid = isinstance(key, str) and match is not None and key.startswith(match["hash"])
    built_at = stamp.get("built_at") if valid else None
    inputs = stamp.get("inputs")
    last_used = _mtime(layout.used_file(root, path.name))
    if last_used is None:
        last_used = float(built_at) if isinstance(built_at, int | float) else _mtime(path) or 0.0
    return EnvEntry(
        name=path.name,
        path=path,
        cell=str(stamp.get("cell") or (match["cell"] if match else path.name)),
        key=str(key) if valid else (match["hash"] if match else ""),
        valid=valid,
        built_at=float(built_at) if isinstance(built_at, int | float) else None,
        last_used=last_used,
        engine=str(inputs.get("engine", "")) if isinstance(inputs, dict) else "",
        packages=tuple(str(p) for p in stamp.get("packages", ()) if valid),
        size=usage.size_of(f"envs/{path.name}"),
        frees=usage.frees(f"envs/{path.name}"),
    )


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


# ---------------------------------------------------------------------------------------------
# removing, under the env's lock


def env_lock(root: Path, name: str) -> ReadWriteLock:
    """The lock that :class:`~.cache.EnvCache` uses for the env folder ``name``."""
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


@dataclass
class Action:
    """One thing prune or remove did (or, with --dry-run, would do)."""

    kind: str  # "env", "package", "leftover", "run"
    name: str
    done: bool  # removed (or would be, in a dry run)
    reason: str  # why it is removed, or why it was skipped
    freed: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "removed": self.done,
            "reason": self.reason,
            "freed": self.freed,
        }


@dataclass
class CleanResult:
    actions: list[Action]
    dry_run: bool
    size_before: int
    size_after: int

    @property
    def skipped(self) -> list[Action]:
        return [a for a in self.actions if not a.done]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": 1,
            "dry_run": self.dry_run,
            "size_before": self.size_before,
            "size_after": self.size_after,
            "freed": self.size_before - self.size_after,
            "actions": [a.to_json() for a in self.actions],
        }


def _remove_env(
    listing: CacheListing, env: EnvEntry, reason: str, *, dry_run: bool, say: Say
) -> Action:
    root = listing.root
    with try_write_lock(root, env.name) as busy:
        if busy:
            say(f"{env.name}: {busy}")
            return Action("env", env.name, False, busy)
        used = _mtime(layout.used_file(root, env.name))
        if env.valid and used is not None and used > env.last_used + 1:
            why = "used by another run since it was listed: skipped"
            say(f"{env.name}: {why}")
            return Action("env", env.name, False, why)
        if not dry_run:
            _delete(root, env.path)
            with contextlib.suppress(OSError):
                layout.used_file(root, env.name).unlink()
    freed = listing.usage.forget(env.owner)
    verb = "would remove" if dry_run else "removed"
    say(f"{verb} {env.name} ({reason}), {format_size(freed)} freed")
    return Action("env", env.name, True, reason, freed)


def _delete(root: Path, path: Path) -> None:
    # Rename first (as the cache does) so that no reader ever sees a half-deleted env.
    (root / "trash").mkdir(exist_ok=True)
    doomed = layout.trash_dir(root, path.name)
    try:
        path.rename(doomed)
    except OSError:
        doomed = path
    _delete_any(doomed)  # a link in place of an env goes, never what it points at


def remove_envs(
    root: Path, selector: str, *, dry_run: bool = False, say: Say = lambda _: None
) -> tuple[CleanResult, list[EnvEntry]]:
    """Remove the envs of cell ``selector`` (or whose folder name or key starts with it)."""
    listing = scan(root)
    matched = select_envs(listing.envs, selector)
    before = listing.total
    actions = [
        _remove_env(listing, env, f"asked for ({selector})", dry_run=dry_run, say=say)
        for env in matched
    ]
    return CleanResult(actions, dry_run, before, listing.total), matched


def select_envs(envs: list[EnvEntry], selector: str) -> list[EnvEntry]:
    by_cell = [e for e in envs if e.cell == selector or e.name == selector]
    if by_cell:
        return by_cell
    if re.fullmatch(r"[0-9a-f]{4,64}", selector):
        return [e for e in envs if e.key.startswith(selector)]
    return []


def prune(
    root: Path,
    *,
    older_than_days: float | None = None,
    max_size: int | None = None,
    packages: bool = False,
    dry_run: bool = False,
    now: float | None = None,
    say: Say = lambda _: None,
) -> CleanResult:
    """Remove unfinished envs, envs unused for ``older_than_days``, then least recently used
    envs (and package-cache entries no env uses) until the cache fits in ``max_size``; always
    sweeps leftovers of killed builds and old run folders."""
    now = time.time() if now is None else now
    listing = scan(root)
    before = listing.total
    actions: list[Action] = []
    if not listing.exists:
        return CleanResult(actions, dry_run, 0, 0)
    # Unfinished first, then least recently used first.
    for env in sorted(listing.envs, key=lambda e: (e.valid, e.last_used)):
        age_days = (now - env.last_used) / 86400
        if not env.valid:
            reason = "unfinished build (no stamp)"
        elif older_than_days is not None and age_days > older_than_days:
            reason = f"unused for {age_days:.0f} days"
        elif max_size is not None and listing.total > max_size:
            reason = f"least recently used, cache over {format_size(max_size)}"
        else:
            continue
        actions.append(_remove_env(listing, env, reason, dry_run=dry_run, say=say))
    removed = {a.name for a in actions if a.done and a.kind == "env"}
    if packages or (max_size is not None and listing.total > max_size):
        actions += _prune_packages(
            listing, removed, max_size=None if packages else max_size, dry_run=dry_run, say=say
        )
    actions += _sweep_leftovers(listing, now, dry_run=dry_run, say=say)
    actions += _prune_runs(listing, now, older_than_days, dry_run=dry_run, say=say)
    return CleanResult(actions, dry_run, before, listing.total)


PACKAGES_BUSY = "the package cache is in use by a build (pkgs/.cache.lock is held): skipped"


def _prune_packages(
    listing: CacheListing, removed: set[str], *, max_size: int | None, dry_run: bool, say: Say
) -> list[Action]:
    """Remove package-cache entries that no remaining env was installed from.

    The package cache is rattler's. rattler holds ``pkgs/.cache.lock`` (an exclusive flock)
    for the whole of an install, from the first fetch to the last hard link (checked with
    strace on py-rattler 0.28; its per-entry ``<entry>.lock`` files are not locked when the
    entry is valid). So entries are removed only while this holds that lock, taken without
    waiting; while any build is installing, no package is removed. Removing an entry never
    breaks an env (envs hold their own hard links); it only costs a new extraction or
    download the next time an env needs that package.
    """
    in_use: set[str] = set()
    for env in listing.envs:
        if env.name in removed:
            continue
        for record in _children(env.path / "conda-meta"):
            if record.suffix == ".json":
                in_use.add(record.stem)
    pkgs = listing.root / "pkgs"
    unused = [name for name in listing.packages if name not in in_use]
    if not unused:
        return []
    # Oldest first, so that with a size limit the most recently fetched are kept.
    unused.sort(key=lambda name: _mtime(pkgs / name) or 0.0)
    actions = []
    with _flock(pkgs / ".cache.lock") as held:
        if not held:
            say(PACKAGES_BUSY)
            return [Action("package", "pkgs/", False, PACKAGES_BUSY)]
        for name in unused:
            if max_size is not None and listing.total <= max_size:
                break
            if not dry_run:
                _delete(listing.root, pkgs / name)
            freed = listing.usage.forget(f"pkgs/{name}")
            verb = "would remove" if dry_run else "removed"
            say(f"{verb} package {name} (no env uses it), {format_size(freed)} freed")
            actions.append(Action("package", name, True, "no env uses it", freed))
    return actions


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[bool]:
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


def _sweep_leftovers(listing: CacheListing, now: float, *, dry_run: bool, say: Say) -> list[Action]:
    """tmp/ and trash/ entries of builds or deletions that were killed, and stray .used files."""
    root = listing.root
    actions = []
    for folder in ("tmp", "trash"):
        for entry in sorted(_children(root / folder)):
            match = LEFTOVER_NAME.fullmatch(entry.name)
            if match is None and now - (_mtime(entry) or now) < UNKNOWN_LEFTOVER_SECONDS:
                continue  # not ours to judge by its name: only removed once it is old
            guard = try_write_lock(root, match["env"]) if match else contextlib.nullcontext("")
            with guard as busy:
                if busy:
                    continue  # a build (or deletion) of that env is going on right now
                if not dry_run:
                    _delete_any(entry)
            freed = listing.usage.forget(f"{folder}/{entry.name}")
            name = f"{folder}/{entry.name}"
            say(f"{'would remove' if dry_run else 'removed'} leftover {name}")
            actions.append(Action("leftover", name, True, "left by a killed build", freed))
    if not dry_run:
        alive = {e.name for e in listing.envs if os.path.lexists(e.path)}
        for used in _children(root / "locks"):
            if used.suffix == ".used" and used.stem not in alive:
                with contextlib.suppress(OSError):
                    used.unlink()
    return actions


def _delete_any(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def _prune_runs(
    listing: CacheListing,
    now: float,
    older_than_days: float | None,
    *,
    dry_run: bool,
    say: Say,
) -> list[Action]:
    """Run folders beyond the newest KEEP_RUNS, or older than the age limit; never a live run's."""
    runs = sorted((p for p in _children(listing.root / "runs") if p.is_dir()), reverse=True)
    actions = []
    for index, run in enumerate(runs):
        if layout.run_is_live(run.name):
            continue
        too_old = older_than_days is not None and now - (_mtime(run) or now) > (
            older_than_days * 86400
        )
        if index < KEEP_RUNS and not too_old:
            continue
        if not dry_run:
            shutil.rmtree(run, ignore_errors=True)
        freed = listing.usage.forget(f"runs/{run.name}")
        reason = "older than the age limit" if too_old else f"beyond the newest {KEEP_RUNS} runs"
        say(f"{'would remove' if dry_run else 'removed'} run folder runs/{run.name} ({reason})")
        actions.append(Action("run", f"runs/{run.name}", True, reason, freed))
    return actions
