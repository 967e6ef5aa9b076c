"""Find the CPython interpreters installed on this machine that can be packaged for conda."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pytest_condamatrix import processes

__all__ = ["Interpreter", "find_interpreters", "probe_interpreters", "pyenv_root"]

_MINOR = re.compile(r"^3\.(\d+)$")
# Prefixes shared with the rest of the system; their Pythons are patched by the distribution
# (e.g. Debian's dist-packages) and would not work from a conda prefix.
_SYSTEM_PREFIXES = (Path("/"), Path("/usr"))

# Runs in the candidate interpreter (any CPython >= 3.6): keep it old-syntax, stdlib only.
_PROBE = """\
import json, sys
v = sys.version_info
level = {"alpha": "a", "beta": "b", "candidate": "rc"}.get(v.releaselevel)
print(json.dumps({
    "implementation": sys.implementation.name,
    "version": "%d.%d.%d" % v[:3] + ("%s%d" % (level, v.serial) if level else ""),
    "minor": "%d.%d" % v[:2],
    "executable": sys.executable,
    "prefix": sys.base_prefix,
    "cache_tag": sys.implementation.cache_tag,
    "abiflags": getattr(sys, "abiflags", ""),
}))
"""


@dataclass(frozen=True)
class Interpreter:
    """A CPython installation that can be turned into a conda `python` package."""

    minor: str  # "3.12"
    version: str  # "3.12.1"
    executable: Path  # <prefix>/bin/python3.12
    prefix: Path  # the installation folder (sys.base_prefix)
    cache_tag: str  # "cpython-312", names the .pyc files

    @property
    def stdlib(self) -> Path:
        return self.prefix / "lib" / f"python{self.minor}"


def find_interpreters(versions: Iterable[str]) -> dict[str, Path]:
    """Map "3.12" -> path of a CPython 3.12 executable found on PATH (python3.12) or in
    pyenv's versions folder. Missing versions are absent from the result.

    Only interpreters that can be packaged count: a self-contained installation
    (`<prefix>/bin/python3.X` and `<prefix>/lib/python3.X/os.py`), not the system Python in
    /usr, not a free-threaded build. Wrapper scripts (pyenv or asdf shims) are skipped: they
    only delegate to installations that are looked up directly.
    """
    return {minor: interp.executable for minor, interp in probe_interpreters(versions).items()}


def probe_interpreters(versions: Iterable[str]) -> dict[str, Interpreter]:
    """Like `find_interpreters`, with what the channel builder needs to know about each."""
    wanted = list(dict.fromkeys(versions))
    for minor in wanted:
        if not _MINOR.match(minor):
            raise ValueError(f"not a Python minor version like '3.12': {minor!r}")
    root = pyenv_root()

    def first(minor: str) -> Interpreter | None:
        for candidate in _candidates(minor, root):
            interp = _probe(candidate)
            if interp is not None and interp.minor == minor:
                return interp
        return None

    # Each probe starts an interpreter (~20 ms): probe the versions side by side.
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(wanted)))) as pool:
        results = list(pool.map(first, wanted))
    return {
        minor: interp for minor, interp in zip(wanted, results, strict=True) if interp is not None
    }


def pyenv_root() -> Path | None:
    """pyenv's root folder: $PYENV_ROOT, else ~/.pyenv if it exists.

    That is also what `pyenv root` prints (pyenv defaults PYENV_ROOT to ~/.pyenv), without
    starting its shell script.
    """
    env = os.environ.get("PYENV_ROOT")
    if env:
        return Path(env)
    home = Path.home() / ".pyenv"
    return home if home.is_dir() else None


def _candidates(minor: str, root: Path | None) -> list[Path]:
    name = f"python{minor}"
    found: list[Path] = []
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        exe = Path(folder or ".") / name
        if exe.is_file() and os.access(exe, os.X_OK) and not _is_script(exe):
            found.append(exe)
    if root is not None and (root / "versions").is_dir():
        patch = re.compile(rf"^{re.escape(minor)}\.(\d+)$")
        releases = []
        for entry in (root / "versions").iterdir():
            match = patch.match(entry.name)
            if match and (entry / "bin" / name).is_file():
                releases.append((int(match.group(1)), entry / "bin" / name))
        found.extend(exe for _, exe in sorted(releases, reverse=True))
    return list(dict.fromkeys(found))


def _is_script(exe: Path) -> bool:
    try:
        with exe.open("rb") as f:
            return f.read(2) == b"#!"
    except OSError:
        return True


def _probe(exe: Path) -> Interpreter | None:
    try:
        proc = processes.run([str(exe), "-I", "-S", "-c", _PROBE], timeout=60)
        info = json.loads(proc.stdout) if proc.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError):
        info = None
    if not isinstance(info, dict) or info.get("implementation") != "cpython":
        return None
    if "t" in str(info.get("abiflags", "")):
        return None  # free-threaded build: its stdlib lives in lib/python3.Xt
    minor = str(info["minor"])
    prefix = Path(str(info["prefix"]))
    binary = prefix / "bin" / f"python{minor}"
    if prefix in _SYSTEM_PREFIXES or not binary.is_file():
        return None
    if not (prefix / "lib" / f"python{minor}" / "os.py").is_file():
        return None
    return Interpreter(
        minor=minor,
        version=str(info["version"]),
        executable=binary,
        prefix=prefix,
        cache_tag=str(info["cache_tag"]),
    )
