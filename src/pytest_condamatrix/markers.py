"""Environment markers (PEP 508) of a cell's CPython, for Requires-Dist entries."""

from __future__ import annotations

from packaging.markers import default_environment
from packaging.version import Version


def marker_environment(python_version: str, extra: str = "") -> dict[str, str]:
    """Marker variables for CPython ``python_version`` on this machine (``extra``: the extra
    whose requirements are evaluated)."""
    env = {key: str(value) for key, value in default_environment().items()}
    release = Version(python_version).release
    env.update(
        python_version=f"{release[0]}.{release[1]}",
        python_full_version=python_version,
        implementation_name="cpython",
        implementation_version=python_version,
        platform_python_implementation="CPython",
        extra=extra,
    )
    return env
