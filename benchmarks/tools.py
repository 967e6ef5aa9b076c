"""Run each compared tool on a project and time it: wall time, CPU time of the process tree,
and for ``pytest --conda-matrix`` the outer process's own peak memory and CPU time.

Every command is an argv list; output goes to a log file under the benchmark folder, whose
tail is shown when a command fails.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from .plan import Matrix
from .projects import Project, tox_envs

OUTER = Path(__file__).with_name("_outer.py")
#: variables of this process that would change what the measured tools do
DROP_ENV = (
    "PYTHONDONTWRITEBYTECODE",  # warm runs keep their bytecode, as on a developer's machine
    "PYTHONPATH",
    "PYTHONHOME",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "PYTEST_ADDOPTS",
    "NOXSESSION",
    "TOX_ENV",
)


class BenchError(Exception):
    """A measured command failed: the benchmark cannot compare what did not run."""


@dataclass(frozen=True)
class Timing:
    wall: float  # seconds
    cpu: float  # user + system seconds of the whole process tree
    outer_rss_mb: float | None = None  # pytest --conda-matrix: the outer process only
    outer_cpu: float | None = None
    parts: tuple[float, ...] = ()  # direct: the wall time of each env, in cell order

    def plus(self, other: Timing) -> Timing:
        return Timing(
            self.wall + other.wall, self.cpu + other.cpu, parts=(*self.parts, *other.parts)
        )


@dataclass(frozen=True)
class Context:
    """Where things are, and the environment every measured command starts from."""

    root: Path  # the benchmark's private folder
    channel: Path  # the local conda channel
    cache: Path  # the env cache of the warm runs
    env: Mapping[str, str]

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def tool_dirs(self) -> Path:
        return self.root / "tools"


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DROP_ENV}
    env = {k: v for k, v in env.items() if not k.startswith("CONDAMATRIX_")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def run_timed(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], log: Path, check: bool = True
) -> Timing:
    """Run ``argv`` to its end; its output goes to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as output:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(
            list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=output,
            stderr=subprocess.STDOUT, check=False,
        )  # fmt: skip
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if check and proc.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-25:]
        raise BenchError(
            f"{' '.join(argv[:6])} ... exited with {proc.returncode} in {cwd}; "
            f"log {log}:\n" + "\n".join(tail)
        )
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timing(wall=wall, cpu=cpu)


def direct(ctx: Context, project: Project, prefixes: Sequence[Path]) -> Timing:
    """``<prefix>/bin/python -m pytest`` in each env, one after the other."""
    env = dict(ctx.env)
    env["PYTHONNOUSERSITE"] = "1"
    if project.src:
        env["PYTHONPATH"] = str(project.src)
    total = Timing(0.0, 0.0)
    for prefix in prefixes:
        argv = [str(prefix / "bin" / "python"), "-m", "pytest", *project.plain_args]
        log = ctx.logs / f"{project.name}-direct-{prefix.name}.log"
        timing = run_timed(argv, cwd=project.path, env=env, log=log)
        total = total.plus(Timing(timing.wall, timing.cpu, parts=(timing.wall,)))
    return total


def condamatrix_argv(
    ctx: Context,
    matrix: Matrix,
    *,
    jobs: int,
    cache: Path | None = None,
    json_path: Path | None = None,
    outer_stats: Path | None = None,
) -> list[str]:
    """``pytest --conda-matrix`` for the cells of ``matrix``; with ``outer_stats``, run under
    a wrapper that records the outer process's own peak memory and CPU time."""
    head = [sys.executable, str(OUTER), str(outer_stats)] if outer_stats else [sys.executable]
    if not outer_stats:
        head += ["-m", "pytest"]
    argv = [
        *head,
        "--conda-matrix",
        "--conda-matrix-cache-dir",
        str(cache or ctx.cache),
        "--conda-matrix-channel",
        str(ctx.channel),
        "--conda-matrix-jobs",
        str(jobs),
    ]
    for cell in matrix.cell_ids:
        argv += ["--conda-matrix-select", cell]
    if json_path:
        argv += ["--conda-matrix-json", str(json_path)]
    return argv


def condamatrix(
    ctx: Context, project: Project, matrix: Matrix, *, jobs: int, cache: Path | None = None
) -> Timing:
    stats = ctx.logs / f"{project.name}-{matrix.name}-outer.json"
    stats.unlink(missing_ok=True)
    argv = condamatrix_argv(ctx, matrix, jobs=jobs, cache=cache, outer_stats=stats)
    log = ctx.logs / f"{project.name}-{matrix.name}-condamatrix-j{jobs}.log"
    timing = run_timed(argv, cwd=project.path, env=ctx.env, log=log)
    outer = json.loads(stats.read_text(encoding="utf-8"))
    return Timing(
        wall=timing.wall,
        cpu=timing.cpu,
        outer_rss_mb=outer["maxrss_kb"] / 1024,
        outer_cpu=outer["cpu"],
    )


