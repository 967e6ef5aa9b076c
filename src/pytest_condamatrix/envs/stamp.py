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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STAMP = Path("conda-meta") / "condamatrix-stamp.json"
FORMAT = 2


@dataclass(frozen=True)
class Stamp:
    """A stamp as read (or about to be written): typed fields, leniently taken from its JSON.

    A field of the wrong type reads as absent; the JSON itself (``data``) is kept, since the
    seal is checked over it exactly as written.
    """

    key: str = ""
    cell: str = ""
    inputs: Mapping[str, Any] | None = None
    packages: tuple[str, ...] = ()
    built_at: float | None = None
    built_by: str = ""
    prefix: str | None = None  # where it was built: envs hold their absolute path
    files_complete: bool = True  # False: too many files differed after the build to check
    unchecked: frozenset[str] = frozenset()
    records: Mapping[str, str] | None = None
    format: object = None
    seal: object = None
    data: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: object) -> Stamp:
        """Any JSON value: one that is not an object is a stamp with nothing in it."""
        if not isinstance(data, dict):
            return cls()
        key, cell, inputs = data.get("key"), data.get("cell"), data.get("inputs")
        packages, built_at, prefix = data.get("packages"), data.get("built_at"), data.get("prefix")
        records = data.get("records")
        return cls(
            key=key if isinstance(key, str) else "",
            cell=str(cell) if cell else "",
            inputs=inputs if isinstance(inputs, dict) else None,
            packages=tuple(p for p in packages if isinstance(p, str))
            if isinstance(packages, list)
            else (),
            built_at=float(built_at) if isinstance(built_at, int | float) else None,
            built_by=str(data.get("built_by") or ""),
            prefix=None if prefix is None else str(prefix),
            files_complete=bool(data.get("files_complete", True)),
            unchecked=_unchecked(data),
            records=records if isinstance(records, dict) else None,
            format=data.get("format"),
            seal=data.get("seal"),
            data=data,
        )

    @classmethod
    def read(cls, prefix: Path) -> Stamp:
        """The stamp of the env at ``prefix``; raises OSError or ValueError (no or bad JSON)."""
        return cls.from_json(json.loads((prefix / STAMP).read_text(encoding="utf-8")))

    @classmethod
    def sealed(cls, fields: Mapping[str, Any]) -> Stamp:
        """A new stamp of ``fields`` (what a build records), with its format and seal."""
        body = {**fields, "format": FORMAT}
        return cls.from_json({**body, "seal": seal(body)})

    def to_text(self) -> str:
        return json.dumps(dict(self.data), indent=1)


def record_digests(prefix: Path) -> dict[str, str]:
    """conda-meta record name -> sha256 of its bytes (the stamp itself left out)."""
    digests = {}
    for record in sorted((prefix / "conda-meta").glob("*.json")):
        if record.name != STAMP.name:
            digests[record.name] = hashlib.sha256(record.read_bytes()).hexdigest()
    return digests


def seal(stamp: Mapping[str, Any]) -> str:
    body = {k: v for k, v in stamp.items() if k != "seal"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode("utf-8")).hexdigest()


def problem(prefix: Path, stamp: Stamp) -> str:
    """Why the stamp and the records it vouches for disagree; empty when they agree."""
    if stamp.format == 1 and "seal" not in stamp.data:
        return _old_problem(prefix, stamp)
    if stamp.format != FORMAT or "seal" not in stamp.data:
        return "damaged env: its stamp was edited after the build (no seal)"
    if stamp.seal != seal(stamp.data):
        return "damaged env: its stamp was edited after the build"
    recorded = stamp.records
    if recorded is None:
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


def _unchecked(stamp: Mapping[str, Any]) -> frozenset[str]:
    """Files that differed from their records right after the build: not held against reuse."""
    paths = stamp.get("unchecked", ())
    return (
        frozenset(p for p in paths if isinstance(p, str))
        if isinstance(paths, list)
        else frozenset()
    )


def _old_problem(prefix: Path, stamp: Stamp) -> str:
    """A stamp of an earlier version (no seal, no record hashes), kept so that an upgrade
    does not rebuild every env: each package it lists must have its record, naming it."""
    if stamp.data.get("files_complete") is False:
        return "old env: its files cannot be checked (built by an earlier version)"
    packages = stamp.data.get("packages")
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
