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
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import ReadWriteLock

from .. import __version__
from ..errors import CacheError
from .spec import EnvSpec, describe_changes

STAMP = Path("conda-meta") / "condamatrix-stamp.json"
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by pytest-condamatrix.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)

#: builder(spec, temporary_prefix, final_prefix) -> installed packages as "name=version=build"
Builder = Callable[[EnvSpec, Path, Path], list[str]]
PhaseCallback = Callable[[str], None]


@dataclass(frozen=True)
class EnvStatus:
    """The env a cell runs in, and how it came to be."""

    prefix: Path
    key: str
    status: str  # "reused" or "built"
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

    def __init__(self, root: Path) -> None:
        self.root = root
        try:
            for sub in ("envs", "locks", "tmp", "trash", "pkgs"):
                (root / sub).mkdir(parents=True, exist_ok=True)
            tag = root / "CACHEDIR.TAG"
            if not tag.exists():
                _write_atomic(tag, CACHEDIR_TAG)
        except OSError as exc:
            raise CacheError(
                f"cannot use the cache folder {root}: {exc.strerror or exc}",
                hint="pick a writable folder with --conda-matrix-cache-dir or "
                "CONDAMATRIX_CACHE_DIR",
            ) from None

    @property
    def package_cache(self) -> Path:
        return self.root / "pkgs"

    def prefix_for(self, spec: EnvSpec) -> Path:
        return self.root / "envs" / spec.dirname

    def lock_for(self, spec: EnvSpec) -> ReadWriteLock:
        # A fresh instance per use: one instance coordinates processes, not threads.
        return ReadWriteLock(self.root / "locks" / f"{spec.dirname}.lock", is_singleton=False)

    @contextlib.contextmanager
    def use(
        self,
        spec: EnvSpec,
        builder: Builder,
        *,
        rebuild: bool = False,
        on_phase: PhaseCallback | None = None,
    ) -> Iterator[EnvStatus]:
        """Yield a valid env for ``spec`` (reused or built), held under its read lock."""
        phase = on_phase or (lambda _: None)
        lock = self.lock_for(spec)
        built: EnvStatus | None = None
        force = rebuild
        while True:
            if not force:
                phase("checking cache")
                with lock.read_lock():
                    stamp, _ = self._check(spec)
                    if stamp is not None:
                        self._touch(spec)
                        yield built or EnvStatus(
                            prefix=self.prefix_for(spec),
                            key=spec.key,
                            status="reused",
                            reason="",
                            packages=tuple(stamp.get("packages", ())),
                            seconds=0.0,
                        )
                        return
            phase("waiting for lock")
            with lock.write_lock():
                stamp, why = self._check(spec)
                if stamp is not None and not force:
                    continue  # another run built it while we waited
                reason = "forced (--conda-matrix-rebuild)" if force else why
                built = self._build(spec, builder, reason, phase)
                force = False

    def _check(self, spec: EnvSpec) -> tuple[dict[str, Any] | None, str]:
        """The env's stamp if the env is valid, else None and why it is not."""
        prefix = self.prefix_for(spec)
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
        if not python_executable(prefix).exists():
            return None, "damaged env: its python executable is missing"
        return stamp, ""

    def _why_missing(self, spec: EnvSpec) -> str:
        """Explain a cache miss by diffing against the newest env of the same cell, if any."""
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
        if final.exists():
            self._discard(final)
        tmp = self.root / "tmp" / f"{spec.dirname}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        start = time.monotonic()
        phase("building")
        try:
            packages = builder(spec, tmp, final)
            stamp = {
                "format": 1,
                "key": spec.key,
                "cell": spec.cell_id,
                "inputs": spec.inputs(),
                "packages": packages,
                "built_at": time.time(),
                "built_by": f"pytest-condamatrix {__version__}",
            }
            _write_atomic(tmp / STAMP, json.dumps(stamp, indent=1))
            tmp.rename(final)  # the one step that publishes the env
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(exc, OSError):
                raise CacheError(
                    f"cannot write the env {spec.cell_id} into {final}: {exc.strerror or exc}",
                    hint="free disk space or pick another cache folder (--conda-matrix-cache-dir)",
                ) from None
            raise
        self._touch(spec)
        return EnvStatus(
            prefix=final,
            key=spec.key,
            status="built",
            reason=reason,
            packages=tuple(packages),
            seconds=time.monotonic() - start,
        )

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


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
