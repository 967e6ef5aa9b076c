"""The project under test as its ``pyproject.toml`` describes it: build system and metadata."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InstallError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

#: what pip assumes for a project without a [build-system] table (PEP 517)
LEGACY_BACKEND = "setuptools.build_meta:__legacy__"
LEGACY_REQUIRES = ("setuptools>=40.8.0",)


@dataclass(frozen=True)
class Project:
    root: Path
    name: str  # as written; "" when [project] has no name
    version: str  # "" when dynamic or absent
    backend: str
    backend_path: tuple[str, ...]
    requires: tuple[str, ...]  # build-system.requires
    has_build_system: bool
    dependencies: tuple[str, ...] = ()
    optional: dict[str, tuple[str, ...]] = field(default_factory=dict)
    scripts: dict[str, str] = field(default_factory=dict)
    entry_points: dict[str, dict[str, str]] = field(default_factory=dict)
    requires_python: str = ""

    @property
    def buildable(self) -> bool:
        return self.has_build_system or (self.root / "setup.py").is_file()


def read_project(root: Path) -> Project:
    path = root / "pyproject.toml"
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise InstallError(f"cannot read {path}: {exc}", hint="fix the file") from None
    system = data.get("build-system")
    has_system = isinstance(system, dict)
    system = system if isinstance(system, dict) else {}
    table = data.get("project")
    table = table if isinstance(table, dict) else {}
    dynamic = table.get("dynamic", [])
    return Project(
        root=root,
        name=str(table.get("name", "")),
        version="" if "version" in dynamic else str(table.get("version", "")),
        backend=str(system.get("build-backend") or LEGACY_BACKEND),
        backend_path=tuple(str(p) for p in system.get("backend-path", [])),
        requires=tuple(str(r) for r in system.get("requires", LEGACY_REQUIRES)),
        has_build_system=has_system,
        dependencies=tuple(str(d) for d in table.get("dependencies", [])),
        optional={
            str(k): tuple(str(d) for d in v)
            for k, v in dict(table.get("optional-dependencies", {})).items()
        },
        scripts={str(k): str(v) for k, v in dict(table.get("scripts", {})).items()},
        entry_points={
            str(group): {str(k): str(v) for k, v in dict(body).items()}
            for group, body in dict(table.get("entry-points", {})).items()
        },
        requires_python=str(table.get("requires-python", "")),
    )
