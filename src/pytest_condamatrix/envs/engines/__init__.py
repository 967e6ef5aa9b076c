"""Engines that turn an :class:`~pytest_condamatrix.envs.spec.EnvSpec` into a conda prefix."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .. import layout
from ..spec import EnvSpec

if TYPE_CHECKING:
    from ..lock import MatrixLock


class Engine(Protocol):
    """What the cache needs from an engine."""

    #: name and version, part of every env key (a new engine version gives new envs)
    id: str
    #: the conda platform envs are built for, e.g. ``linux-64``
    platform: str
    # An engine that cannot build under a temporary name and be renamed (the CLI engines)
    # also has ``builds_in_place = True``: the cache then passes the final prefix as
    # ``prefix`` and publishes the env by writing its stamp last (see envs/cache.py).

    def virtual_packages(self, cuda: str) -> tuple[str, ...]:
        """The virtual packages (``name=version=build``) a cell of this CUDA variant solves with."""

    def build(self, spec: EnvSpec, prefix: Path, final_prefix: Path) -> list[str]:
        """Solve and install ``spec`` into ``prefix``, ready to be renamed to ``final_prefix``."""


def make_engine(name: str, cache_root: Path, *, lock: MatrixLock | None = None) -> Engine:
    """The engine ``name`` (config ``engine``): ``rattler``, or a CLI found on this machine."""
    if name == "rattler":
        from .rattler import RattlerEngine

        pkgs, repodata = layout.package_cache(cache_root), layout.repodata_cache(cache_root)
        return RattlerEngine(pkgs, repodata, lock=lock)
    from .cli_engines import CliEngine

    return CliEngine.find(name, lock=lock)
