"""The project under test in a cell: built and installed into a per-run overlay.

``install = "wheel"`` builds the project's wheel with its own PEP 517 backend (once when it is
pure Python, per cell when it is a platform wheel) and unpacks it into the cell's overlay;
``"editable"`` does the same with a PEP 660 editable wheel; ``"none"`` imports the sources
through ``pythonpath`` and only writes the project's metadata and console scripts. The
overlay is in the run's folder: the cached env is never written to.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import INSTALL_MODES
from ..errors import InstallError
from .prefix import env_python_version
from .project import Project, read_project
from .sources import Sources, scan_sources

if TYPE_CHECKING:
    from ..config import MatrixConfig
    from ..matrix import Cell

__all__ = ["INSTALL_MODES", "InstallError", "InstallSettings", "Overlay", "prepare_install"]


@dataclass(frozen=True)
class InstallSettings:
    """How the project reaches the cells; ``mode`` is always decided (never "auto")."""

    mode: str
    root: Path
    cache_root: Path
    extras: tuple[str, ...] = ()
    reason: str = ""  # why this mode, when it was not configured
    #: the project's sources, read once as the run starts: every cell builds the same ones
    sources: Sources | None = None

    @classmethod
    def from_config(
        cls, config: MatrixConfig, override: str | None, cache_root: Path
    ) -> InstallSettings:
        mode = override or config.install
        reason = ""
        if mode is None:
            # tox's default when the project can be built; its cost is measured in
            # docs/benchmarks.md. Without a build system there is nothing to build.
            buildable = read_project(config.root).has_build_system
            mode = "wheel" if buildable else "none"
            reason = "[build-system] found" if buildable else "no [build-system]"
        sources = scan_sources(config.root) if mode != "none" else None
        return cls(mode, config.root, cache_root, tuple(config.install_extras), reason, sources)


@dataclass(frozen=True)
class Overlay:
    """What a cell's process needs to see the installed project."""

    pythonpath: tuple[str, ...] = ()
    path: tuple[str, ...] = ()
    note: str = ""  # for the report, e.g. "project wheel rebuilt: sources changed: src/a.c"
    seconds: float = 0.0


def prepare_install(
    settings: InstallSettings,
    cell: Cell,
    env_prefix: Path,
    env_python: Path,
    env_key: str,
    run_dir: Path,
) -> Overlay:
    """Build (or reuse) the project for ``cell`` and install it into a fresh overlay in
    ``run_dir``; raises :class:`InstallError` with a fix when that cannot be done."""
    # here: a run that builds nothing (install = "none") imports no build machinery
    from . import overlay
    from .metadata import requires_dist, write_static_metadata

    start = time.monotonic()
    project = read_project(settings.root)
    minor = ".".join(cell.python.split(".")[:2])
    version = env_python_version(env_prefix, minor)
    folder = run_dir / "overlays" / cell.id
    overlay.clear(folder)
    note = ""
    if settings.mode == "none":
        requirements = write_static_metadata(project, folder, env_python)
    else:
        if not project.buildable:
            raise InstallError(
                f"install = {settings.mode!r}, but {settings.root} has no [build-system] "
                "table and no setup.py, so there is nothing to build",
                hint="add a [build-system] table to pyproject.toml, or use install = 'none'",
            )
        from . import backend
        from .wheels import cached_wheel

        sources = settings.sources or scan_sources(settings.root)

        def build(source: Path, out: Path) -> Path:
            return backend.build(
                project, source, out, editable=settings.mode == "editable",
                python=env_python, prefix=env_prefix, minor=minor,
                python_version=version, cache_root=settings.cache_root,
            )  # fmt: skip

        built = cached_wheel(
            settings.cache_root, project.name, sources, settings.mode, env_key, build
        )
        note = built.note
        overlay.install_wheel(built.wheel, folder, env_python)
        requirements = requires_dist(folder / "site")
    _check_requirements(project, requirements, settings, cell, env_prefix, minor, version, folder)
    pythonpath, path = overlay.path_entries(folder)
    return Overlay(pythonpath, path, note, time.monotonic() - start)


def _check_requirements(
    project: Project,
    requirements: tuple[str, ...],
    settings: InstallSettings,
    cell: Cell,
    prefix: Path,
    minor: str,
    version: str,
    folder: Path,
) -> None:
    if not requirements:  # nothing to look for: no scan of the env, no packaging imported
        return
    from .prefix import site_packages
    from .requirements import fix_for, installed, missing

    have = installed([site_packages(prefix, minor), folder / "site"])
    lacking = missing(requirements, have, version, settings.extras)
    if not lacking:
        return
    listed = "; ".join(f"{req} ({fix_for(req)})" for req in lacking)
    extras = f" with extras {list(settings.extras)}" if settings.extras else ""
    raise InstallError(
        f"the project {project.name or settings.root.name!r}{extras} requires what the env of "
        f"{cell.id} lacks (installed without dependencies, checked against the env): {listed}",
        hint="conda first: add the conda specs to dependencies; pip only for what conda lacks",
    )
