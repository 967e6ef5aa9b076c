"""Clean the env cache: prune envs by age or size, remove some by name, sweep leftovers.

Removing never races a run: each env is removed only under its write lock, taken without
waiting; an env another run holds (tests running in it, or a build in progress) is skipped
and said so. Lock files are kept: deleting a lock file another process may be waiting on
would let two processes hold "the" lock at once (they are empty files).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import layout
from .inventory import CacheListing, EnvEntry, children, mtime, scan
from .layout import KEEP_RUNS, LEFTOVER_NAME
from .locks import flock, try_write_lock
from .usage import format_size

#: leftovers in tmp/ or trash/ whose env cannot be told from their name are removed after this
UNKNOWN_LEFTOVER_SECONDS = 24 * 3600.0

Say = Callable[[str], None]


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
        used = mtime(layout.used_file(root, env.name))
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
        for record in children(env.path / "conda-meta"):
            if record.suffix == ".json":
                in_use.add(record.stem)
    pkgs = listing.root / "pkgs"
    unused = [name for name in listing.packages if name not in in_use]
    if not unused:
        return []
    # Oldest first, so that with a size limit the most recently fetched are kept.
    unused.sort(key=lambda name: mtime(pkgs / name) or 0.0)
    actions = []
    with flock(pkgs / ".cache.lock") as held:
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


def _sweep_leftovers(listing: CacheListing, now: float, *, dry_run: bool, say: Say) -> list[Action]:
    """tmp/ and trash/ entries of builds or deletions that were killed, and stray .used files."""
    root = listing.root
    actions = []
    for folder in ("tmp", "trash"):
        for entry in sorted(children(root / folder)):
            match = LEFTOVER_NAME.fullmatch(entry.name)
            if match is None and now - (mtime(entry) or now) < UNKNOWN_LEFTOVER_SECONDS:
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
        for used in children(root / "locks"):
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
    runs = sorted((p for p in children(listing.root / "runs") if p.is_dir()), reverse=True)
    actions = []
    for index, run in enumerate(runs):
        if layout.run_is_live(run.name):
            continue
        too_old = older_than_days is not None and now - (mtime(run) or now) > (
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
