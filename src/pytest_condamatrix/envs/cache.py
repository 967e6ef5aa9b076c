"""The shared, content-addressed cache of cell environments.

Layout under the cache root::

    CACHEDIR.TAG          marks the folder as a cache for backup tools
    envs/<cell>-<hash8>/   finished environments (immutable once their stamp exists)
    locks/<cell>-<hash8>.lock   one read-write lock per env: readers test in it, writers build it
    tmp/, trash/          builds in progress and envs being deleted; never read as envs
    pkgs/                 the engine's package cache, shared by hard links

An env is valid only when ``conda-meta/condamatrix-stamp.json`` holds its key. The stamp is
written into the temporary prefix before one ``rename`` publishes the env, so a build killed
at any point leaves either no env or a complete one. Checking and building happen under the
env's write lock; tests run under its read lock, so a rebuild waits for runs still using it.

Engines that cannot build under one name and publish under another (conda, mamba and
micromamba write the prefix's absolute path into files) set ``builds_in_place``: they build
straight at the final path, under the write lock, and the stamp written last is then what
publishes the env. A killed in-place build leaves a folder without a stamp, which is never
reused: the next build discards it, and ``condamatrix cache prune`` removes it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from filelock import ReadWriteLock, Timeout

from .. import __version__, atomic
from ..errors import CacheError, EnvBuildError
from ..results import EnvState
from . import inuse, trust, verify
from . import stamp as stamps
from .history import ProjectHistory
from .spec import EnvSpec, describe_changes

STAMP = stamps.STAMP
SUBFOLDERS = ("envs", "locks", "tmp", "trash", "pkgs", "runs")
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by pytest-condamatrix.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)

#: builder(spec, temporary_prefix, final_prefix) -> installed packages as "name=version=build"
Builder = Callable[[EnvSpec, Path, Path], list[str]]
PhaseCallback = Callable[[str], None]
#: how often a wait for an env's lock asks whether the run was interrupted
LOCK_POLL_SECONDS = 0.2
#: files that may differ from conda-meta after a build (a pip layer's) before reuse stops checking
UNCHECKED_LIMIT = 1000


class LockWaitCancelled(Exception):
    """The run was interrupted while it waited for another run's lock on an env."""


@dataclass(frozen=True)
class EnvStatus:
    """The env a cell runs in, and how it came to be."""

    prefix: Path
    key: str
    status: EnvState
    reason: str  # why it was (re)built; empty when reused
    packages: tuple[str, ...]
    seconds: float

    @property
    def python(self) -> Path:
        return python_executable(self.prefix)


def python_executable(prefix: Path) -> Path:
    if os.name == "nt":  # pragma: no cover - the tool targets POSIX cells today
        return prefix / "python.exe"
    return prefix / "bin" / "python"


