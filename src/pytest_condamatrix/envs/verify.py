"""Check an env's files against what its packages say they installed (conda-meta).

Env files are hard links into the package cache, so a file damaged in one env (a truncated
interpreter, a test writing into site-packages) is damaged in the package cache too, and in
every env linked from it. Each record's ``paths_data`` gives every file's size and sha256
(``sha256_in_prefix`` for files whose prefix was rewritten at install): a reuse compares
sizes (one ``lstat`` a file, ~20 ms for a Python env), a build and a suspected damage compare
content too (~0.2 s for a Python env).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STAMP_NAME = "condamatrix-stamp.json"


@dataclass(frozen=True)
class Damage:
    """One installed file that is not what its package installed."""

    package: str  # the record's name, e.g. python-3.12.1-h1234_cpython
    path: str  # relative to the prefix
    what: str  # missing, its size, its content
    package_dir: str  # the package cache entry it was linked from ("" when unknown)
    linked: bool  # a hard link (shares its inode with the package cache)

    def __str__(self) -> str:
        return f"{self.path} (of {self.package}) {self.what}"


class UnreadableRecord(Exception):
    """A conda-meta record that is not JSON of the expected shape."""


def damaged_files(
    prefix: Path,
    *,
    content: bool,
    limit: int = 20,
    skip: frozenset[str] = frozenset(),
    seen: set[str] | None = None,
) -> list[Damage]:
    """Files of ``prefix`` that differ from their records (at most ``limit``); every file
    the records list goes into ``seen`` (complete when nothing is found).

    Raises :class:`UnreadableRecord` naming the record when one cannot be read.
    """
    found: list[Damage] = []
    for record in sorted((prefix / "conda-meta").glob("*.json")):
        if record.name == STAMP_NAME:
            continue
        data = _read_record(record)
        package_dir = str(data.get("extracted_package_dir") or "")
        for entry in _entries(data):
            if seen is not None:
                seen.add(entry["_path"])
            if entry["_path"] in skip:
                continue
            what, linked = _check_entry(prefix, entry, content=content)
            if what:
                found.append(Damage(record.stem, str(entry["_path"]), what, package_dir, linked))
                if len(found) >= limit:
                    return found
    return found


def describe(damage: list[Damage], total_hint: str = "") -> str:
    shown = "; ".join(str(d) for d in damage[:3])
    more = f" and {len(damage) - 3} more" if len(damage) > 3 else ""
    return f"{len(damage)}{total_hint} installed file(s) differ from their package: {shown}{more}"


def _read_record(record: Path) -> dict[str, Any]:
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UnreadableRecord(f"conda-meta/{record.name}") from exc
    if not isinstance(data, dict):
        raise UnreadableRecord(f"conda-meta/{record.name}")
    return data


def _entries(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The record's files with their sizes; bare names when it has no ``paths_data``."""
    paths = data.get("paths_data")
    if isinstance(paths, dict) and isinstance(paths.get("paths"), list):
        return [
            e for e in paths["paths"] if isinstance(e, dict) and isinstance(e.get("_path"), str)
        ]
    files = data.get("files")
    return [{"_path": f} for f in files if isinstance(f, str)] if isinstance(files, list) else []


def _check_entry(prefix: Path, entry: dict[str, Any], *, content: bool) -> tuple[str, bool]:
    """What is wrong with one file ("" when nothing), and whether it is a hard link."""
    path = f"{prefix}/{entry['_path']}"
    try:
        info = os.lstat(path)
    except OSError:
        return "is missing", False
    if entry.get("path_type") == "softlink":
        return ("is no longer a symbolic link" if not stat.S_ISLNK(info.st_mode) else ""), False
    linked = info.st_nlink > 1
    if "size_in_bytes" not in entry:
        return "", linked
    if not stat.S_ISREG(info.st_mode):
        return "is no longer a regular file", linked
    size = entry.get("size_in_bytes")
    if isinstance(size, int) and info.st_size != size:
        return f"has {info.st_size} bytes, its package says {size}", linked
    expected = entry.get("sha256_in_prefix") or entry.get("sha256")
    if content and isinstance(expected, str):
        try:
            digest = _sha256(path)
        except OSError as exc:
            return f"cannot be read ({exc.strerror})", linked
        if digest != expected:
            return "has other content than its package (sha256)", linked
    return "", linked


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:  # noqa: PTH123 - a plain str path: no Path per file
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def files_problem(
    prefix: Path, unchecked: frozenset[str] | None, *, content: bool, seen: set[str] | None = None
) -> str:
    """What is wrong with the env's installed files, as its conda-meta records describe them.

    ``unchecked`` None: too many files differed right after the build to check any (only
    ``seen`` is filled in).
    """
    try:
        damage = damaged_files(
            prefix,
            content=content,
            skip=unchecked or frozenset(),
            seen=seen,
            limit=1 << 30 if unchecked is None else 20,
        )
    except UnreadableRecord as exc:
        return f"its package record {exc} is unreadable"
    if unchecked is None:
        return ""
    return describe(damage) if damage else ""
