"""The project's built wheels, cached by the content of its sources and the cell's env key.

Layout under ``<cache root>/project-wheels/<name>-<hash of the project folder>/``::

    state.json                 per slot, the sources the last wheel was built from
    <sources>/<mode>/kind      "pure" or "platform", written after the first build
    <sources>/<mode>/any/      the one pure wheel every cell shares
    <sources>/<mode>/<env>/    a platform wheel, built by that env's interpreter

A pure wheel is built once (the first cell builds, the others wait for it); a platform wheel
is built per env, in parallel. Builds run in a temporary copy of the sources (so the user's
tree is left alone and parallel builds do not share a ``build/`` folder), except editable
ones, which must point at the real tree and so run there one at a time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock
from packaging.utils import parse_wheel_filename

from .sources import Sources

STALE_SECONDS = 86400.0  # source versions older than this and not current are removed


@dataclass(frozen=True)
class Built:
    wheel: Path
    note: str  # what happened, for the report; "" when the cached wheel was used


Builder = Callable[[Path, Path], Path]  # (source folder, out dir) -> wheel


def cached_wheel(
    cache_root: Path, name: str, sources: Sources, mode: str, env_key: str, builder: Builder
) -> Built:
    project = cache_root / "project-wheels" / f"{name or 'project'}-{_short(str(sources.root))}"
    digest = sources.editable_digest if mode == "editable" else sources.digest
    base = project / digest[:16] / mode
    base.mkdir(parents=True, exist_ok=True)
    with FileLock(str(base / "any.lock")):
        found = _wheel_in(base / "any")
        if found is not None:
            return Built(found, "")
        kind = _read_text(base / "kind")
        if kind != "platform":
            wheel = _build(builder, sources, mode, base)
            slot = "any" if _is_pure(wheel) else env_key
            final = _publish(wheel, base / slot)
            (base / "kind").write_text("pure\n" if slot == "any" else "platform\n")
            return Built(final, _note(project, sources, mode, slot))
    with FileLock(str(base / f"{env_key}.lock")):
        found = _wheel_in(base / env_key)
        if found is not None:
            return Built(found, "")
        final = _publish(_build(builder, sources, mode, base), base / env_key)
        return Built(final, _note(project, sources, mode, env_key))


def _build(builder: Builder, sources: Sources, mode: str, base: Path) -> Path:
    out = Path(tempfile.mkdtemp(prefix=".build-", dir=base))
    if mode == "editable":
        with FileLock(str(base.parent.parent / "editable.lock")):
            return builder(sources.root, out)
    with tempfile.TemporaryDirectory(prefix="condamatrix-src-") as tmp:
        sources.copy_to(Path(tmp))
        return builder(Path(tmp), out)


def _publish(wheel: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / wheel.name
    wheel.replace(final)
    shutil.rmtree(wheel.parent, ignore_errors=True)
    return final


def _note(project: Path, sources: Sources, mode: str, slot: str) -> str:
    """Say why the wheel was built, record its sources and drop stale source versions."""
    what = "editable wheel" if mode == "editable" else "wheel"
    state_file = project / "state.json"
    with FileLock(str(project / "state.lock")):
        state = _read_json(state_file)
        key = f"{mode}|{slot}"
        old = state.get(key)
        digest = sources.editable_digest if mode == "editable" else sources.digest
        state[key] = {"digest": digest, "files": sources.files}
        tmp = state_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(state, sort_keys=True), encoding="utf-8")
        tmp.replace(state_file)
        _drop_stale(project, {str(v["digest"])[:16] for v in state.values()})
    old_files = old.get("files") if isinstance(old, dict) else None
    if not isinstance(old_files, dict):
        return f"project {what} built"
    changed = sources.changes_since(old_files)
    shown = ", ".join(changed[:3]) + (f" (+{len(changed) - 3} more)" if len(changed) > 3 else "")
    if not changed:
        return f"project {what} built"
    return f"project {what} rebuilt: sources changed: {shown}"


def _drop_stale(project: Path, current: set[str]) -> None:
    now = time.time()
    for entry in project.iterdir():
        if entry.is_dir() and entry.name not in current:
            try:
                old = now - entry.stat().st_mtime > STALE_SECONDS
            except OSError:
                continue
            if old:
                shutil.rmtree(entry, ignore_errors=True)


def _is_pure(wheel: Path) -> bool:
    _, _, _, tags = parse_wheel_filename(wheel.name)
    return all(t.abi == "none" and t.platform == "any" for t in tags)


def _wheel_in(folder: Path) -> Path | None:
    if not folder.is_dir():
        return None
    found = sorted(folder.glob("*.whl"))
    return found[0] if found else None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def _read_json(path: Path) -> dict[str, dict[str, object]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _short(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]