def warm_condamatrix(ctx: Context, project: Project, matrix: Matrix) -> dict[str, Any]:
    """Build (or check) the envs of ``matrix``; returns the run's JSON results."""
    out = ctx.logs / f"{project.name}-{matrix.name}-results.json"
    argv = condamatrix_argv(ctx, matrix, jobs=2, json_path=out)
    log = ctx.logs / f"{project.name}-{matrix.name}-warmup.log"
    run_timed(argv, cwd=project.path, env=ctx.env, log=log)
    data = json.loads(out.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise BenchError(f"{out} does not hold the results of a matrix run")
    return data


def nox_argv(
    project: Project, matrix: Matrix, backend: str, envdir: Path, *, reuse: bool
) -> list[str]:
    argv = [
        sys.executable, "-m", "nox", "-f", str(project.path / "noxfile.py"),
        "--envdir", str(envdir), "-s", backend, "--download-python", "never",
        "-p", *matrix.pythons,
    ]  # fmt: skip
    argv += ["-R"] if reuse else ["--reuse-venv", "no"]
    return [*argv, "--", *project.plain_args]


def nox(
    ctx: Context,
    project: Project,
    matrix: Matrix,
    backend: str,
    *,
    reuse: bool = True,
    envdir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Timing:
    """nox, one session per Python; ``reuse``: ``-R`` (reuse the venvs, install nothing)."""
    _no_cuda("nox", matrix)
    envdir = envdir or ctx.tool_dirs / "nox" / project.name / backend
    argv = nox_argv(project, matrix, backend, envdir, reuse=reuse)
    log = ctx.logs / f"{project.name}-nox-{backend}{'-R' if reuse else ''}.log"
    return run_timed(argv, cwd=project.path, env=env or ctx.env, log=log)


def tox(
    ctx: Context,
    project: Project,
    matrix: Matrix,
    *,
    parallel: int = 0,
    workdir: Path | None = None,
) -> Timing:
    """tox with one virtualenv per Python; ``parallel``: ``tox run-parallel -p N``."""
    _no_cuda("tox", matrix)
    workdir = workdir or ctx.tool_dirs / "tox" / project.name
    command = ["run-parallel", "-p", str(parallel)] if parallel else ["run"]
    argv = [
        sys.executable, "-m", "tox", *command, "-c", str(project.path / "tox.ini"),
        "--workdir", str(workdir), "-e", ",".join(tox_envs(matrix.pythons)),
        "--", *project.plain_args,
    ]  # fmt: skip
    log = ctx.logs / f"{project.name}-tox{'-p' if parallel else ''}.log"
    return run_timed(argv, cwd=project.path, env=ctx.env, log=log)


def _no_cuda(tool: str, matrix: Matrix) -> None:
    if matrix.is_cuda:
        raise BenchError(f"{tool} has no CUDA axis: compare it on CPU-only matrices")


def run_tool(
    ctx: Context, tool: str, project: Project, matrix: Matrix, prefixes: list[Path]
) -> Timing:
    """One timed run of ``tool`` (a name from ``benchmarks.plan.TOOLS``), warm."""
    if tool == "direct":
        return direct(ctx, project, prefixes)
    if tool.startswith("condamatrix-j"):
        return condamatrix(ctx, project, matrix, jobs=int(tool.removeprefix("condamatrix-j")))
    if tool == "outer-alone":
        argv = [*condamatrix_argv(ctx, matrix, jobs=1), "--conda-matrix-list"]
        log = ctx.logs / f"{project.name}-{matrix.name}-outer-alone.log"
        return run_timed(argv, cwd=project.path, env=ctx.env, log=log)
    if tool == "nox":
        return nox(ctx, project, matrix, "virtualenv")
    if tool.startswith("nox-"):
        return nox(ctx, project, matrix, tool.removeprefix("nox-"))
    if tool == "tox":
        return tox(ctx, project, matrix)
    if tool == "tox-p2":
        return tox(ctx, project, matrix, parallel=2)
    raise BenchError(f"unknown tool {tool!r}")


def warm_up(
    ctx: Context, tool: str, project: Project, matrix: Matrix, prefixes: list[Path]
) -> None:
    """An untimed run that creates what the timed runs reuse (venvs, bytecode caches): nox
    ``-R`` and tox create a missing env and install into it, then reuse it."""
    run_tool(ctx, tool, project, matrix, prefixes)


BENCH_DIR_VAR = "CONDAMATRIX_BENCH_DIR"


def bench_dir(explicit: Path | None) -> Path:
    if explicit is not None:
        return explicit.expanduser().resolve()
    env = os.environ.get(BENCH_DIR_VAR)
    if env:
        return Path(env).expanduser().resolve()
    return Path(platformdirs.user_cache_dir("pytest-condamatrix", appauthor=False)) / "bench"
