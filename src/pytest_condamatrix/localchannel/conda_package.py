"""Write a `.conda` package (format v2) from a list of files.

A `.conda` file is a zip archive, stored rather than deflated, holding `metadata.json`,
`pkg-<dist>.tar.zst` (the payload) and `info-<dist>.tar.zst` (index.json, paths.json, ...).
Everything is written in a fixed order with fixed metadata, so the same input gives the same
bytes; the package is written under a temporary name and moved into place with `os.replace`,
so readers never see half a package.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pytest_condamatrix.localchannel.errors import INSTALL_HINT, ChannelBuildError

__all__ = ["ZSTD_LEVEL", "PackageFile", "PackageMeta", "write_conda"]

# Low on purpose: zstd's high levels took ~a minute for one Python package, level 3 a second.
ZSTD_LEVEL = 3
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_ARCH_NAMES = {"64": "x86_64", "32": "x86"}


@dataclass(frozen=True)
class PackageFile:
    """One entry of the payload: a file read from `source`, inline `data`, or a `symlink`."""

    path: str  # relative, POSIX separators, as installed (noarch python: "site-packages/...")
    source: Path | None = None
    data: bytes | None = None
    symlink: str | None = None  # link target, relative to the link's folder
    executable: bool | None = None  # None: take the executable bit from `source`
    # The absolute prefix this file was built for; if the file holds it as text, the
    # installer rewrites it to the environment's prefix.
    prefix: str | None = None


@dataclass(frozen=True)
class PackageMeta:
    """What goes into `info/index.json`, `info/about.json` and `info/link.json`."""

    name: str
    version: str
    build: str
    subdir: str
    timestamp_ms: int
    build_number: int = 0
    depends: tuple[str, ...] = ()
    constrains: tuple[str, ...] = ()
    noarch: str | None = None  # "python" or "generic"
    entry_points: tuple[str, ...] = ()  # noarch python console scripts: "name = module:func"
    track_features: str = ""
    license: str = ""
    summary: str = ""

    @property
    def dist(self) -> str:
        return f"{self.name}-{self.version}-{self.build}"

    @property
    def filename(self) -> str:
        return f"{self.dist}.conda"

    def index_json(self) -> dict[str, Any]:
        index: dict[str, Any] = {
            "build": self.build,
            "build_number": self.build_number,
            "constrains": list(self.constrains),
            "depends": list(self.depends),
            "license": self.license,
            "name": self.name,
            "subdir": self.subdir,
            "timestamp": self.timestamp_ms,
            "version": self.version,
        }
        if self.noarch:
            index["noarch"] = self.noarch
        else:
            platform, _, arch = self.subdir.partition("-")
            index["platform"] = platform
            index["arch"] = _ARCH_NAMES.get(arch, arch)
        if self.track_features:
            index["track_features"] = self.track_features
        return index


def write_conda(directory: Path, meta: PackageMeta, files: Iterable[PackageFile]) -> Path:
    """Write `directory/<meta.filename>` atomically and return its path."""
    try:
        import zstandard
    except ImportError as exc:
        raise ChannelBuildError(
            f"writing conda packages needs the 'zstandard' module ({exc}); {INSTALL_HINT}"
        ) from exc

    entries = sorted(files, key=lambda f: f.path)
    seen: set[str] = set()
    for entry in entries:
        if entry.path in seen:
            raise ChannelBuildError(f"{meta.dist}: two files for path {entry.path!r}")
        seen.add(entry.path)

    directory.mkdir(parents=True, exist_ok=True)
    final = directory / meta.filename
    tmp = directory / f".{meta.filename}.{os.getpid()}.tmp"
    mtime = meta.timestamp_ms // 1000
    # threads=-1: all cores; zstd's multi-threaded output does not depend on the thread count.
    cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=-1)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            zf.writestr(_zip_info("metadata.json"), json.dumps({"conda_pkg_format_version": 2}))
            pkg_entry = zf.open(_zip_info(f"pkg-{meta.dist}.tar.zst"), "w")
            with pkg_entry as raw, cctx.stream_writer(raw, closefd=False) as zw:
                paths = _write_payload(zw, entries, mtime)
            info_entry = zf.open(_zip_info(f"info-{meta.dist}.tar.zst"), "w")
            with info_entry as raw, cctx.stream_writer(raw, closefd=False) as zw:
                _write_info(zw, _info_files(meta, paths), mtime)
        tmp.replace(final)
    finally:
        tmp.unlink(missing_ok=True)
    return final


def _zip_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def _tar_stream(fileobj: IO[bytes]) -> tarfile.TarFile:
    return tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT)


def _tar_info(name: str, size: int, mode: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = mode
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _write_payload(
    fileobj: IO[bytes], entries: list[PackageFile], mtime: int
) -> list[dict[str, Any]]:
    """Stream the payload tar; return the `paths.json` entries."""
    paths: list[dict[str, Any]] = []
    with _tar_stream(fileobj) as tar:
        for entry in entries:
            if entry.symlink is not None:
                info = _tar_info(entry.path, 0, 0o777, mtime)
                info.type = tarfile.SYMTYPE
                info.linkname = entry.symlink
                tar.addfile(info)
                paths.append({"_path": entry.path, "path_type": "softlink"})
                continue
            if entry.data is not None:
                data = entry.data
                executable = bool(entry.executable)
            elif entry.source is not None:
                data = entry.source.read_bytes()
                executable = (
                    bool(entry.source.stat().st_mode & 0o111)
                    if entry.executable is None
                    else entry.executable
                )
            else:
                raise ChannelBuildError(f"{entry.path}: no source, data or symlink")
            mode = 0o755 if executable else 0o644
            tar.addfile(_tar_info(entry.path, len(data), mode, mtime), io.BytesIO(data))
            record: dict[str, Any] = {
                "_path": entry.path,
                "path_type": "hardlink",
                "sha256": hashlib.sha256(data).hexdigest(),
                "size_in_bytes": len(data),
            }
            if entry.prefix and _holds_text_prefix(data, entry.prefix):
                record["file_mode"] = "text"
                record["prefix_placeholder"] = entry.prefix
            paths.append(record)
    return paths


def _write_info(fileobj: IO[bytes], info: list[tuple[str, bytes]], mtime: int) -> None:
    with _tar_stream(fileobj) as tar:
        for name, data in info:
            tar.addfile(_tar_info(name, len(data), 0o644, mtime), io.BytesIO(data))


def _holds_text_prefix(data: bytes, prefix: str) -> bool:
    # Binary files (NUL bytes) keep their old paths: binary rewriting can only shorten them.
    return prefix.encode() in data and b"\0" not in data


def _info_files(meta: PackageMeta, paths: list[dict[str, Any]]) -> list[tuple[str, bytes]]:
    def dump(obj: object) -> bytes:
        return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()

    info = [
        ("info/about.json", dump({"license": meta.license, "summary": meta.summary})),
        ("info/files", "".join(p["_path"] + "\n" for p in paths).encode()),
        ("info/index.json", dump(meta.index_json())),
        ("info/paths.json", dump({"paths": paths, "paths_version": 1})),
    ]
    if meta.noarch == "python":
        link = {
            "noarch": {"type": "python", "entry_points": list(meta.entry_points)},
            "package_metadata_version": 1,
        }
        info.append(("info/link.json", dump(link)))
    return info
