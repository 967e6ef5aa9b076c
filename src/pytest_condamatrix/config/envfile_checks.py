"""What an environment.yml written for one env means for a matrix of cells.

Users write ``python=3.11.5`` and ``pytorch=2.0.1=py3.11_cuda11.8_0`` into the file they use
day to day; shared by every cell, such pins either give way to the axes (said in the run's
header and by ``condamatrix list``), contradict a cell (an error), or cannot fit some cells
(said, naming them, before any solve fails on them).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..errors import ConfigError
from .envfile import EnvironmentFile, spec_name

#: channel entries that are instructions to conda, not channels
NODEFAULTS = "nodefaults"
DEFAULTS = "defaults"

_VERSION = re.compile(r"(\d+(?:\.\d+)*)")
# a CUDA build string: cuda11.8, cuda118, cu118; a Python one: py3.11, py311
_CUDA_BUILD = re.compile(r"(?:cuda|cu)(\d{2})\.?(\d)(?![\d.])|cuda(\d{2})\.(\d+)")
_PY_BUILD = re.compile(r"(?:^|_)py(\d)\.?(\d{1,2})(?=_|h[0-9a-f]|$)")


def drop_nodefaults(channels: Sequence[str]) -> tuple[tuple[str, ...], bool]:
    """``channels`` without ``nodefaults`` (and, when it is there, without ``defaults``)."""
    if NODEFAULTS not in channels:
        return tuple(channels), False
    return tuple(c for c in channels if c not in (NODEFAULTS, DEFAULTS)), True


def python_pin_note(env: EnvironmentFile, pythons: Sequence[str], where: Any) -> str:
    """Say which of the file's entries the axes replace; a contradiction is an error."""
    notes: list[str] = []
    for entry in env.dropped:
        name = spec_name(entry)
        if name != "python":
            notes.append(f"{entry!r} is replaced by the cuda axis")
            continue
        found = _VERSION.search(entry[len(name) :])
        pin = found.group(1) if found else ""
        for value in pythons:
            exact = value.count(".") == 2 and pin.count(".") == 2
            if exact and value != pin and value.rsplit(".", 1)[0] == pin.rsplit(".", 1)[0]:
                raise ConfigError(
                    f"{env.path} pins {entry!r}, which contradicts the cell's Python {value}",
                    file=where,
                    key="python",
                    hint=f"remove the pin from {env.path.name} (the python axis decides), or "
                    f"put {pin!r} on the python axis",
                )
        notes.append(f"{entry!r} is replaced by the python axis ({', '.join(pythons)})")
    return f"{env.path.name}: " + "; ".join(notes) if notes else ""


def build_pin_note(env: EnvironmentFile, cells: Sequence[tuple[str, str, str]]) -> str:
    """Flag the file's specs pinned to one CUDA (or Python) build, naming the cells
    ``(id, python, cuda)`` they cannot fit."""
    notes: list[str] = []
    for spec in env.dependencies:
        parts = re.split(r"[=\s]+", spec.strip())
        build = parts[2] if len(parts) >= 3 else ""
        if not build:
            continue
        cuda = _cuda_of(build)
        python = _python_of(build)
        misfits = [
            cell_id
            for cell_id, cell_python, cell_cuda in cells
            if (cuda is not None and cuda != _minor(cell_cuda))
            or (python is not None and python != _minor(cell_python))
        ]
        if misfits:
            what = f"CUDA {cuda}" if cuda else ""
            what += (" and " if what and python else "") + (f"Python {python}" if python else "")
            notes.append(
                f"{spec!r} is a build for {what} only: it cannot fit {', '.join(misfits)} "
                "(leave the build string out, or move the spec into those cells' "
                "cuda-variants/include dependencies)"
            )
    return f"{env.path.name}: " + "; ".join(notes) if notes else ""


def _cuda_of(build: str) -> str | None:
    match = _CUDA_BUILD.search(build)
    if not match:
        return "cpu" if re.search(r"(?:^|_)cpu(?:_|$)", build) else None
    major, minor = (match.group(1), match.group(2)) if match.group(1) else match.group(3, 4)
    return f"{int(major)}.{int(minor)}"


def _python_of(build: str) -> str | None:
    match = _PY_BUILD.search(build)
    return f"{match.group(1)}.{int(match.group(2))}" if match else None


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])
