"""This machine as envs see it: its conda platform, virtual packages and CUDA driver.

Detected here once (per boot, rattler version and set of ``CONDA_OVERRIDE_*`` values, which
change what conda detects), for every engine, the GitHub matrix's keys and the run's host
line alike; no engine has to be made only to learn the host. A run keeps the facts in the
cache (``host/``), so that a warm run never imports rattler.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import json
import os
import platform as _platform
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard

from .. import __version__, atomic
from ..errors import UsageError
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


#: a name, version or build as rattler writes them: no space, "=" or other character that
#: a hand-edited file could slip into an env's identity or the solver (a traceback there)
_WORD = re.compile(r"[A-Za-z0-9_.+!-]+\Z", re.ASCII)


def _word(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _WORD.match(value) is not None


@dataclass(frozen=True)
class HostFacts:
    """What conda sees of this machine: its platform, virtual packages and CUDA driver."""

    platform: str
    #: ``(name, version, build)`` of each virtual package, ``__cuda`` left out (a cell's
    #: variant decides it), as ``CONDA_OVERRIDE_*`` make them
    packages: tuple[tuple[str, str, str], ...]
    #: the CUDA version the driver supports, "" without one; read only when no
    #: CONDA_OVERRIDE_CUDA is set (then it is the driver's own)
    driver: str

    def to_json(self) -> dict[str, Any]:
        return {"platform": self.platform, "packages": self.packages, "driver": self.driver}

    @classmethod
    def from_json(cls, data: Any) -> HostFacts | None:
        """The facts of a file, or None if it is not one of ours."""
        if not isinstance(data, dict):
            return None
        platform, packages, driver = data.get("platform"), data.get("packages"), data.get("driver")
        if not (_word(platform) and isinstance(driver, str) and (not driver or _word(driver))):
            return None
        if not isinstance(packages, list) or not all(
            isinstance(p, list) and len(p) == 3 and all(_word(x) for x in p) for p in packages
        ):
            return None
        return cls(platform, tuple((p[0], p[1], p[2]) for p in packages), driver)


#: the most a facts file may hold (ours hold a few hundred bytes)
_MAX_FACTS_BYTES = 64 * 1024
#: where the facts are kept between runs (the cache's ``host/``): None detects them anew
_facts_dir: Path | None = None


def keep_facts_in(folder: Path | None) -> None:
    """Keep the detected facts in ``folder``: a warm run then never imports rattler (~100 ms)."""
    global _facts_dir
    _facts_dir = folder
    _facts.cache_clear()


def facts() -> HostFacts:
    """This machine's facts: detected once per boot, rattler version and overrides."""
    return _facts(_facts_key())


