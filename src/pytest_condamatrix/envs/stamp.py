"""The stamp that publishes an env, and the records it vouches for.

The stamp (``conda-meta/condamatrix-stamp.json``, written last) holds the env's key and
inputs, a sha256 of every conda-meta record as the build left it, the files that already
differed from their records right after the build (a pip layer may replace a conda
package's files), and a seal over all of that. An env edited by hand afterwards (a record
emptied, a stamp field changed) no longer matches and is rebuilt, instead of being reused
with files missing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

STAMP = Path("conda-meta") / "condamatrix-stamp.json"
FORMAT = 2


def record_digests(prefix: Path) -> dict[str, str]:
    """conda-meta record name -> sha256 of its bytes (the stamp itself left out)."""
    digests = {}
    for record in sorted((prefix / "conda-meta").glob("*.json")):
        if record.name != STAMP.name:
            digests[record.name] = hashlib.sha256(record.read_bytes()).hexdigest()
    return digests


def seal(stamp: dict[str, Any]) -> str:
    body = {k: v for k, v in stamp.items() if k != "seal"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode("utf-8")).hexdigest()


def sealed(stamp: dict[str, Any]) -> dict[str, Any]:
    return {**stamp, "format": FORMAT, "seal": seal({**stamp, "format": FORMAT})}


def problem(prefix: Path, stamp: dict[str, Any]) -> str:
    """Why the stamp and the records it vouches for disagree; empty when they agree."""
    if stamp.get("format") == 1 and "seal" not in stamp:
        return _old_problem(prefix, stamp)
    if stamp.get("format") != FORMAT or "seal" not in stamp:
        return "damaged env: its stamp was edited after the build (no seal)"
    if stamp.get("seal") != seal(stamp):
        return "damaged env: its stamp was edited after the build"
    recorded = stamp.get("records")
    if not isinstance(recorded, dict):
        return "damaged env: its stamp lists no package records"
    try:
        current = record_digests(prefix)
    except OSError as exc:
        return f"damaged env: its package records cannot be read ({exc.strerror or exc})"
    for name in sorted(set(recorded) | set(current)):
        if name not in current:
            return f"damaged env: its package record conda-meta/{name} is missing"
        if name not in recorded:
            return f"damaged env: conda-meta/{name} was added after the build"
        if recorded[name] != current[name]:
            return f"damaged env: its package record conda-meta/{name} was changed after the build"
    return ""


def unchecked(stamp: dict[str, Any]) -> frozenset[str]:
    """Files that differed from their records right after the build: not held against reuse."""
    paths = stamp.get("unchecked", ())
    return (
        frozenset(p for p in paths if isinstance(p, str))
        if isinstance(paths, list)
        else frozenset()
    )


def _old_problem(prefix: Path, stamp: dict[str, Any]) -> str:
    """A stamp of an earlier version (no seal, no record hashes), kept so that an upgrade
    does not rebuild every env: each package it lists must have its record, naming it."""
    if stamp.get("files_complete") is False:
        return "old env: its files cannot be checked (built by an earlier version)"
    packages = stamp.get("packages")
    for package in packages if isinstance(packages, list) else []:
        if not isinstance(package, str) or ":" in package or package.count("=") != 2:
            continue  # not a conda package (e.g. "pip:name==1.0")
        name, version, build = package.split("=")
        record = prefix / "conda-meta" / f"{name}-{version}-{build}.json"
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return (
                f"damaged env: its package record conda-meta/{record.name} is missing or unreadable"
            )
        if not isinstance(data, dict) or (
            data.get("name"),
            data.get("version"),
            data.get("build"),
        ) != (
            name,
            version,
            build,
        ):
            return f"damaged env: its package record conda-meta/{record.name} was changed"
    return ""
