"""Per project, the env each of its cells used last: what a rebuild is explained against.

Envs are shared by content, so the newest env of a cell id in a shared cache may belong to
another project (the demo's ``cudademo``); comparing with it would explain a rebuild by
inputs this project never had. The record lives at ``<cache root>/projects/<hash>.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from filelock import FileLock

from . import layout
from .spec import EnvSpec, describe_changes
from .stamp import Stamp


class ProjectHistory:
    def __init__(self, cache_root: Path, project: str) -> None:
        name = hashlib.sha256(project.encode()).hexdigest()[:16]
        self.path = layout.project_file(cache_root, name)
        self.project = project

    def inputs_of(self, cell_id: str) -> dict[str, Any] | None:
        entry = self._read().get(cell_id)
        inputs = entry.get("inputs") if isinstance(entry, dict) else None
        return inputs if isinstance(inputs, dict) else None

    def remember(self, cell_id: str, key: str, inputs: dict[str, Any]) -> None:
        entry = self._read().get(cell_id)
        if isinstance(entry, dict) and entry.get("key") == key:
            return  # the usual case: nothing changed, nothing to write
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.path) + ".lock"):
            data = self._read()
            data[cell_id] = {"key": key, "inputs": inputs}
            data["project"] = self.project
            tmp = self.path.with_suffix(f".{os.getpid()}.{id(data)}.tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
            tmp.replace(self.path)

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


def why_missing(root: Path, history: ProjectHistory | None, spec: EnvSpec) -> str:
    """Explain a cache miss by diffing against the project's previous env of the cell, or
    (without a project) the newest env of the same cell id, if any."""
    if history is not None:
        previous = history.inputs_of(spec.cell_id)
        if previous is None:
            return "new"
        if previous == spec.inputs():
            return "the env was removed from the cache"
        return "inputs changed: " + describe_changes(previous, spec.inputs())
    pattern = layout.cell_env_names(spec.cell_id)
    newest: tuple[float, Mapping[str, Any]] | None = None
    for entry in (root / "envs").iterdir():
        if not pattern.fullmatch(entry.name):
            continue
        try:
            stamp = Stamp.read(entry)
        except (OSError, ValueError):
            continue
        built_at, inputs = stamp.built_at, stamp.inputs
        if built_at is None or inputs is None:
            continue
        if newest is None or built_at > newest[0]:
            newest = (built_at, inputs)
    if newest is None:
        return "new"
    return "inputs changed: " + describe_changes(newest[1], spec.inputs())
