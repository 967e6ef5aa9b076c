"""The warm cost of ``install = "wheel"`` over ``"none"`` for an unchanged pure-Python project.

Run: ``python -m benchmarks.install_cost`` (``--quick`` for a smoke run). It measures
``prepare_install`` itself for each cell (the per-cell work the mode adds: reading the
sources, finding the cached wheel, unpacking it into the overlay, checking Requires-Dist),
and whole warm runs of ``pytest --conda-matrix -j 1`` in both modes, interleaved; then it
writes its section of docs/benchmarks.md (kept when that page is regenerated).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from pytest_condamatrix.config import load_config
from pytest_condamatrix.install import InstallSettings, prepare_install
from pytest_condamatrix.localchannel import build_local_channel
from pytest_condamatrix.matrix import build_cells

from .sections import INSTALL_COST, write_section
from .tools import bench_dir

PYTHONS = ("3.9", "3.11", "3.12")
START, END = INSTALL_COST


def make_project(folder: Path, channel: Path) -> None:
    (folder / "src" / "purepkg").mkdir(parents=True)
    (folder / "tests").mkdir()
    (folder / "src" / "purepkg" / "__init__.py").write_text("def double(x):\n    return 2 * x\n")
    tests = "".join(
        f"def test_{i}():\n    assert purepkg.double({i}) == {2 * i}\n\n" for i in range(20)
    )
    (folder / "tests" / "test_pure.py").write_text("import purepkg\n\n\n" + tests)
    (folder / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [build-system]
            requires = ["setuptools>=64"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "purepkg"
            version = "1.0"
            dependencies = ["packaging"]

            [tool.condamatrix]
            python = {list(PYTHONS)!r}
            channels = [{str(channel)!r}]
            dependencies = ["pytest", "setuptools", "packaging"]
            pythonpath = []
            """
        )
    )
    (folder / ".gitignore").write_text("results*.json\n")
    subprocess.run(["git", "init", "-q", str(folder)], check=True)


def run_once(project: Path, cache: Path, mode: str) -> tuple[float, dict[str, Any]]:
    out = project / "results.json"
    argv = [
        sys.executable, "-m", "pytest", "--conda-matrix", "--conda-matrix-jobs", "1",
        "--conda-matrix-install", mode, "--conda-matrix-cache-dir", str(cache),
        "--conda-matrix-json", str(out),
        "-p", "no:cacheprovider", "-q",
    ]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=project, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{mode} run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return wall, json.loads(out.read_text())


def measure(quick: bool, root: Path) -> dict[str, object]:
    channel = build_local_channel(root / "channels" / "local", PYTHONS)
    cache = root / "install-cost-cache"
    repeats, calls = (2, 5) if quick else (7, 40)
    with tempfile.TemporaryDirectory(prefix="condamatrix-install-cost-") as tmp:
        project = Path(tmp) / "purepkg"
        make_project(project, channel.path)
        for mode in ("none", "wheel"):  # warm: envs built, wheel built
            run_once(project, cache, mode)
        walls: dict[str, list[float]] = {"none": [], "wheel": []}
        for _ in range(repeats):
            for mode in ("none", "wheel"):
                wall, data = run_once(project, cache, mode)
                walls[mode].append(wall)
        cells_data = {c["cell"]: c for c in data["cells"]}
        config = load_config(project / "pyproject.toml")
        per_cell: dict[str, dict[str, float]] = {}
        for cell in build_cells(config):
            env = cells_data[cell.id]
            prefix = Path(str(env["env_prefix"]))
            python = prefix / "bin" / "python"
            timings: dict[str, float] = {}
            for mode in ("none", "wheel"):
                settings = InstallSettings.from_config(config, mode, cache)
                seconds = []
                for i in range(calls):
                    run_dir = Path(tmp) / f"run-{mode}-{i}"
                    start = time.perf_counter()
                    prepare_install(settings, cell, prefix, python, str(env["env_key"]), run_dir)
                    seconds.append(time.perf_counter() - start)
                timings[mode] = statistics.median(seconds)
            per_cell[cell.id] = timings
    return {
        "walls": {mode: min(values) for mode, values in walls.items()},
        "per_cell": per_cell,
        "repeats": repeats,
        "calls": calls,
        "load": os.getloadavg(),
    }


def render(result: dict[str, object]) -> str:
    walls = result["walls"]
    per_cell = result["per_cell"]
    assert isinstance(walls, dict) and isinstance(per_cell, dict)
    lines = [
        START,
        '## Install modes: the warm cost of `install = "wheel"`',
        "",
        "An unchanged pure-Python project (setuptools backend, 20 tests) on 3 cells: the",
        "per-cell work `wheel` adds over `none` (read and hash the sources, find the cached",
        "wheel, unpack it into the run's overlay, check its Requires-Dist against the env), as",
        f"the median of {result['calls']} calls of `prepare_install` per cell; and whole warm",
        f"runs of `pytest --conda-matrix -j 1`, best of {result['repeats']}, interleaved.",
        "Command: `python -m benchmarks.install_cost`. Target: at most 50 ms per cell.",
        "",
        "| cell | `none` | `wheel` | added by `wheel` |",
        "|---|---:|---:|---:|",
    ]
    for cell, t in per_cell.items():
        added = (t["wheel"] - t["none"]) * 1000
        lines.append(
            f"| {cell} | {t['none'] * 1000:.1f} ms | {t['wheel'] * 1000:.1f} ms | {added:+.1f} ms |"
        )
    lines += [
        "",
        f"Whole warm run, 3 cells: `none` {walls['none']:.2f} s, `wheel` {walls['wheel']:.2f} s "
        f"({walls['wheel'] - walls['none']:+.2f} s); on a shared machine whole runs vary by",
        "more than the per-cell cost, which is the figure to read. Reading the sources once per",
        "run (`git ls-files` and hashing them) comes on top, once, not per cell.",
        END,
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.install_cost")
    parser.add_argument("--quick", action="store_true", help="a smoke run; the page is kept")
    parser.add_argument("--dir", type=Path, help="private folder (see python -m benchmarks)")
    args = parser.parse_args()
    result = measure(args.quick, bench_dir(args.dir))
    section = render(result)
    print(section)
    if not args.quick:
        write_section(section, INSTALL_COST)


if __name__ == "__main__":
    main()
