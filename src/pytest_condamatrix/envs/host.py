"""This machine as envs see it: its conda platform, virtual packages and CUDA driver.

Detected here once (per set of ``CONDA_OVERRIDE_*`` values, which change what conda
detects), for every engine, the GitHub matrix's keys and the run's host line alike; no
engine has to be made only to learn the host. rattler is imported on first use.
"""

from __future__ import annotations

import functools
import os
import platform as _platform
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .. import __version__
from .spec import SpecEngine, channel_fingerprint

if TYPE_CHECKING:
    from rattler import GenericVirtualPackage

# Virtual packages whose version decides nothing for us: leaving the version out keeps a
# kernel update from invalidating every env.
UNVERSIONED = {"__linux", "__osx", "__win", "__unix"}


class EngineLike(SpecEngine, Protocol):
    """An engine as the host facts see it: what a spec takes from it, and its platform."""

    @property
    def platform(self) -> str: ...


@functools.cache
def conda_platform() -> str:
    """This machine's conda platform, e.g. ``linux-64``."""
    import rattler

    return str(rattler.Subdir.current())


def detected_packages() -> tuple[GenericVirtualPackage, ...]:
    """The host's virtual packages, ``__cuda`` left out (a cell's variant decides it)."""
    overrides = tuple(
        sorted((k, v) for k, v in os.environ.items() if k.startswith("CONDA_OVERRIDE_"))
    )
    return _detect(overrides)


@functools.lru_cache(maxsize=8)
def _detect(overrides: tuple[tuple[str, str], ...]) -> tuple[GenericVirtualPackage, ...]:
    import rattler

    # from_env() honours CONDA_OVERRIDE_GLIBC/ARCHSPEC/... as conda does.
    detected = rattler.VirtualPackage.detect(rattler.VirtualPackageOverrides.from_env())
    return tuple(
        vp.into_generic() for vp in detected if vp.into_generic().name.normalized != "__cuda"
    )


def virtual_packages(cuda: str) -> tuple[str, ...]:
    """The virtual packages (``name=version=build``) a cell of this CUDA variant solves with."""
    out = []
    for vp in detected_packages():
        name = vp.name.normalized
        out.append(name if name in UNVERSIONED else f"{name}={vp.version}={vp.build_string}")
    return tuple(sorted([*out, *cuda_override(cuda)]))


def cuda_override(cuda: str) -> tuple[str, ...]:
    """The ``__cuda`` a cell of this variant solves with: its variant's, whatever the driver
    here (solving needs no GPU); none for a CPU cell."""
    return () if cuda == "cpu" else (f"__cuda={cuda}=0",)


def detect_driver() -> str | None:
    """The CUDA version the installed driver supports (e.g. ``"12.4"``), or None.

    Through rattler, which reads the driver library and honours ``CONDA_OVERRIDE_CUDA`` as
    conda does; ``CUDA_VISIBLE_DEVICES=""`` hides every GPU.
    """
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "":
        return None
    override = os.environ.get("CONDA_OVERRIDE_CUDA")
    if override is not None:
        return override.strip() or None  # an empty override means "no CUDA", as in conda
    import rattler

    for vp in rattler.VirtualPackage.detect():
        generic = vp.into_generic()
        if generic.name.normalized == "__cuda":
            return str(generic.version)
    return None


def run_facts(engine: EngineLike) -> dict[str, str]:
    """The host line of a run's results: where its cells ran."""
    facts = {
        "platform": engine.platform,
        "machine": _platform.machine(),
        # not platform.platform(): it runs `uname -p` and scans the interpreter for its libc
        "system": f"{_platform.system()}-{_platform.release()}-{_platform.machine()}",
        "tool": f"pytest-condamatrix {__version__}",
        "engine": engine.id,
    }
    for entry in engine.virtual_packages("cpu"):
        name, _, rest = entry.partition("=")
        if rest:
            facts[name.lstrip("_")] = rest.split("=")[0]
    facts["cuda_driver"] = detect_driver() or "none"
    return facts


def key_facts(
    engine: EngineLike, platform: str, cache: Path, channels: Sequence[str] = ()
) -> dict[str, Any]:
    """What makes an env built on this machine unusable on another one (``--host-key``)."""
    return {
        "tool": __version__,
        "engine": engine.id,
        "platform": platform,
        "virtual_packages": list(engine.virtual_packages("cpu")),
        "cache": str(cache),  # envs hold absolute paths: restored elsewhere they break
        # local channels as this job sees them: one built here has no index elsewhere
        "channels": [fp for fp in (channel_fingerprint(c, platform) for c in channels) if fp],
    }
