"""The work of ``condamatrix lock`` and ``condamatrix export`` (:mod:`.lock_export`):
reproducible cells, conda-style files."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from rattler import RepoDataRecord

from ..envs.cache import STAMP, EnvCache
from ..envs.engines.rattler import RattlerEngine, check_cpu_solution
from ..envs.lock import LOCK_NAME, write_lock
from ..errors import UsageError
from ..matrix import Cell
from ..report.terminal import make_console
from ..run.runner import make_spec
from ..run.session import SessionOptions, cache_root, load_lock, load_matrix, locked_spec

EXPORT_FORMATS = ("yml", "explicit")


def lock_matrix(options: SessionOptions, output: Path | None = None) -> Path:
    """Solve every cell of the matrix and write one lock file (an environment per cell)."""
    config, cells = load_matrix(options)
    root = cache_root(options.cache_dir)
    cache = EnvCache(root)
    engine = RattlerEngine(cache.package_cache, root / "repodata")
    entries = []
    for cell in cells:
        spec = make_spec(
            cell,
            engine,
            engine.platform,
            environment_sha=config.environment_sha,
        )
        records = engine.solve(spec)
        if cell.cuda == "cpu":
            check_cpu_solution(spec, records)
        entries.append((cell.id, cell.channels, records))
    path = output or (config.root / LOCK_NAME)
    write_lock(path, engine.platform, entries)
    return path


def _find_cell(cells: list[Cell], cell_id: str) -> Cell:
    for cell in cells:
        if cell.id == cell_id:
            return cell
    raise UsageError(
        f"no cell {cell_id!r} in this matrix",
        hint=f"cells are: {', '.join(c.id for c in cells)}",
    )


def export_cell(options: SessionOptions, cell_id: str, fmt: str) -> str:
    """The built env of ``cell_id`` as a pinned environment.yml or an @EXPLICIT list."""
    if fmt not in EXPORT_FORMATS:
        raise UsageError(f"unknown format {fmt!r}", hint=f"use one of {', '.join(EXPORT_FORMATS)}")
    config, cells = load_matrix(options)
    cell = _find_cell(cells, cell_id)
    root = cache_root(options.cache_dir)
    cache = EnvCache(root)
    lock = load_lock(config)
    engine = RattlerEngine(cache.package_cache, root / "repodata", lock=lock)
    spec = locked_spec(config, cell, engine, lock, make_console(None))
    prefix = cache.prefix_for(spec)
    stamp_path = prefix / STAMP
    if stamp_path.is_file():
        records = _prefix_records(prefix)
        stamp = json.loads(stamp_path.read_text(encoding="utf-8"))
        pip = [p.removeprefix("pip:") for p in stamp.get("packages", []) if p.startswith("pip:")]
    elif lock is not None and spec.locked:  # the lock fits the cell (it pins its python)
        # a fitting lock pins every conda package: no env needs to exist (right after
        # `condamatrix lock`); pip requirements are not locked, so they are as configured
        records = _lock_records(lock.records(cell.id, engine.platform) or [])
        pip = list(cell.pip)
    else:
        raise UsageError(
            f"the env of {cell_id} for the current configuration is not built, and no "
            f"{LOCK_NAME} fits it",
            hint=f"build it first: pytest --conda-matrix --conda-matrix-select {cell_id}, "
            "or write a lock with `condamatrix lock`",
        )
    if fmt == "explicit":
        lines = [
            f"# {cell_id}: exported by condamatrix; create with: conda create --file THIS_FILE",
            f"# platform: {engine.platform}",
            "@EXPLICIT",
        ]
        for rec in records:
            digest = rec.get("md5") or ""
            lines.append(f"{rec['url']}#{digest}" if digest else str(rec["url"]))
        if pip:
            lines.append("# pip packages (not part of the explicit format): " + ", ".join(pip))
        return "\n".join(lines) + "\n"
    deps: list[object] = [f"{r['name']}={r['version']}={r['build']}" for r in records]
    if pip:
        deps.append({"pip": pip})
    document = {"name": cell_id, "channels": list(cell.channels), "dependencies": deps}
    return yaml.safe_dump(document, sort_keys=False)


def _lock_records(locked: list[RepoDataRecord]) -> list[dict[str, str]]:
    records = [
        {
            "name": r.name.normalized,
            "version": str(r.version),
            "build": str(r.build),
            "url": str(r.url),
            "md5": r.md5.hex() if r.md5 else "",
        }
        for r in locked
    ]
    return sorted(records, key=lambda r: r["name"])


def _prefix_records(prefix: Path) -> list[dict[str, str]]:
    records = []
    for meta in sorted((prefix / "conda-meta").glob("*.json")):
        if meta.name == STAMP.name:
            continue
        data = json.loads(meta.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "name" in data and "url" in data:
            records.append(
                {k: str(data.get(k, "")) for k in ("name", "version", "build", "url", "md5")}
            )
    return sorted(records, key=lambda r: r["name"])
