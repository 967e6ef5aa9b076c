"""Build the project's wheel (or PEP 660 editable wheel) with its own PEP 517 backend, run by
the cell's interpreter so that a platform wheel fits the cell's ABI.

The backend comes from the cell's env when the configuration lists it there (offline);
otherwise it is installed from the index into a cached folder beside the env, as pip's build
isolation would, and that folder is put on the build's path only.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from filelock import FileLock

from .. import processes
from ..errors import InstallError
from .prefix import site_packages
from .project import Project
from .requirements import installed, missing

BUILD_TIMEOUT = 1800.0

# Runs in the cell's interpreter: stdlib only, Python 3.9 syntax.
_HOOK = """\
import importlib, json, os, sys
root, hook, out_dir, backend, backend_path, result = sys.argv[1:7]
sys.path[:0] = [os.path.join(root, p) for p in json.loads(backend_path)]
module, _, attr = backend.partition(":")
try:
    obj = importlib.import_module(module)
except ImportError as exc:
    with open(result, "w") as f:
        json.dump({"missing": exc.name or str(exc)}, f)
    sys.exit(3)
for part in filter(None, attr.split(".")):
    obj = getattr(obj, part)
if not hasattr(obj, hook):
    with open(result, "w") as f:
        json.dump({"no_hook": hook}, f)
    sys.exit(4)
name = getattr(obj, hook)(out_dir)
with open(result, "w") as f:
    json.dump({"wheel": name}, f)
"""


def build(
    project: Project,
    source: Path,
    out_dir: Path,
    *,
    editable: bool,
    python: Path,
    prefix: Path,
    minor: str,
    python_version: str,
    cache_root: Path,
) -> Path:
    """Build into ``out_dir`` from ``source``; return the wheel's path."""
    have = installed([site_packages(prefix, minor)])
    lacking = missing(project.requires, have, python_version)
    extra_path: list[str] = []
    if lacking:
        extra_path.append(
            str(_build_env(project, [str(r) for r in lacking], python, prefix, minor, cache_root))
        )
    hook = "build_editable" if editable else "build_wheel"
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="condamatrix-hook-") as tmp:
        result = Path(tmp) / "result.json"
        environ = processes.child_environ()
        if extra_path:
            environ["PYTHONPATH"] = os.pathsep.join(extra_path)
        environ["PYTHONNOUSERSITE"] = "1"
        argv = [str(python), "-c", _HOOK, str(source), hook, str(out_dir), project.backend,
                json.dumps(list(project.backend_path)), str(result)]  # fmt: skip
        try:
            proc = processes.run_bytes(argv, cwd=source, env=environ, timeout=BUILD_TIMEOUT)
        except (OSError, subprocess.SubprocessError) as exc:
            raise InstallError(f"could not run the build backend with {python}: {exc}") from None
        answer = _read(result)
        if "missing" in answer:
            raise InstallError(
                f"the build backend {project.backend!r} cannot be imported in the cell "
                f"(no module {answer['missing']!r})",
                hint=f"add its package ({', '.join(project.requires)}) to dependencies, "
                "so that the env holds it",
            )
        if "no_hook" in answer:
            raise InstallError(
                f"the build backend {project.backend!r} has no {hook} hook "
                "(PEP 660 editable installs need a recent backend)",
                hint="upgrade the backend in dependencies, or use install = 'wheel'",
            )
        if proc.returncode != 0 or "wheel" not in answer:
            tail = (proc.stderr or proc.stdout).decode("utf-8", "replace").strip()[-2000:]
            raise InstallError(
                f"building the project's {'editable ' if editable else ''}wheel with "
                f"{project.backend} failed (exit {proc.returncode}):\n{tail}",
                hint="fix the build; run the backend by hand with `pip wheel --no-deps .`",
            )
    return out_dir / str(answer["wheel"])


def _read(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _build_env(
    project: Project, requires: list[str], python: Path, prefix: Path, minor: str, root: Path
) -> Path:
    """A folder holding ``requires`` for this Python, from the index; cached by its inputs."""
    key = hashlib.sha256(json.dumps([sorted(requires), minor]).encode()).hexdigest()[:16]
    folder = root / "build-envs" / f"py{minor}-{key}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if (folder / ".complete").is_file():
            return folder
        has_pip = (site_packages(prefix, minor) / "pip").is_dir()
        base = [str(python), "-m", "pip"] if has_pip else [sys.executable, "-m", "pip"]
        argv = [*base, "install", "--disable-pip-version-check", "--no-input", "--quiet",
                "--target", str(folder), "--upgrade"]  # fmt: skip
        if not has_pip:  # the outer pip fetches for the cell's Python
            argv += ["--python-version", minor, "--only-binary=:all:"]
        try:
            proc = processes.run([*argv, *requires], timeout=BUILD_TIMEOUT)
        except (OSError, subprocess.SubprocessError) as exc:
            proc = subprocess.CompletedProcess(argv, 1, "", str(exc))
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-3:]
            raise InstallError(
                f"the build backend {project.backend!r} needs {', '.join(requires)} "
                "(build-system.requires), which the cell's env lacks, and installing it from "
                f"the index failed: {' '.join(tail) or 'no output'}",
                hint=f"add {', '.join(repr(r) for r in requires)} to dependencies so that "
                "conda puts the backend into the env (works offline), or make an index "
                "reachable",
            )
        (folder / ".complete").write_text("ok\n", encoding="utf-8")
    return folder
