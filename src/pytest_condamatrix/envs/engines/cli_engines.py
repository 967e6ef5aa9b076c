"""Engines that drive a conda command-line tool: ``conda``, ``mamba`` or ``micromamba``.

Chosen with ``engine = "conda" | "mamba" | "micromamba"`` (or ``--conda-matrix-engine``),
for projects that want the solver, configuration (mirrors, proxies, package cache) and
exact behaviour of the tool their users run. The embedded rattler engine stays the default:
it needs nothing installed.

How a cell's env is made::

    CONDA_OVERRIDE_CUDA=<variant, or empty for CPU cells> \\
    <exe> create --yes --prefix <prefix> --override-channels --channel <ch>... <specs>

(``--no-default-packages`` too for conda, whose ``create_default_packages`` setting would add
packages behind our back; ``--file <explicit list>`` instead of channels and specs when a
lock file pins the cell). The same long options are accepted by conda, mamba 1 and 2 and
micromamba 1 and 2. Local channel folders are passed as ``file://`` URLs.

**In-place builds.** These tools write the prefix's absolute path into the files they
install (scripts, ``conda-meta``), so an env built under a temporary name cannot be renamed
into place as the rattler engine's is. These engines set ``builds_in_place``: the cache
then builds straight at the final path while holding the env's write lock (no other run
reads it meanwhile), and writes the stamp last, which is what makes the env valid. A build
killed half-way leaves a folder without a stamp, which is never reused (the next build
discards it; ``condamatrix cache prune`` removes it).

The installed packages are read back from ``<prefix>/conda-meta/*.json``; a CPU cell that
ended up with CUDA packages fails, as with the rattler engine (checked after the install:
the tool solves and installs in one step).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from ... import processes as command
from ...errors import EnvBuildError
from .. import host
from ..cache import python_executable
from ..cpu_only import SolvedPackage, ensure_cpu_only
from ..pip_layer import install_pip_layer
from ..spec import EnvSpec
from ..stamp import STAMP

if TYPE_CHECKING:
    from ..lock import MatrixLock

CLI_ENGINES = ("conda", "mamba", "micromamba")
INSTALL_HINTS = {
    "conda": "install Miniforge (https://conda-forge.org/download/) and put its bin/ "
    "folder on PATH",
    "mamba": "install Miniforge (https://conda-forge.org/download/), which ships mamba, "
    "and put its bin/ folder on PATH",
    "micromamba": "install micromamba (https://mamba.readthedocs.io/en/latest/installation/"
    "micromamba-installation.html) and put it on PATH",
}
#: where each tool's shell activation records its executable (``conda`` is often a shell
#: function, not a file on PATH, once ``conda init`` ran)
EXE_ENV_VARS = {"conda": "CONDA_EXE", "micromamba": "MAMBA_EXE"}
VERSION_RE = re.compile(r"\d+(?:\.\d+)+\S*")
VERSION_TIMEOUT = 120.0
#: seconds one ``create`` may take before it is killed (a big CUDA env downloads gigabytes)
BUILD_TIMEOUT = float(os.environ.get("CONDAMATRIX_BUILD_TIMEOUT", "3600"))
OUTPUT_TAIL = 30


def find_executable(name: str, environ: Mapping[str, str] | None = None) -> Path:
    """The tool's executable: on PATH, else where its shell activation says it is."""
    environ = os.environ if environ is None else environ
    found = shutil.which(name, path=environ.get("PATH"))
    if found:
        return Path(found)
    variable = EXE_ENV_VARS.get(name)
    recorded = environ.get(variable, "") if variable else ""
    if recorded and Path(recorded).name.startswith(name) and os.access(recorded, os.X_OK):
        return Path(recorded)
    raise EnvBuildError(
        f"the {name} engine needs the `{name}` command, and it is not on PATH",
        hint=f"{INSTALL_HINTS[name]}; or use the built-in engine, which needs nothing "
        "installed: engine = 'rattler' (or --conda-matrix-engine rattler)",
    )


