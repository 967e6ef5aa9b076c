"""The files of a wheel, read safely: shared by the install overlay and the local channel."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import PurePosixPath


class UnsafeMember(ValueError):
    """A wheel member whose path would be written outside the target folder."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def wheel_files(zf: zipfile.ZipFile) -> Iterator[tuple[zipfile.ZipInfo, tuple[str, ...]]]:
    """The files of a wheel, each with its path's parts; a member with an absolute path or a
    ``..`` (a "zip slip") raises :class:`UnsafeMember`."""
    for member in zf.infolist():
        if member.is_dir():
            continue
        parts = PurePosixPath(member.filename).parts
        if member.filename.startswith("/") or ".." in parts:
            raise UnsafeMember(member.filename)
        yield member, parts
