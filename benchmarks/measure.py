"""The measurements: warm runs side by side, the cache-hit decision, env builds, cold runs,
and the per-test cost of streaming results out of a cell.

Each function returns plain JSON-ready data; ``benchmarks.report`` turns it into tables.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console

import pytest_condamatrix
from pytest_condamatrix.envs.cache import EnvCache
from pytest_condamatrix.envs.engines.rattler import RattlerEngine
from pytest_condamatrix.envs.spec import EnvSpec, make_spec
from pytest_condamatrix.matrix import Cell
from pytest_condamatrix.report.terminal import ProgressPrinter
from pytest_condamatrix.results import CellResult
from pytest_condamatrix.run.cell_process import WORKER_MODULE
from pytest_condamatrix.run.protocol import StreamTail
from pytest_condamatrix.run.runner import MatrixRunner, RunOptions
from pytest_condamatrix.run.session import SessionOptions, load_matrix

from . import tools
from .plan import Matrix, Scenario
from .projects import Project
from .tools import BenchError, Context, Timing

Say = Callable[[str], None]


def _quiet(message: str) -> None:
    del message


# --- warm runs, side by side -------------------------------------------------------------


def envs_of(ctx: Context, project: Project, matrix: Matrix) -> tuple[list[Path], int]:
    """Make sure the matrix's envs exist (an untimed ``pytest --conda-matrix`` run); return
    their prefixes in cell order and the number of tests run in all cells."""
    data = tools.warm_condamatrix(ctx, project, matrix)
    cells = {str(c["cell"]): c for c in data["cells"]}
    missing = [c for c in matrix.cell_ids if c not in cells]
    if missing:
        raise BenchError(f"{project.name}: the matrix run has no cell {', '.join(missing)}")
    bad = [f"{c}: {cells[c]['status']}" for c in matrix.cell_ids if cells[c]["status"] != "passed"]
    if bad:
        raise BenchError(f"{project.name}: cells did not pass: {'; '.join(bad)}")
    prefixes = [Path(str(cells[c]["env_prefix"])) for c in matrix.cell_ids]
    tests = sum(sum(cells[c]["counts"].values()) for c in matrix.cell_ids)
    return prefixes, tests


def warm_runs(
    ctx: Context, scenario: Scenario, project: Project, matrix: Matrix, say: Say = _quiet
) -> dict[str, Any]:
    """Time each tool ``repeats`` times on warm envs, interleaved (a slow minute on a shared
    machine then hits every tool alike); the best time of each is the figure."""
    prefixes, tests = envs_of(ctx, project, matrix)
    load = _load()
    rows: dict[str, dict[str, Any]] = {}
    active: list[str] = []
    for tool in scenario.tools:
        rows[tool] = {
            "tool": tool,
            "walls": [],
            "cpus": [],
            "outer_rss_mb": [],
            "outer_cpu": [],
            "parts": [],
        }
        try:
            if not tool.startswith(("direct", "condamatrix")):  # envs_of warmed those up
                tools.warm_up(ctx, tool, project, matrix, prefixes)
            active.append(tool)
        except (BenchError, OSError) as exc:
            rows[tool]["error"] = str(exc)
            say(f"  {tool}: not measured: {_first_line(exc)}")
    for repeat in range(scenario.repeats):
        order = active[repeat % len(active) :] + active[: repeat % len(active)] if active else []
        for tool in order:
            try:
                timing = tools.run_tool(ctx, tool, project, matrix, prefixes)
            except BenchError as exc:
                rows[tool]["error"] = str(exc)
                active.remove(tool)
                say(f"  {tool}: failed: {_first_line(exc)}")
                continue
            _add(rows[tool], timing)
            say(f"  {tool:<16} {timing.wall:8.2f} s wall {timing.cpu:8.2f} s cpu")
    return {
        "workload": project.name,
        "matrix": matrix.name,
        "cells": matrix.cells,
        "tests": tests,
        "repeats": scenario.repeats,
        "load_average": f"{load} / {_load()}",  # 1-minute load before / after
        "tools": [_summarise(rows[t]) for t in scenario.tools],
    }


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "?"


def _add(row: dict[str, Any], timing: Timing) -> None:
    row["walls"].append(round(timing.wall, 4))
    row["cpus"].append(round(timing.cpu, 4))
    if timing.outer_rss_mb is not None:
        row["outer_rss_mb"].append(round(timing.outer_rss_mb, 1))
    if timing.outer_cpu is not None:
        row["outer_cpu"].append(round(timing.outer_cpu, 4))
    if timing.parts:
        row["parts"].append([round(part, 4) for part in timing.parts])


def _summarise(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    if row["walls"]:
        out["wall"] = min(row["walls"])
        out["cpu"] = min(row["cpus"])
    if row["parts"]:  # each cell's best time, whichever repeat it came from
        out["cell_walls"] = [min(times) for times in zip(*row["parts"], strict=True)]
    if row["outer_rss_mb"]:
        out["outer_rss_mb_max"] = max(row["outer_rss_mb"])
        out["outer_cpu_min"] = min(row["outer_cpu"])
    return {k: v for k, v in out.items() if v != []}


# --- in process: the cache-hit decision and env builds ------------------------------------


def cells_of(ctx: Context, project: Project, matrix: Matrix) -> list[Cell]:
    options = SessionOptions(cwd=project.path, channels=(str(ctx.channel),), select=matrix.cell_ids)
    _, cells = load_matrix(options)
    return cells


def _never() -> bool:
    return False


def _no_build(spec: EnvSpec, prefix: Path, final: Path) -> list[str]:
    raise BenchError(f"cache miss for {spec.cell_id}: the decision benchmark needs warm envs")


def decision(
    ctx: Context, project: Project, matrix: Matrix, rounds: int, say: Say = _quiet
) -> dict[str, Any]:
    """Time the cache-hit decision per cell in this process: the spec and its key (with the
    local channel's index hashed), the read lock, the stamp and the check of the env's files.
    The first cell of a run also detects the host's virtual packages: timed apart."""
    envs_of(ctx, project, matrix)
    cells = cells_of(ctx, project, matrix)
    cache = EnvCache(ctx.cache)
    engine = RattlerEngine(cache.package_cache, ctx.cache / "repodata")
    start = time.perf_counter()
    engine.virtual_packages("cpu")
    detect = time.perf_counter() - start
    walls: list[float] = []
    cpus: list[float] = []
    for _ in range(rounds):
        for cell in cells:
            wall0, cpu0 = time.perf_counter(), time.process_time()
            spec = make_spec(cell, engine, engine.platform)
            with cache.use(spec, _no_build, cancelled=_never) as env:  # as the runner calls it
                if env.status != "reused":
                    raise BenchError(f"{cell.id}: the env was {env.status}, not reused")
            walls.append(time.perf_counter() - wall0)
            cpus.append(time.process_time() - cpu0)
    walls_ms = sorted(w * 1000 for w in walls)
    result = {
        "workload": project.name,
        "matrix": matrix.name,
        "cells": len(cells),
        "rounds": rounds,
        "median_ms": round(statistics.median(walls_ms), 3),
        "p90_ms": round(walls_ms[int(0.9 * (len(walls_ms) - 1))], 3),
        "min_ms": round(walls_ms[0], 3),
        "cpu_median_ms": round(statistics.median(cpus) * 1000, 3),
        "detect_ms": round(detect * 1000, 3),
    }
    say(f"  per cell: median {result['median_ms']} ms, p90 {result['p90_ms']} ms")
    return result


@contextmanager
def scratch(ctx: Context, name: str) -> Iterator[Path]:
    """A fresh folder under the benchmark's own, removed afterwards."""
    path = ctx.root / "scratch" / f"{name}-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _build_all(cells: Sequence[Cell], cache: EnvCache, engine: RattlerEngine) -> list[float]:
    seconds = []
    for cell in cells:
        spec = make_spec(cell, engine, engine.platform)
        start = time.perf_counter()
        with cache.use(spec, engine.build) as env:
            if env.status != "built":
                raise BenchError(f"{cell.id}: expected a build in a new cache, got {env.status}")
        seconds.append(time.perf_counter() - start)
    return seconds


def _build_parallel(
    cells: Sequence[Cell], cache: EnvCache, engine: RattlerEngine, jobs: int
) -> float:
    """Wall time to build every cell ``jobs`` at a time, as ``--conda-matrix-jobs`` does."""
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(lambda cell: _build_all([cell], cache, engine), cells))
    return time.perf_counter() - start