def _facts_key() -> str:
    """What decides what rattler detects here; any change of it detects anew."""
    uname = os.uname()
    libc = "CS_GNU_LIBC_VERSION"
    overrides = [(k, v) for k, v in os.environ.items() if k.startswith("CONDA_OVERRIDE_")]
    parts = {
        "format": 1,
        "rattler": rattler_version(),
        "uname": [uname.sysname, uname.release, uname.version, uname.machine],
        "boot": _read("/proc/sys/kernel/random/boot_id"),  # a new boot: a new CPU, a new driver
        "driver": _read("/proc/driver/nvidia/version"),  # a driver loaded or updated since
        "libc": os.confstr(libc) if libc in os.confstr_names else "",
        "overrides": sorted(overrides),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


@functools.lru_cache(maxsize=8)
def _facts(key: str) -> HostFacts:
    path = _facts_dir / f"{os.getuid()}-{key}.json" if _facts_dir is not None else None
    if path is not None:
        kept = _read_kept(path)
        if kept is not None:
            return kept
    found = _detect()
    if path is not None:
        with contextlib.suppress(OSError):  # a read-only cache: detect again next time
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic.write_text(path, json.dumps(found.to_json()) + "\n")
    return found


def _read_kept(path: Path) -> HostFacts | None:
    """The facts kept at ``path``, only from a file of this user's (a shared cache's other
    users could plant one)."""
    # Opened without following a link and without waiting (a FIFO's open would wait for a
    # writer), then checked as opened: a file swapped in after a check is never read.
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid():
                return None
            data = os.read(fd, _MAX_FACTS_BYTES + 1)
        finally:
            os.close(fd)
        if len(data) > _MAX_FACTS_BYTES:
            return None
        return HostFacts.from_json(json.loads(data.decode("utf-8")))
    except (OSError, ValueError, RecursionError):  # json recurses into nested lists
        return None


def _detect() -> HostFacts:
    import rattler
    from rattler.exceptions import DetectVirtualPackageError

    # from_env() honours CONDA_OVERRIDE_GLIBC/ARCHSPEC/... as conda does.
    try:
        detected = rattler.VirtualPackage.detect(rattler.VirtualPackageOverrides.from_env())
    except DetectVirtualPackageError as exc:  # a value it cannot read, e.g. GLIBC="2.17=0"
        raise _bad_override(exc) from None
    packages = []
    driver = ""  # read only without CONDA_OVERRIDE_CUDA (detect_driver answers that itself)
    for vp in detected:
        generic = vp.into_generic()
        if generic.name.normalized == "__cuda":
            driver = str(generic.version)
        else:
            packages.append(
                (generic.name.normalized, str(generic.version), str(generic.build_string))
            )
    return HostFacts(str(rattler.Subdir.current()), tuple(sorted(packages)), driver)


def _bad_override(exc: Exception) -> UsageError:
    """The error for overrides rattler cannot read: its words name no variable, these do."""
    overrides = sorted((k, v) for k, v in os.environ.items() if k.startswith("CONDA_OVERRIDE_"))
    shown = ", ".join(f"{k}={v!r}" for k, v in overrides) or "none set"
    return UsageError(
        f"cannot detect this machine's virtual packages with these overrides ({shown}): {exc}",
        hint="correct or unset the CONDA_OVERRIDE_* variable whose value it names, as conda "
        "reads them (e.g. CONDA_OVERRIDE_GLIBC=2.17)",
    )


@functools.cache  # read once: its dist-info is looked up anew on each call (~0.6 ms)
def rattler_version() -> str:
    """py-rattler's version, read without importing it."""
    try:
        return importlib.metadata.version("py-rattler")
    except importlib.metadata.PackageNotFoundError:
        return ""


def _read(path: str) -> str:
    try:
        with Path(path).open(encoding="utf-8", errors="replace") as f:
            return f.read(4096)
    except OSError:
        return ""


def conda_platform() -> str:
    """This machine's conda platform, e.g. ``linux-64``."""
    return facts().platform


def detected_packages() -> tuple[GenericVirtualPackage, ...]:
    """The host's virtual packages as the solver takes them, ``__cuda`` left out."""
    from rattler import BuildString, GenericVirtualPackage, PackageName, Version

    return tuple(
        GenericVirtualPackage(PackageName(name), Version(version), BuildString(build))
        for name, version, build in facts().packages
    )


def virtual_packages(cuda: str) -> tuple[str, ...]:
    """The virtual packages (``name=version=build``) a cell of this CUDA variant solves with."""
    out = [
        name if name in UNVERSIONED else f"{name}={version}={build}"
        for name, version, build in facts().packages
    ]
    return tuple(sorted([*out, *cuda_override(cuda)]))


def cuda_override(cuda: str) -> tuple[str, ...]:
    """The ``__cuda`` a cell of this variant solves with: its variant's, whatever the driver
    here (solving needs no GPU); none for a CPU cell."""
    return () if cuda == "cpu" else (f"__cuda={cuda}=0",)


def detect_driver() -> str | None:
    """The CUDA version the installed driver supports (e.g. ``"12.4"``), or None.

    As rattler reads the driver library, honouring ``CONDA_OVERRIDE_CUDA`` as conda does;
    ``CUDA_VISIBLE_DEVICES=""`` hides every GPU.
    """
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "":
        return None
    override = os.environ.get("CONDA_OVERRIDE_CUDA")
    if override is not None:
        return override.strip() or None  # an empty override means "no CUDA", as in conda
    return facts().driver or None


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
