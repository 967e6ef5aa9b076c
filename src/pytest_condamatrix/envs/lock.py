"""One lock file for the whole matrix: rattler's format (the one pixi uses), an env per cell.

With a lock present, a cell installs exactly its locked packages (exact URLs and hashes,
no solve) and the locked identities are part of its env key. A lock is out of date for a
cell when it has no environment for it, lists other channels, or no longer satisfies one of
the cell's specs; ``--conda-matrix-locked`` turns that into an error instead of a re-solve.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .. import atomic
from ..errors import ConfigError

if TYPE_CHECKING:  # rattler is imported when a lock is read or written: most runs have none
    from rattler import RepoDataRecord

LOCK_NAME = "condamatrix.lock"


def record_identity(record: RepoDataRecord) -> str:
    digest = record.sha256.hex() if record.sha256 else (record.md5.hex() if record.md5 else "")
    return f"{record.url}#{digest}"


class MatrixLock:
    """A lock file read from disk."""

    def __init__(self, path: Path) -> None:
        from rattler import LockFile

        self.path = path
        try:
            self.file = LockFile.from_path(path)
        except Exception as exc:  # rattler raises ParseCondaLockError and friends
            raise ConfigError(
                f"cannot read the lock file: {str(exc).splitlines()[0] if str(exc) else exc}",
                file=path,
                hint="regenerate it with `condamatrix lock`",
            ) from None

    def records(self, cell_id: str, platform: str) -> list[RepoDataRecord] | None:
        env = self.file.environment(cell_id)
        if env is None:
            return None
        for lock_platform in env.platforms():
            if lock_platform.name == platform:
                return env.conda_repodata_records_for_platform(lock_platform)
        return None

    def identities(
        self, cell_id: str, channels: Sequence[str], specs: Sequence[str], platform: str
    ) -> tuple[tuple[str, ...] | None, str]:
        """The identities of the packages the lock pins for this cell (part of its env key),
        or None and why the lock does not fit the cell any more."""
        why = self.staleness(cell_id, channels, specs, platform)
        records = self.records(cell_id, platform) if why is None else None
        if records is None:
            return None, why or f"the lock has no packages for platform {platform}"
        return tuple(record_identity(r) for r in records), ""

    def staleness(
        self, cell_id: str, channels: Sequence[str], specs: Sequence[str], platform: str
    ) -> str | None:
        """Why the lock does not fit this cell any more, or None when it does."""
        import rattler
        from rattler import MatchSpec

        env = self.file.environment(cell_id)
        if env is None:
            return f"the lock has no environment for cell {cell_id}"
        locked_channels = [str(c) for c in env.channels()]
        wanted = [str(rattler.Channel(c).base_url).rstrip("/") for c in channels]
        if [c.rstrip("/") for c in locked_channels] != wanted:
            return f"channels changed (locked: {locked_channels}, now: {wanted})"
        records = self.records(cell_id, platform)
        if records is None:
            return f"the lock has no packages for platform {platform}"
        for spec in specs:
            match = MatchSpec(spec, strict=False)
            if not any(match.matches(r) for r in records):
                return f"spec {spec!r} is not satisfied by the locked packages"
        return None


def write_lock(
    path: Path, platform: str, cells: Sequence[tuple[str, Sequence[str], list[RepoDataRecord]]]
) -> None:
    """Write ``(cell id, channels, solved records)`` for every cell into one lock file."""
    import rattler
    from rattler import LockChannel, LockFile, LockPlatform

    lock = LockFile([LockPlatform(platform)])
    for cell_id, channels, records in cells:
        lock.set_channels(
            cell_id, [LockChannel(str(rattler.Channel(c).base_url)) for c in channels]
        )
        lock_platform = LockPlatform(platform)
        for record in records:
            lock.add_conda_package(cell_id, lock_platform, record)
    tmp = atomic.exclusive_temp(path)  # a fresh name: a fixed one could be a planted link
    try:
        lock.to_path(tmp)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
