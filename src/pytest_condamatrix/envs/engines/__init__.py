"""Engines that turn an :class:`~pytest_condamatrix.envs.spec.EnvSpec` into a conda prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from ..spec import EnvSpec


class Engine(Protocol):
    """What the cache needs from an engine."""

    #: name and version, part of every env key (a new engine version gives new envs)
    id: str

    def virtual_packages(self, cuda: str) -> tuple[str, ...]:
        """The virtual packages (``name=version=build``) a cell of this CUDA variant solves with."""

    def build(self, spec: EnvSpec, prefix: Path, final_prefix: Path) -> list[str]:
        """Solve and install ``spec`` into ``prefix``, ready to be renamed to ``final_prefix``."""
