"""What the cache holds: its envs (with their stamps, sizes and last use) and package entries.

- **Last used** is the time of ``locks/<env>.used``, which every run touches when it uses the
  env (falling back to the stamp's build time, then the folder's time).
- **Stale** means *not used for more than N days* (default 30). It deliberately does not ask
  whether the current project still maps a cell to the env: the cache is shared by every
  project of the user (and by CI jobs), so an env no cell of *this* project uses may well
  be another project's current env. Age is the one test that is right for all of them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import layout
from .layout import ENV_NAME
from .stamp import Stamp
from .usage import DiskUsage

DEFAULT_STALE_DAYS = 30.0


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
    for child in children(root):
        if child.name in PARTS and child.is_dir() and not child.is_symlink():
            usage.add_entry(child, "other")  # the folder itself, not its content
            for sub in children(child):
                usage.add_tree(sub, f"{child.name}/{sub.name}")
        else:
            usage.add_tree(child, "other")
    env_paths = sorted(p for p in children(root / "envs") if _is_env_entry(p))
    packages = sorted(p.name for p in children(root / "pkgs") if p.is_dir() and not p.is_symlink())
    envs = [_env_entry(root, path, usage) for path in env_paths]
    return CacheListing(root, True, envs, packages, usage)


def _is_env_entry(path: Path) -> bool:
    """A folder of envs/, or a link named as ours (dangling or not): never a valid env, and
    listed so that prune and remove see it; other links are not ours and stay unseen."""
    if path.is_symlink():
        return ENV_NAME.fullmatch(path.name) is not None
    return path.is_dir()


def children(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []


def _env_entry(root: Path, path: Path, usage: DiskUsage) -> EnvEntry:
    stamp = Stamp()
    with contextlib.suppress(OSError, ValueError):
        # a link is never read through: what it points at is not in the cache
        stamp = Stamp() if path.is_symlink() else Stamp.read(path)
    match = ENV_NAME.fullmatch(path.name)
    key = stamp.key
    valid = match is not None and key.startswith(match["hash"])
    built_at = stamp.built_at if valid else None
    inputs = stamp.inputs
    last_used = mtime(layout.used_file(root, path.name))
    if last_used is None:
        last_used = built_at if built_at is not None else mtime(path) or 0.0
    return EnvEntry(
        name=path.name,
        path=path,
        cell=stamp.cell or (match["cell"] if match else path.name),
        key=key if valid else (match["hash"] if match else ""),
        valid=valid,
        built_at=built_at,
        last_used=last_used,
        engine=str(inputs.get("engine", "")) if inputs is not None else "",
        packages=stamp.packages if valid else (),
        size=usage.size_of(f"envs/{path.name}"),
        frees=usage.frees(f"envs/{path.name}"),
    )


def mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None