def builds(ctx: Context, project: Project, matrix: Matrix, say: Say = _quiet) -> dict[str, Any]:
    """Build every cell's env, one after the other, into a new env cache: from a warm package
    cache (filled by a first, untimed pass), then from an empty one."""
    cells = cells_of(ctx, project, matrix)
    out: dict[str, Any] = {"workload": project.name, "matrix": matrix.name, "cells": len(cells)}
    with scratch(ctx, "build") as root:
        warm = RattlerEngine(root / "pkgs", root / "repodata")
        _build_all(cells, EnvCache(root / "fill"), warm)  # fills the package cache
        seconds = _build_all(cells, EnvCache(root / "warm"), warm)
        out["warm_package_cache"] = _build_figures(cells, seconds)
        say(f"  warm package cache: {sum(seconds):.2f} s for {len(cells)} cells")
        wall = _build_parallel(cells, EnvCache(root / "parallel"), warm, jobs=2)
        out["warm_package_cache_2_jobs_s"] = round(wall, 3)
        say(f"  warm package cache, 2 at a time: {wall:.2f} s for {len(cells)} cells")
    with scratch(ctx, "build-cold") as root:
        cold = RattlerEngine(root / "pkgs", root / "repodata")
        seconds = _build_all(cells, EnvCache(root / "envs"), cold)
        out["empty_package_cache"] = _build_figures(cells, seconds)
        say(f"  empty package cache: {sum(seconds):.2f} s for {len(cells)} cells")
    return out


