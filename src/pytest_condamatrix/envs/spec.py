"""What decides a cell's environment, and the content key derived from it.

The key hashes every input that changes what gets installed, so the cache-hit decision
needs no solve and no network: engine and version, platform, channels (and, for local
folder channels, their index content), specs, and the virtual packages used for the solve.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..config.envfile import file_fingerprints
from .layout import env_name

if TYPE_CHECKING:
    from ..matrix import Cell

FORMAT_VERSION = 1


@dataclass(frozen=True)
class EnvSpec:
    """Everything that decides one environment; equal specs give identical envs."""

    cell_id: str
    engine: str
    platform: str
    channels: tuple[str, ...]
    specs: tuple[str, ...]
    virtual_packages: tuple[str, ...]
    channel_fingerprints: tuple[str, ...] = ()
    #: the cell's CUDA variant; already part of the key through the ``__cuda`` virtual package
    cuda: str = "cpu"
    #: pip requirements installed after the conda packages, and hashes of local files among them
    pip: tuple[str, ...] = ()
    pip_files: tuple[str, ...] = ()
    #: sha256 of the environment.yml the cell is based on
    environment_file: str = ""
    #: identities (url#sha256) of the packages a lock file pins for this cell; no solve then
    locked: tuple[str, ...] = ()

    def inputs(self) -> dict[str, Any]:
        """The key's inputs as plain JSON data (stored in the stamp, diffed to explain rebuilds)."""
        inputs: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "engine": self.engine,
            "platform": self.platform,
            "channels": list(self.channels),
            "channel_content": list(self.channel_fingerprints),
            "specs": list(self.specs),
            "virtual_packages": list(self.virtual_packages),
        }
        # Optional inputs appear only when used, so that envs without them keep their keys.
        optional = {
            "pip": list(self.pip),
            "pip_files": list(self.pip_files),
            "environment_file": self.environment_file,
            "locked": list(self.locked),
        }
        inputs.update({name: value for name, value in optional.items() if value})
        return inputs

    @property
    def key(self) -> str:
        canonical = json.dumps(self.inputs(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def dirname(self) -> str:
        return env_name(self.cell_id, self.key)


class SpecEngine(Protocol):
    """What a spec takes from its engine: its name and version, and the virtual packages."""

    @property
    def id(self) -> str: ...

    def virtual_packages(self, cuda: str) -> tuple[str, ...]: ...


def make_spec(
    cell: Cell,
    engine: SpecEngine,
    platform: str,
    *,
    environment_sha: str = "",
    locked: tuple[str, ...] = (),
) -> EnvSpec:
    """The one way a cell's env spec is made (a run, the CLI commands, the GitHub matrix)."""
    fingerprints = tuple(
        fp for fp in (channel_fingerprint(c, platform) for c in cell.channels) if fp
    )
    return EnvSpec(
        cell_id=cell.id,
        engine=engine.id,
        platform=platform,
        channels=cell.channels,
        specs=cell.specs,
        virtual_packages=engine.virtual_packages(cell.cuda),
        channel_fingerprints=fingerprints,
        cuda=cell.cuda,
        pip=cell.pip,
        pip_files=file_fingerprints(cell.pip),
        environment_file=environment_sha,
        locked=locked,
    )


def channel_fingerprint(channel: str, platform: str) -> str | None:
    """Hash of a local folder channel's index; None for remote channels (names or URLs)."""
    if "://" in channel and not channel.startswith("file://"):
        return None
    folder = Path(channel.removeprefix("file://"))
    if not folder.is_absolute() or not folder.is_dir():
        return None
    digest = hashlib.sha256()
    for subdir in (platform, "noarch"):
        repodata = folder / subdir / "repodata.json"
        digest.update(subdir.encode())
        if repodata.is_file():
            digest.update(repodata.read_bytes())
    return f"{channel}@{digest.hexdigest()[:16]}"


#: inputs too long to show item by item in a table: only that they changed is said
SUMMARISED = {
    "channels": "channels changed",
    "channel_content": "a local channel's index changed",
    "environment_file": "the environment file changed",
    "locked": "the lock file changed",
    "pip_files": "a local pip file changed",
}


def describe_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """Say which inputs differ, e.g. ``specs: +numpy >=1.24, -numpy; channels changed``."""
    parts: list[str] = []
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        if name in SUMMARISED:
            parts.append(SUMMARISED[name])
            continue
        if isinstance(before, list) or isinstance(after, list):
            before, after = before or [], after or []  # an input absent before is empty
        if isinstance(before, list) and isinstance(after, list):
            changes = [f"+{x}" for x in after if x not in before]
            changes += [f"-{x}" for x in before if x not in after]
            parts.append(f"{name}: {', '.join(changes) if changes else 'order changed'}")
        else:
            parts.append(f"{name}: {_show(before)} -> {_show(after)}")
    return "; ".join(parts) if parts else "no input changed"


def _show(value: Any) -> str:
    """A value as a user wrote it: ``3.12``, not ``'3.12'``; nothing as ``(none)``."""
    if value is None or value == "":
        return "(none)"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "(none)"
    return str(value)