class EnvCache:
    """Reuse, build and lock environments under one cache root."""

    def __init__(self, root: Path, *, project: str | None = None) -> None:
        """``project``: the folder of the project whose runs use the cache; a rebuild is
        then explained against that project's previous env of the cell."""
        self.root = root
        self.history = ProjectHistory(root, project) if project else None
        self.group = trust.shared_group(root)  # a setgid root: a cache shared by its group
        hint = "pick a writable folder with --conda-matrix-cache-dir or CONDAMATRIX_CACHE_DIR"
        for sub in SUBFOLDERS:
            path = root / sub
            if path.is_symlink() or (path.exists() and not path.is_dir()):
                raise CacheError(
                    f"cannot use the cache folder {root}: {sub} in it is not a folder",
                    hint=f"remove {path} (it is made again), or {hint}",
                )
        try:
            for sub in SUBFOLDERS:
                (root / sub).mkdir(parents=True, exist_ok=True)
            tag = root / "CACHEDIR.TAG"
            if not tag.exists():
                _write_atomic(tag, CACHEDIR_TAG)
            # Every run writes lock files: find out now, not as a lock error of each cell.
            atomic.exclusive_temp(root / "locks" / ".writable").unlink()
        except OSError as exc:
            why = exc.strerror or str(exc)
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                why = f"it is not writable for this user ({why})"
            raise CacheError(
                f"cannot use the cache folder {root}: {why}",
                hint=hint + "; a cache shared by a group: see docs/cache.md",
            ) from None

    @property
    def package_cache(self) -> Path:
        return self.root / "pkgs"

    def prefix_for(self, spec: EnvSpec) -> Path:
        return self.root / "envs" / spec.dirname

    def lock_for(self, spec: EnvSpec) -> ReadWriteLock:
        path = self.root / "locks" / f"{spec.dirname}.lock"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Created here so that it honours the umask: filelock would make it 0600, which
            # locks out the other users of a cache shared through a group.
            atomic.touch_lock_file(path)
            # A fresh instance per use: one instance coordinates processes, not threads.
            return ReadWriteLock(path, is_singleton=False)
        except (sqlite3.Error, OSError, ValueError) as exc:
            raise _lock_error(path, exc) from None

    @contextlib.contextmanager
    def _hold(
        self,
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

    @contextlib.contextmanager
    def use(
        self,
        spec: EnvSpec,
        builder: Builder,
        *,
        rebuild: bool = False,
        on_phase: PhaseCallback | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> Iterator[EnvStatus]:
        """Yield a valid env for ``spec`` (reused or built), held under its read lock.

        ``cancelled`` is asked while waiting for another run's lock: when it says yes, the wait
        ends with :class:`LockWaitCancelled` (an interrupted run must not wait for others).
        """
        phase = on_phase or (lambda _: None)
        lock = self.lock_for(spec)
        built: EnvStatus | None = None
        force = rebuild
        while True:
            if not force:
                phase("checking cache")
                with self._hold(lock, "read", cancelled):
                    # just built and stamped by us: its files were listed a moment ago
                    stamp, _ = self._check(spec, files=built is None)
                    if stamp is not None:
                        self._touch(spec)
                        if self.history is not None:
                            self.history.remember(spec.cell_id, spec.key, spec.inputs())
                        yield built or EnvStatus(
                            prefix=self.prefix_for(spec),
                            key=spec.key,
                            status=EnvState.REUSED,
                            reason="",
                            packages=tuple(stamp.get("packages", ())),
                            seconds=0.0,
                        )
                        return
            phase("waiting for lock")
            with self._hold(lock, "write", cancelled):
                stamp, why = self._check(spec)
                if stamp is not None and not force:
                    continue  # another run built it while we waited
                reason = "forced (--conda-matrix-rebuild)" if force else why
                built = self._build(spec, builder, reason, phase)
                force = False

    def _check(self, spec: EnvSpec, *, files: bool = True) -> tuple[dict[str, Any] | None, str]:
        """The env's stamp if the env is valid, else None and why it is not.

        ``files``: also check that every file its packages installed is still there.
        """
        prefix = self.prefix_for(spec)
        if prefix.is_symlink():  # never followed: what it points at is not the cache's
            return None, "damaged env: a symbolic link is in place of its folder"
        if not prefix.exists():
            return None, self._why_missing(spec)
        stamp_path = prefix / STAMP
        if not stamp_path.is_file():
            return None, "incomplete env (no stamp): an earlier build did not finish"
        try:
            stamp = json.loads(stamp_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None, "damaged env: its stamp is unreadable"
        if not isinstance(stamp, dict) or stamp.get("key") != spec.key:
            return None, "damaged env: its stamp belongs to another key"
        built_at = stamp.get("prefix")
        if built_at is not None and built_at != str(prefix):
            # conda envs hold their absolute path (shebangs, text files): a copy made
            # elsewhere, e.g. a CI cache restored under another folder, is not usable here
            return None, f"moved env: it was built at {built_at}"
        if not python_executable(prefix).exists():
            return None, "damaged env: its python executable is missing"
        why = stamps.problem(prefix, stamp)
        if why:
            return None, why
        if files:
            installed: set[str] = set()
            skip = stamps.unchecked(stamp) if stamp.get("files_complete", True) else None
            why = _files_problem(prefix, skip, content=False, seen=installed)
            if why:
                return None, f"damaged env: {why}"
            folders = {path.rpartition("/")[0] for path in installed}
            why = trust.problem(prefix, folders, installed, self.group)
            if why:
                return None, f"untrusted env: {why}"
        return stamp, ""

    def check_suspected(self, spec: EnvSpec) -> str:
        """Compare every file of the env with its package (content too) after a cell failed in
        a way that suggests damage (an exec format error, an installed module that does not
        import); a damaged env is discarded, so the next use rebuilds it. Returns what was
        found, empty when the env is whole.
        """
        with self._hold(self.lock_for(spec), "write", None):
            stamp, why = self._check(spec)
            if stamp is None:
                return why
            why = _files_problem(self.prefix_for(spec), stamps.unchecked(stamp), content=True)
            if why:
                self._discard(self.prefix_for(spec))
                return f"damaged env: {why}"
        return ""

    def _why_missing(self, spec: EnvSpec) -> str:
        """Explain a cache miss by diffing against the project's previous env of the cell, or
        (without a project) the newest env of the same cell id, if any."""
        if self.history is not None:
            previous = self.history.inputs_of(spec.cell_id)
            if previous is None:
                return "new"
            if previous == spec.inputs():
                return "the env was removed from the cache"
            return "inputs changed: " + describe_changes(previous, spec.inputs())
        pattern = re.compile(re.escape(spec.cell_id) + r"-[0-9a-f]{8}")
        newest: tuple[float, dict[str, Any]] | None = None
        for entry in (self.root / "envs").iterdir():
            if not pattern.fullmatch(entry.name):
                continue
            try:
                stamp = json.loads((entry / STAMP).read_text(encoding="utf-8"))
                built_at = float(stamp["built_at"])
                inputs = stamp["inputs"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if isinstance(inputs, dict) and (newest is None or built_at > newest[0]):
                newest = (built_at, inputs)
        if newest is None:
            return "new"
        return "inputs changed: " + describe_changes(newest[1], spec.inputs())

    def _build(
        self, spec: EnvSpec, builder: Builder, reason: str, phase: PhaseCallback
    ) -> EnvStatus:
        final = self.prefix_for(spec)
        self._sweep(spec)
        if final.is_symlink():
            final.unlink()  # the link only, dangling or not
        elif final.exists():
            self._refuse_if_in_use(spec, final)
            self._discard(final)
        in_place = builds_in_place(builder)
        tmp = (
            final
            if in_place
            else self.root / "tmp" / f"{spec.dirname}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        )
        start = time.monotonic()
        phase("building")
        try:
            packages, repaired, unchecked = self._build_verified(spec, builder, tmp, final)
            if repaired:
                reason = f"{reason}; {repaired}"
            stamp = {
                "key": spec.key,
                "cell": spec.cell_id,
                "inputs": spec.inputs(),
                "packages": packages,
                "built_at": time.time(),
                "built_by": f"pytest-condamatrix {__version__}",
                "prefix": str(final),
                "files_complete": unchecked is not None,
                # files that differed from conda-meta right after the build (a pip layer may
                # replace a conda package's files): reuse checks all the others
                "unchecked": sorted(unchecked or ()),
                "records": stamps.record_digests(tmp),
            }
            _write_atomic(tmp / STAMP, json.dumps(stamps.sealed(stamp), indent=1))
            if not in_place:
                tmp.rename(final)  # the one step that publishes the env
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(exc, OSError):
                raise CacheError(
                    f"cannot write the env {spec.cell_id} into {final}: {exc.strerror or exc}",
                    hint="free disk space or pick another cache folder (--conda-matrix-cache-dir)",
                ) from None
            if _disk_full(exc):  # the engine's error says so, behind its own wording
                raise CacheError(
                    f"the disk of the cache {self.root} is full: the env {spec.cell_id} could "
                    f"not be written ({os.strerror(errno.ENOSPC)})",
                    hint="free disk space (`condamatrix cache prune`) or pick another cache folder "
                    "(--conda-matrix-cache-dir)",
                ) from None
            raise
        self._touch(spec)
        return EnvStatus(
            prefix=final,
            key=spec.key,
            status=EnvState.BUILT,
            reason=reason,
            packages=tuple(packages),
            seconds=time.monotonic() - start,
        )

    def _refuse_if_in_use(self, spec: EnvSpec, prefix: Path) -> None:
        """Keep an env that processes still run from (left by a killed run: no lock says so)."""
        users = inuse.wait_until_unused(prefix)
        if users:
            shown = ", ".join(str(pid) for pid in users[:5])
            raise EnvBuildError(
                f"the env of {spec.cell_id} is still used by process(es) {shown}, left behind "
                f"by a run that was killed: {prefix} is not rebuilt under them",
                hint="end those processes (or wait for them), then run again",
            )

    def _build_verified(
        self, spec: EnvSpec, builder: Builder, tmp: Path, final: Path
    ) -> tuple[list[str], str, frozenset[str] | None]:
        """Build, then compare every installed file with its package (content too).

        A hard-linked file that differs is damaged in the package cache itself (and so in
        every env built from it): that package cache entry is discarded, so that the engine
        extracts it again, and the env is built once more. Returns the packages, what was
        repaired, and the files that differ anyway (a pip layer's; None when too many).
        """
        packages = builder(spec, tmp, final)
        damage = self._linked_damage(spec, tmp)
        repaired = ""
        if damage:
            for entry in {d.package_dir for d in damage}:
                self._discard_package(Path(entry))
            repaired = f"repaired the package cache: {verify.describe(damage)}"
            shutil.rmtree(tmp, ignore_errors=True)
            packages = builder(spec, tmp, final)
            damage = self._linked_damage(spec, tmp)
            if damage:
                raise EnvBuildError(
                    f"the env of {spec.cell_id} is damaged right after its build: "
                    f"{verify.describe(damage)}",
                    hint="clear the package cache (`condamatrix cache prune --packages`) and "
                    "check the channel's packages",
                )
        trust.honour_umask(tmp, trust.umask())  # rattler writes its records 0600
        left = verify.damaged_files(tmp, content=False, limit=UNCHECKED_LIMIT + 1)
        if len(left) > UNCHECKED_LIMIT:
            return packages, repaired, None
        return packages, repaired, frozenset(d.path for d in left)

    def _linked_damage(self, spec: EnvSpec, prefix: Path) -> list[verify.Damage]:
        # Only hard links share the package cache's copy; other differences are the install's
        # own (a pip layer replacing files, a file a package lists but never ships).
        return [d for d in verify.damaged_files(prefix, content=True) if d.linked]

    def _discard_package(self, entry: Path) -> None:
        """Remove one package cache entry (only inside our package cache: never elsewhere)."""
        pkgs = self.package_cache.resolve()
        try:
            resolved = entry.resolve()
        except OSError:
            return
        if resolved.parent != pkgs or not resolved.is_dir():
            return
        doomed = self.root / "trash" / f"pkgs-{resolved.name}.{uuid.uuid4().hex[:8]}"
        with contextlib.suppress(OSError):
            resolved.rename(doomed)
            shutil.rmtree(doomed, ignore_errors=True)

    def _sweep(self, spec: EnvSpec) -> None:
        """Remove leftovers of killed builds of this env (we hold its write lock)."""
        for folder in ("tmp", "trash"):
            for entry in (self.root / folder).glob(f"{spec.dirname}.*"):
                shutil.rmtree(entry, ignore_errors=True)

    def _discard(self, prefix: Path) -> None:
        # Rename first so that no reader can ever see a half-deleted env under the real name.
        doomed = self.root / "trash" / f"{prefix.name}.{uuid.uuid4().hex[:8]}"
        prefix.rename(doomed)
        shutil.rmtree(doomed, ignore_errors=True)

    def _touch(self, spec: EnvSpec) -> None:
        # Last-use time for pruning lives beside the lock: envs stay untouched once stamped.
        with contextlib.suppress(OSError):
            (self.root / "locks" / f"{spec.dirname}.used").touch()


def _files_problem(
    prefix: Path, unchecked: frozenset[str] | None, *, content: bool, seen: set[str] | None = None
) -> str:
    """What is wrong with the env's installed files, as its conda-meta records describe them.

    ``unchecked`` None: too many files differed right after the build to check any (only
    ``seen`` is filled in).
    """
    try:
        damage = verify.damaged_files(
            prefix,
            content=content,
            skip=unchecked or frozenset(),
            seen=seen,
            limit=1 << 30 if unchecked is None else 20,
        )
    except verify.UnreadableRecord as exc:
        return f"its package record {exc} is unreadable"
    if unchecked is None:
        return ""
    return verify.describe(damage) if damage else ""


def _disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    text = str(exc)
    # Rust's io errors (rattler) end in "(os error N)"; others carry the C library's text.
    return any(
        f"(os error {code})" in text or os.strerror(code) in text
        for code in (errno.ENOSPC, errno.EDQUOT)
    )


def _lock_error(path: Path, exc: BaseException) -> CacheError:
    return CacheError(
        f"cannot use the lock file {path}: {exc}",
        hint="if no run uses this cache now, delete that file; it is made again when needed",
    )


def builds_in_place(builder: Builder) -> bool:
    """Whether the engine behind ``builder`` must build at the final prefix (CLI engines)."""
    owner = getattr(builder, "__self__", builder)  # a bound ``engine.build``, or the engine
    return bool(getattr(owner, "builds_in_place", False))


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, text)