def _build_figures(cells: Sequence[Cell], seconds: list[float]) -> dict[str, Any]:
    return {
        "total_s": round(sum(seconds), 3),
        "per_cell_s": {cell.id: round(s, 3) for cell, s in zip(cells, seconds, strict=True)},
    }


# --- cold runs, side by side ---------------------------------------------------------------


def cold_runs(
    ctx: Context,
    project: Project,
    matrix: Matrix,
    tool_names: Sequence[str],
    repeats: int = 1,
    say: Say = _quiet,
) -> dict[str, Any]:
    """Each tool from nothing, ``repeats`` times interleaved (the best counts): no envs;
    ``pytest --conda-matrix`` and nox's rattler backend also start from an empty package
    cache, while pip's and uv's caches stay warm. ``condamatrix-pkgs`` is the like-for-like
    run for those two: no envs, the package cache warm."""
    envs_of(ctx, project, matrix)  # the channel's index is read and checked once, untimed
    rows: dict[str, dict[str, Any]] = {tool: {"walls": []} for tool in tool_names}
    for _ in range(repeats):
        for tool in tool_names:
            if "error" in rows[tool]:
                continue
            with scratch(ctx, f"cold-{tool}") as root:
                try:
                    timing = _cold(ctx, tool, project, matrix, root)
                except BenchError as exc:
                    rows[tool] = {"error": str(exc)}
                    say(f"  {tool}: failed: {_first_line(exc)}")
                    continue
            row = rows[tool]
            row["walls"].append(round(timing.wall, 3))
            if timing.wall <= row.get("wall", float("inf")):
                row.update(wall=round(timing.wall, 3), cpu=round(timing.cpu, 3))
            say(f"  {tool:<16} {timing.wall:8.2f} s wall (cold)")
    return {
        "workload": project.name,
        "matrix": matrix.name,
        "cells": matrix.cells,
        "repeats": repeats,
        "tools": rows,
    }


