"""What the project's wheel is built from, and a hash of its content.

In a git checkout the files are git's (tracked plus untracked, not ignored), so outputs the
project ignores never count as changes; elsewhere a walk skips the usual build outputs, caches
and environments. Compiled files are skipped in both cases: an editable build writes them into
the tree, and they are outputs, not sources.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .. import processes

_SKIP_DIRS = frozenset({"__pycache__", "build", "dist", "node_modules", "htmlcov"})
_SKIP_SUFFIXES = (".pyc", ".pyo", ".so", ".pyd", ".o", ".obj", ".dylib", ".dll")
_SKIP_NAMES = frozenset({".coverage"})


@dataclass(frozen=True)
class Sources:
    """The project's source files and the hash of their paths and content."""

    root: Path
    files: dict[str, str]  # relative POSIX path -> sha256 of its content

    @property
    def digest(self) -> str:
        text = json.dumps(self.files, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def editable_digest(self) -> str:
        """What an editable install depends on: every file's path, and the content of all but
        the Python modules (an editable install imports those from the tree as they are)."""
        kept = {
            rel: ("" if rel.endswith(".py") and rel.rsplit("/", 1)[-1] != "setup.py" else sha)
            for rel, sha in self.files.items()
        }
        text = json.dumps(kept, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def changes_since(self, old: dict[str, str]) -> list[str]:
        """The files added, removed or changed since ``old``, sorted."""
        names = set(old) | set(self.files)
        return sorted(n for n in names if old.get(n) != self.files.get(n))

    def copy_to(self, dest: Path) -> None:
        """Copy the sources to ``dest``: a build there cannot write into the user's tree."""
        for rel in self.files:
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self.root / rel, target)


def scan_sources(root: Path) -> Sources:
    names = _git_files(root) if (root / ".git").exists() else None
    if names is None:
        names = _walk(root)
    files: dict[str, str] = {}
    for rel in sorted(names):
        if _skipped(rel):
            continue
        path = root / rel
        try:
            if path.is_symlink() or not path.is_file():
                continue
            files[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            continue  # removed while we looked: not part of this build
    return Sources(root=root, files=files)


def _skipped(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return name.endswith(_SKIP_SUFFIXES) or name in _SKIP_NAMES


def _git_files(root: Path) -> list[str] | None:
    try:
        proc = processes.run_bytes(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    return [n for n in proc.stdout.decode("utf-8", "surrogateescape").split("\0") if n]


def _walk(root: Path) -> list[str]:
    found: list[str] = []
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        dirs[:] = [d for d in dirs if not _skip_dir(here / d)]
        rel = here.relative_to(root).as_posix()
        prefix = "" if rel == "." else rel + "/"
        found.extend(prefix + n for n in names if not n.startswith("."))
    return found


def _skip_dir(path: Path) -> bool:
    name = path.name
    if name.startswith(".") or name in _SKIP_DIRS or name.endswith(".egg-info"):
        return True
    # a virtual env or a conda env inside the project is not a source
    return (path / "pyvenv.cfg").exists() or (path / "conda-meta").is_dir()