def read_version(name: str, executable: Path) -> str:
    """``<exe> --version`` -> ``1.5.8`` (the first version-looking word of its first line)."""
    argv = [str(executable), "--version"]
    try:
        result = command.run(argv, timeout=VERSION_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvBuildError(
            f"the {name} engine cannot run `{shlex.join(argv)}`: {exc}",
            hint=f"check that {executable} is a working {name}; {INSTALL_HINTS[name]}",
        ) from None
    output = (result.stdout or result.stderr).strip()
    match = VERSION_RE.search(output.splitlines()[0]) if output else None
    if result.returncode != 0 or match is None:
        raise EnvBuildError(
            f"the {name} engine cannot tell its version: `{shlex.join(argv)}` "
            f"exited with code {result.returncode}: {_tail(result.stdout + result.stderr, 5)}",
            hint=f"check that {executable} is a working {name}; {INSTALL_HINTS[name]}",
        )
    return match.group(0)


class CliEngine:
    """conda, mamba or micromamba, run as a command; builds at the final prefix."""

    #: tells the cache to build at the final path and publish by writing the stamp last
    builds_in_place = True

    def __init__(
        self,
        name: str,
        executable: Path,
        version: str,
        *,
        lock: MatrixLock | None = None,
    ) -> None:
        if name not in CLI_ENGINES:
            raise ValueError(f"unknown CLI engine {name!r}")
        self.name = name
        self.executable = executable
        self.version = version
        self.id = f"{name} {version}"
        self.lock = lock
        self.platform = host.conda_platform()

    @classmethod
    def find(cls, name: str, *, lock: MatrixLock | None = None) -> CliEngine:
        executable = find_executable(name)
        return cls(name, executable, read_version(name, executable), lock=lock)

    def virtual_packages(self, cuda: str) -> tuple[str, ...]:
        # The tool detects the same facts itself; __cuda comes from CONDA_OVERRIDE_CUDA. The
        # keys use this machine's facts as detected for the rattler engine.
        return host.virtual_packages(cuda)

    # -- the command --------------------------------------------------------------------------

    def create_command(
        self, spec: EnvSpec, prefix: Path, explicit: Path | None = None
    ) -> list[str]:
        argv = [str(self.executable), "create", "--yes", "--prefix", str(prefix)]
        if self.name == "conda":
            argv.append("--no-default-packages")
        if explicit is not None:
            return [*argv, "--file", str(explicit)]
        argv.append("--override-channels")
        for channel in spec.channels:
            argv += ["--channel", channel_argument(channel)]
        return [*argv, *spec.specs]

    def environment(self, spec: EnvSpec, base: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        # Solve CUDA cells as if their driver were present (no GPU needed to build), and keep
        # a real driver on this machine from adding __cuda to a CPU cell's solve.
        env["CONDA_OVERRIDE_CUDA"] = "" if spec.cuda == "cpu" else spec.cuda
        return env

    # -- building -----------------------------------------------------------------------------

    def build(self, spec: EnvSpec, prefix: Path, final_prefix: Path) -> list[str]:
        if prefix != final_prefix:  # pragma: no cover - the cache honours builds_in_place
            raise EnvBuildError(f"the {self.name} engine builds in place only")
        with tempfile.TemporaryDirectory(prefix="condamatrix-explicit-") as scratch:
            explicit = self._explicit_file(spec, Path(scratch))
            argv = self.create_command(spec, prefix, explicit)
            self._run(spec, argv, self.environment(spec))
        if not python_executable(prefix).exists():
            raise EnvBuildError(
                f"{self.id} built the env of {spec.cell_id} without a Python interpreter "
                f"({python_executable(prefix)} is missing)",
                hint="check that the channels provide python for this platform",
            )
        solved = read_conda_meta(prefix)
        if spec.cuda == "cpu":
            check_no_cuda(spec, solved)
        packages = sorted(f"{p.name}={p.version}={p.build}" for p in solved)
        pip_packages = install_pip_layer(spec.cell_id, spec.pip, prefix, final_prefix)
        return packages + [f"pip:{p}" for p in pip_packages]

    def _explicit_file(self, spec: EnvSpec, folder: Path) -> Path | None:
        """An ``@EXPLICIT`` list of the locked packages (``url#md5``), when a lock pins the cell."""
        if not spec.locked or self.lock is None:
            return None
        records = self.lock.records(spec.cell_id, spec.platform)
        if records is None:
            return None
        lines = ["@EXPLICIT"]
        for record in records:
            md5 = record.md5.hex() if record.md5 else ""
            lines.append(f"{record.url}#{md5}" if md5 else str(record.url))
        path = folder / "explicit.txt"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def _run(self, spec: EnvSpec, argv: Sequence[str], env: Mapping[str, str]) -> None:
        shown = f"CONDA_OVERRIDE_CUDA={env.get('CONDA_OVERRIDE_CUDA', '')!s} " + shlex.join(argv)
        with tempfile.TemporaryFile() as output:
            try:
                proc = command.spawn(argv, env=env, cwd=Path.cwd(), output=output)
            except OSError as exc:
                raise EnvBuildError(
                    f"{self.id} could not be started to build the env of {spec.cell_id}: {exc}",
                    hint=f"command: {shown}; {INSTALL_HINTS[self.name]}",
                ) from None
            try:
                code = proc.wait(timeout=BUILD_TIMEOUT)
            except subprocess.TimeoutExpired:
                command.kill_group(proc)
                raise EnvBuildError(
                    f"{self.id} did not build the env of {spec.cell_id} within "
                    f"{BUILD_TIMEOUT:.0f}s and was stopped; command: {shown}\n"
                    + _tail(_read(output)),
                    hint="set CONDAMATRIX_BUILD_TIMEOUT (seconds) to allow longer builds",
                ) from None
            except BaseException:
                command.kill_group(proc)  # interrupted: take the whole tool down with us
                raise
            if code != 0:
                raise EnvBuildError(
                    f"{self.id} could not build the env of {spec.cell_id}: the command "
                    f"exited with code {code}\n  command: {shown}\n" + _tail(_read(output)),
                    hint="its last lines are above; rerun the command to see everything, and "
                    "check the specs against the channels",
                )


def channel_argument(channel: str) -> str:
    """Absolute local folders as ``file://`` URLs, which every CLI understands; others as is."""
    if "://" not in channel and Path(channel).is_absolute():
        return Path(channel).as_uri()
    return channel


def read_conda_meta(prefix: Path) -> list[SolvedPackage]:
    """The packages installed in ``prefix``, from its ``conda-meta/*.json`` records."""
    packages = []
    for record in sorted((prefix / "conda-meta").glob("*.json")):
        if record.name == STAMP.name:
            continue
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
            name, version, build = str(data["name"]), str(data["version"]), str(data["build"])
        except (OSError, ValueError, KeyError, TypeError):
            raise EnvBuildError(
                f"cannot read the package record {record}",
                hint="the tool left a damaged env: rerun with --conda-matrix-rebuild",
            ) from None
        depends = data.get("depends") or []
        packages.append(SolvedPackage(name, version, build, tuple(str(d) for d in depends)))
    return packages


def check_no_cuda(spec: EnvSpec, solved: Sequence[SolvedPackage]) -> None:
    """A CPU cell must not contain CUDA packages (same rule and message as the rattler engine)."""
    ensure_cpu_only(spec.cell_id, spec.specs, solved)


def _read(output: IO[bytes]) -> str:
    with contextlib.suppress(OSError):
        output.seek(0)
        return output.read().decode("utf-8", "replace")
    return ""


def _tail(text: str, lines: int = OUTPUT_TAIL) -> str:
    kept = text.strip().splitlines()[-lines:]
    return "\n".join(f"    {line}" for line in kept) if kept else "    (no output)"