def _cold(ctx: Context, tool: str, project: Project, matrix: Matrix, root: Path) -> Timing:
    if tool == "condamatrix-pkgs":
        # hard links, as rattler's own cache holds the same files: no copy, no extraction
        subprocess.run(["cp", "-al", str(ctx.cache / "pkgs"), str(root / "pkgs")], check=True)
        return tools.condamatrix(ctx, project, matrix, jobs=1, cache=root)
    if tool.startswith("condamatrix"):
        jobs = int(tool.removeprefix("condamatrix-j")) if tool.startswith("condamatrix-j") else 1
        return tools.condamatrix(ctx, project, matrix, jobs=jobs, cache=root)
    if tool == "nox" or tool.startswith("nox-"):
        backend = "virtualenv" if tool == "nox" else tool.removeprefix("nox-")
        env = dict(ctx.env)
        if backend == "rattler":
            env["RATTLER_CACHE_DIR"] = str(root / "rattler-cache")
        return tools.nox(ctx, project, matrix, backend, reuse=False, envdir=root, env=env)
    if tool == "tox":
        return tools.tox(ctx, project, matrix, workdir=root)
    raise BenchError(f"unknown cold tool {tool!r}")


# --- streaming results out of a cell ---------------------------------------------------------


MICRO = Path(__file__).with_name("_stream_micro.py")
MICRO_TESTS = 20_000


def stream_costs(
    ctx: Context, prefixes: Sequence[Path], matrix: Matrix, say: Say = _quiet
) -> dict[str, Any]:
    """The per-test cost of streaming, each side timed alone (best of three): the worker's
    hooks in each cell's interpreter (each run the best of five rounds with and without
    it), and the outer process reading, parsing and recording what it wrote. Precise where
    an A/B of whole runs drowns in a shared machine's noise."""
    worker_py = Path(pytest_condamatrix.__file__).with_name("worker.py")
    out: dict[str, Any] = {"tests": MICRO_TESTS, "worker_cpu_us": {}, "worker_python": {}}
    with scratch(ctx, "stream-micro") as root:
        stream = root / "stream.jsonl"
        for cell_id, prefix in zip(matrix.cell_ids, prefixes, strict=True):
            # short: what a cell sends when no plugin of the outer run listens; all: in full
            for mode, key in (("short", "worker_cpu_us"), ("all", "worker_all_cpu_us")):
                best = float("inf")
                for _ in range(3):
                    stream.unlink(missing_ok=True)
                    argv = [str(prefix / "bin" / "python"), str(MICRO), str(worker_py),
                            str(stream), str(MICRO_TESTS), mode]  # fmt: skip
                    proc = subprocess.run(
                        argv, cwd=root, env=dict(ctx.env), capture_output=True, text=True,
                        check=False,
                    )  # fmt: skip
                    if proc.returncode:
                        raise BenchError(f"{cell_id}: {MICRO.name} failed:\n{proc.stderr[-2000:]}")
                    data = json.loads(proc.stdout.strip().splitlines()[-1])
                    best = min(best, float(data["cpu_us_per_test"]))
                out.setdefault(key, {})[cell_id] = round(best, 2)
                out["worker_python"][cell_id] = data["python"]
                say(f"  worker in {cell_id}, {mode} reports: {best:.1f} µs per test")
            stream.unlink(missing_ok=True)  # the outer side reads the short stream
            argv = [str(prefix / "bin" / "python"), str(MICRO), str(worker_py), str(stream),
                    str(MICRO_TESTS), "short"]  # fmt: skip
            subprocess.run(argv, cwd=root, env=dict(ctx.env), capture_output=True, check=True)
        out["outer_cpu_us"] = round(_outer_cost(ctx, root, stream, MICRO_TESTS), 2)
        say(f"  outer process: {out['outer_cpu_us']:.1f} µs per test")
    out["total_cpu_us"] = round(max(out["worker_cpu_us"].values()) + out["outer_cpu_us"], 2)
    return out


def _outer_cost(ctx: Context, root: Path, stream: Path, tests: int) -> float:
    """CPU microseconds per test for the runner to take in a cell's stream (terminal
    reporter included, as without a terminal)."""
    cache = EnvCache(ctx.cache)
    engine = RattlerEngine(cache.package_cache, ctx.cache / "repodata")
    console = Console(file=io.StringIO(), width=100, force_terminal=False)
    runner = MatrixRunner(
        RunOptions(cache=cache, engine=engine, run_dir=root, cwd=root), ProgressPrinter(console)
    )
    cell = Cell(python="3.12", cuda="cpu")
    best = float("inf")
    for _ in range(3):
        result = CellResult(cell=cell.id, python=cell.python, cuda=cell.cuda)
        start = time.process_time()
        runner._consume(cell, result, StreamTail(stream).read())
        best = min(best, time.process_time() - start)
        if len(result.tests) != tests:
            raise BenchError(f"the stream held {len(result.tests)} results, not {tests}")
    return best / tests * 1e6


def streaming(
    ctx: Context, project: Project, matrix: Matrix, repeats: int, say: Say = _quiet
) -> dict[str, Any]:
    """The per-test cost of streaming results: each side alone (``stream_costs``), then, as
    a check, the suite run in one env with and without the worker plugin (and with the
    fallback JUnit file the runner also names)."""
    prefixes, tests = envs_of(ctx, project, matrix)
    micro = stream_costs(ctx, prefixes, matrix, say)
    prefix = prefixes[-1]
    tests //= matrix.cells
    with scratch(ctx, "stream") as root:
        shutil.copyfile(
            Path(pytest_condamatrix.__file__).with_name("worker.py"), root / f"{WORKER_MODULE}.py"
        )
        stream = root / "results.jsonl"
        plain = dict(ctx.env)
        plain["PYTHONNOUSERSITE"] = "1"
        worker = dict(plain)
        # as the runner starts a cell when no plugin of the outer run listens
        worker.update(PYTHONPATH=str(root), CONDAMATRIX_CELL="bench", CONDAMATRIX_REPORTS="short")
        junit = [f"--junitxml={root / 'junit.xml'}"]
        cache_dir = ["-o", "cache_dir=.pytest_cache/condamatrix/bench"]
        variants: dict[str, tuple[list[str], dict[str, str]]] = {
            "plain": ([], plain),
            "worker": (["-p", WORKER_MODULE, f"--condamatrix-stream={stream}"], worker),
            "junit": (junit, plain),
            # as the runner starts a cell
            "cell": (["-p", WORKER_MODULE, f"--condamatrix-stream={stream}", *cache_dir], worker),
        }
        samples: dict[str, list[Timing]] = {name: [] for name in variants}
        for repeat in range(repeats + 1):  # the first round warms caches, untimed
            for name, (args, env) in variants.items():
                stream.unlink(missing_ok=True)
                argv = [str(prefix / "bin" / "python"), "-m", "pytest", *args]
                log = ctx.logs / f"streaming-{name}.log"
                timing = tools.run_timed(argv, cwd=project.path, env=env, log=log)
                if name.startswith("worker") and not stream.is_file():
                    raise BenchError("the worker plugin wrote no results: it did not load")
                if repeat:
                    samples[name].append(timing)
                    say(f"  {name:<14} {timing.wall:8.2f} s wall {timing.cpu:8.2f} s cpu")
    best = {
        name: {"wall": min(t.wall for t in ts), "cpu": min(t.cpu for t in ts)}
        for name, ts in samples.items()
    }

    def per_test_us(variant: str, key: str) -> float:
        return round((best[variant][key] - best["plain"][key]) / tests * 1e6, 2)

    return {
        "micro": micro,
        "workload": project.name,
        "cell": matrix.cell_ids[-1],
        "tests": tests,
        "repeats": repeats,
        "variants": {k: {m: round(v, 3) for m, v in b.items()} for k, b in best.items()},
        "worker_us_per_test_cpu": per_test_us("worker", "cpu"),
        "worker_us_per_test_wall": per_test_us("worker", "wall"),
        "junit_us_per_test_cpu": per_test_us("junit", "cpu"),
        "cell_us_per_test_cpu": per_test_us("cell", "cpu"),
    }


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]
