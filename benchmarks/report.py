"""Targets, the results file (JSON) and the Markdown page (docs/benchmarks.md)."""

from __future__ import annotations

import itertools
import json
import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .sections import kept_sections

SCHEMA = "pytest-condamatrix/benchmarks"
SCHEMA_VERSION = 1

TOOL_LABELS = {
    "direct": "direct: `<prefix>/bin/python -m pytest` per env, sequential",
    "condamatrix-j1": "`pytest --conda-matrix --conda-matrix-jobs 1`",
    "condamatrix-j2": "`pytest --conda-matrix --conda-matrix-jobs 2`",
    "condamatrix-j3": "`pytest --conda-matrix --conda-matrix-jobs 3`",
    "nox": "`nox -R`, virtualenv backend",
    "nox-uv": "`nox -R`, uv backend",
    "nox-rattler": "`nox -R`, rattler backend (same local channel)",
    "tox": "`tox run` (virtualenv)",
    "tox-p2": "`tox run-parallel -p 2`",
    "outer-alone": "the outer process alone: `pytest --conda-matrix --conda-matrix-list`",
}
COLD_LABELS = {
    "condamatrix-j1": "`pytest --conda-matrix -j 1`, empty env and package caches",
    "condamatrix-j2": "`pytest --conda-matrix -j 2`, empty env and package caches",
    "condamatrix-pkgs": "`pytest --conda-matrix -j 1`, no envs, package cache warm",
    "nox": "nox, virtualenv backend (pip's cache warm)",
    "nox-uv": "nox, uv backend (uv's cache warm)",
    "nox-rattler": "nox, rattler backend, empty package cache",
    "tox": "tox (pip's cache warm)",
}
# Targets of issue #8.
WARM_J1_MAX = 1.05
WARM_J2_MAX = 0.65
DECISION_MAX_MS = 20.0
BUILD_9_MAX_S = 2.0
COLD_MAX_RATIO = 0.5
STREAMING_MAX_US = 50.0
MEMORY_MAX_MB = 100.0


@dataclass(frozen=True)
class Target:
    name: str
    goal: str
    measured: str
    met: bool | None  # None: not measured by this run

    @property
    def verdict(self) -> str:
        return {True: "met", False: "**not met**", None: "not measured"}[self.met]


def new_results(mode: str, command: str, machine: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "version": SCHEMA_VERSION,
        "mode": mode,
        "command": command,
        "machine": machine,
        "runs": [],
        "decision": None,
        "builds": None,
        "cold": None,
        "streaming": None,
        "memory": None,
        "notes": [],
        "errors": [],
    }


def tool_row(run: dict[str, Any], tool: str) -> dict[str, Any] | None:
    for row in run.get("tools", []):
        if row.get("tool") == tool and "wall" in row:
            return dict(row)
    return None


def ratio(run: dict[str, Any], tool: str, base: str = "direct") -> float | None:
    row, ref = tool_row(run, tool), tool_row(run, base)
    if row is None or ref is None or not ref["wall"]:
        return None
    return float(row["wall"]) / float(ref["wall"])


def paired_ratio(run: dict[str, Any], tool: str, base: str = "direct") -> float | None:
    """The median over repeats of tool / base, each pair timed in the same round: a check
    on the best-of ratio that drifts of a shared machine's speed cannot skew."""
    row = next((r for r in run.get("tools", []) if r.get("tool") == tool), None)
    ref = next((r for r in run.get("tools", []) if r.get("tool") == base), None)
    if not row or not ref or not row.get("walls") or not ref.get("walls"):
        return None
    pairs = [a / b for a, b in zip(row["walls"], ref["walls"], strict=False) if b]
    return statistics.median(pairs) if pairs else None


def targets(results: dict[str, Any]) -> list[Target]:
    out: list[Target] = []
    for run in results["runs"]:
        if run["matrix"] != "cpu3":
            continue
        where = f"{run['workload']}, {run['cells']} cells"
        for tool, limit, name in (
            ("condamatrix-j1", WARM_J1_MAX, "warm run, -j 1"),
            ("condamatrix-j2", WARM_J2_MAX, "warm run, -j 2"),
        ):
            r = ratio(run, tool)
            out.append(
                Target(
                    f"{name} ({where})",
                    f"≤ {limit:.2f}x direct",
                    "-" if r is None else f"{r:.2f}x",
                    None if r is None else r <= limit,
                )
            )
    decision = results.get("decision")
    median = decision["median_ms"] if decision else None
    out.append(
        Target(
            "cache-hit decision per cell",
            f"≤ {DECISION_MAX_MS:g} ms",
            "-" if median is None else f"{median:.1f} ms (median)",
            None if median is None else median <= DECISION_MAX_MS,
        )
    )
    out.append(_build_target(results.get("builds")))
    out.extend(_cold_targets(results.get("cold")))
    streaming = results.get("streaming")
    us = streaming["micro"]["total_cpu_us"] if streaming and streaming.get("micro") else None
    out.append(
        Target(
            "result streaming, per test (worker + outer process)",
            f"≤ {STREAMING_MAX_US:g} µs",
            "-" if us is None else f"{us:.1f} µs CPU",
            None if us is None else us <= STREAMING_MAX_US,
        )
    )
    memory = results.get("memory")
    mb = memory.get("outer_rss_mb") if memory else None
    where = f"{memory['workload']}, {memory['cells']} cells" if memory else "1,000 tests x 9 cells"
    out.append(
        Target(
            f"outer process peak memory ({where})",
            f"≤ {MEMORY_MAX_MB:g} MB",
            "-" if mb is None else f"{mb:.0f} MB",
            None if mb is None else mb <= MEMORY_MAX_MB,
        )
    )
    return out


def _build_target(builds: dict[str, Any] | None) -> Target:
    if not builds:
        return Target(
            "9 cells built from a warm package cache", f"≤ {BUILD_9_MAX_S:g} s", "-", None
        )
    cells = int(builds["cells"])
    total = float(builds["warm_package_cache"]["total_s"])
    scaled = total * 9 / cells
    note = "" if cells == 9 else f" ({total:.2f} s for {cells} cells, scaled to 9)"
    return Target(
        "9 cells built from a warm package cache",
        f"≤ {BUILD_9_MAX_S:g} s in all",
        f"{scaled:.2f} s{note}",
        scaled <= BUILD_9_MAX_S,
    )


def _cold_targets(cold: dict[str, Any] | None) -> list[Target]:
    name = "cold run, empty package cache vs nox cold"
    goal = f"≤ {COLD_MAX_RATIO:g}x nox"
    rows = cold["tools"] if cold else {}
    ours = rows.get("condamatrix-j1", {}).get("wall")
    out = []
    for tool, label in (("nox", "virtualenv"), ("nox-uv", "uv"), ("nox-rattler", "rattler")):
        theirs = rows.get(tool, {}).get("wall")
        if ours is None or theirs is None:
            if tool == "nox":
                out.append(Target(f"{name} ({label})", goal, "-", None))
            continue
        r = float(ours) / float(theirs)
        out.append(Target(f"{name} ({label})", goal, f"{r:.2f}x", r <= COLD_MAX_RATIO))
    # like for like: uv's cache is warm in its cold runs; so is our package cache here
    warm_pkgs, uv = rows.get("condamatrix-pkgs", {}).get("wall"), rows.get("nox-uv", {}).get("wall")
    if warm_pkgs is not None and uv is not None:
        r = float(warm_pkgs) / float(uv)
        out.append(
            Target(
                "cold run, package cache warm vs nox cold (uv, its cache warm)",
                goal,
                f"{r:.2f}x",
                r <= COLD_MAX_RATIO,
            )
        )
    return out


def memory_figure(results: dict[str, Any], workload: str, matrix: str) -> dict[str, Any] | None:
    for run in results["runs"]:
        if run["workload"] == workload and run["matrix"] == matrix:
            values = [
                row["outer_rss_mb_max"]
                for row in run["tools"]
                if row["tool"].startswith("condamatrix") and "outer_rss_mb_max" in row
            ]
            if values:
                return {
                    "workload": workload,
                    "matrix": matrix,
                    "cells": run["cells"],
                    "outer_rss_mb": max(values),
                }
    return None


def finish(results: dict[str, Any]) -> dict[str, Any]:
    results["targets"] = [asdict(t) | {"verdict": t.verdict} for t in targets(results)]
    return results


def write_json(results: dict[str, Any], path: Path, scrub: Iterable[tuple[str, str]] = ()) -> None:
    text = json.dumps(results, indent=1, sort_keys=False) + "\n"
    _write(path, _scrub(text, scrub))


def write_markdown(
    results: dict[str, Any], path: Path, scrub: Iterable[tuple[str, str]] = ()
) -> None:
    _write(path, _scrub(render_markdown(results), scrub) + kept_sections(path))


def _scrub(text: str, pairs: Iterable[tuple[str, str]]) -> str:
    """Replace machine-specific paths (the benchmark folder, the home folder)."""
    for old, new in sorted(pairs, key=lambda p: -len(p[0])):
        if old:
            text = text.replace(old, new)
    return text


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


# --- Markdown ------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def best_split(times: list[float], slots: int) -> float:
    """The shortest time in which ``slots`` workers can run jobs of these lengths (each job
    on one worker, whole): the least, over every assignment, of the busiest worker's sum."""
    best = sum(times)
    for assignment in itertools.product(range(slots), repeat=len(times)):
        loads = [0.0] * slots
        for time_, slot in zip(times, assignment, strict=True):
            loads[slot] += time_
        best = min(best, max(loads))
    return best


def bounds(run: dict[str, Any]) -> dict[str, float] | None:
    """What no runner can beat on this workload, as ratios to the direct time; None when the
    run lacks the figures (per-cell direct times, the outer process alone)."""
    direct, alone = tool_row(run, "direct"), tool_row(run, "outer-alone")
    if direct is None or alone is None or not direct.get("cell_walls"):
        return None
    cells = [float(t) for t in direct["cell_walls"]]
    total = float(direct["wall"])
    return {
        "outer_alone_s": float(alone["wall"]),
        # the cells one after the other, after the outer process's own start-up and work
        "j1_serial": (total + float(alone["wall"])) / total,
        # two at a time, each cell as fast as direct, no outer process at all
        "j2_split": best_split(cells, 2) / sum(cells),
        # the same, after the outer process's start-up and work
        "j2_serial": (best_split(cells, 2) / sum(cells) * total + float(alone["wall"])) / total,
    }


def _bounds_section(results: dict[str, Any]) -> list[str]:
    rows = []
    for run in results["runs"]:
        b = bounds(run)
        if b is None or len(run.get("tools", [])) == 0:
            continue
        r1, r2 = ratio(run, "condamatrix-j1"), ratio(run, "condamatrix-j2")
        rows.append(
            [
                f"{run['workload']}, {run['cells']} cells ({run['matrix']})",
                _s(b["outer_alone_s"]),
                f"{b['j1_serial']:.2f}x",
                "-" if r1 is None else f"{r1:.2f}x",
                f"{b['j2_split']:.2f}x",
                f"{b['j2_serial']:.2f}x",
                "-" if r2 is None else f"{r2:.2f}x",
            ]
        )
    if not rows:
        return []
    return [
        "## What bounds the warm ratios",
        "",
        "Two figures measured in the same run say how far the warm-run targets can be met.",
        "",
        "- *Outer process alone* is `pytest --conda-matrix --conda-matrix-list`: a Python",
        "  process that imports pytest, this plugin, rattler and rich and reads the",
        "  configuration, then stops. A runner that started the cells only once it was up",
        "  could not beat *direct + outer alone* (column *-j 1 floor, serial*). The runner",
        "  beats it by starting the next cell's interpreter while the current one tests: the",
        "  cells' own start-ups then overlap each other, and only the first one follows the",
        "  outer process's start-up.",
        "- *-j 2 floor, no outer* is the best split of the cells' direct times over two",
        "  workers, with no outer process at all: three cells of similar length cannot end",
        "  in two slots in less than about two thirds of their sum, which is at or above the",
        "  ≤ 0.65x target before any cost of the runner; *serial* adds the outer process.",
        "",
        *_table(
            [
                "workload",
                "outer alone (s)",
                "-j 1 floor, serial",
                "-j 1 measured",
                "-j 2 floor, no outer",
                "-j 2 floor, serial",
                "-j 2 measured",
            ],
            rows,
        ),
    ]


def _s(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{float(value):.{digits}f}"


def render_markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    lines = [
        "# Benchmarks",
        "",
        "<!-- Generated by `python -m benchmarks` (benchmarks/report.py): do not edit by hand. -->",
        "",
        "`pytest --conda-matrix` against running pytest directly in each env, nox and tox, on",
        "the same projects, Pythons and machine, in the same run. Absolute times depend on the",
        "machine; read the ratios. Each figure is the best of the repeats (interleaved, so a",
        "busy moment of a shared machine hits every tool alike).",
        "",
        f"Command: `{results['command']}` ({results['mode']} mode), "
        f"{results.get('started', '')}, {_s(results.get('duration_s'), 0)} s in all.",
        "",
        _machine_line(machine),
        "",
    ]
    versions = machine.get("versions", {})
    if versions:
        lines += ["Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".", ""]
    lines += HOW_TO_RUN
    lines += _summary_section(results)
    lines += ["## Targets", ""]
    lines += _table(
        ["what", "target", "measured", "verdict"],
        [[t["name"], t["goal"], t["measured"], t["verdict"]] for t in results.get("targets", [])],
    )
    lines += _bounds_section(results)
    lines += _runs_section(results["runs"])
    lines += _growth_section(results["runs"])
    lines += _decision_section(results.get("decision"))
    lines += _builds_section(results.get("builds"))
    lines += _cold_section(results.get("cold"))
    lines += _streaming_section(results.get("streaming"))
    if results.get("notes"):
        lines += ["## Notes", "", *[f"- {note}" for note in results["notes"]], ""]
    if results.get("errors"):
        lines += ["## Errors", "", *[f"- {error}" for error in results["errors"]], ""]
    return "\n".join(lines).rstrip() + "\n"


def _machine_line(machine: dict[str, Any]) -> str:
    text = f"Machine: {machine.get('cpus', '?')} CPUs ({machine.get('system', '?')})"
    text += f", outer Python {machine.get('outer_python', '?')}"
    if machine.get("cell_pythons"):
        text += f", cell Pythons {machine['cell_pythons']}"
    if machine.get("load_average_start"):
        text += f"; load average {machine['load_average_start']} at the start"
        if machine.get("load_average_end"):
            text += f", {machine['load_average_end']} at the end"
    return text + "."


HOW_TO_RUN = [
    "## Running them",
    "",
    "```bash",
    "pip install -e '.[bench]'       # nox, tox and uv, the tools compared",
    "python -m benchmarks            # full: this page + benchmarks/results/latest.json",
    "python -m benchmarks --quick    # a smoke run of a minute or two (results: bench folder)",
    "```",
    "",
    "Everything is built in a private folder (`$CONDAMATRIX_BENCH_DIR`, default",
    "`<user cache>/pytest-condamatrix/bench`): a local conda channel made from this machine's",
    "CPython 3.9, 3.11 and 3.12 (pyenv's versions folder or `PATH`), the envs, the projects,",
    "and nox's and tox's envs. Every tool runs the same project with the same Pythons and the",
    "same pytest arguments; nox and tox make virtualenvs from those interpreters (nox's",
    "rattler backend makes conda envs from the same local channel). The demo's GPU tests are",
    'deselected (`-m "not gpu"`) where no worker plugin skips them.',
    "",
]


def _summary_section(results: dict[str, Any]) -> list[str]:
    """A few sentences drawn from the numbers."""
    out: list[str] = []
    small = [r for r in results["runs"] if r["matrix"] == "cpu3"]
    for run in small:
        direct, ours = tool_row(run, "direct"), tool_row(run, "condamatrix-j1")
        r1, r2 = ratio(run, "condamatrix-j1"), ratio(run, "condamatrix-j2")
        if direct is None or ours is None or r1 is None:
            continue
        extra = float(ours["wall"]) - float(direct["wall"])
        text = (
            f"{run['workload']} ({run['tests']} test results over {run['cells']} cells): "
            f"`-j 1` takes {r1:.2f}x the direct time ({extra:+.2f} s)"
        )
        if r2 is not None:
            text += f", `-j 2` {r2:.2f}x"
        r3 = ratio(run, "condamatrix-j3")
        if r3 is not None:
            text += f", `-j 3` {r3:.2f}x"
        out.append(text + ".")
    cold = results.get("cold")
    if cold:
        rows = cold["tools"]
        ours_cold = rows.get("condamatrix-j1", {}).get("wall")
        others = [
            f"{float(row['wall']) / float(ours_cold):.1f}x as fast as {_short(COLD_LABELS[t])}"
            for t, row in rows.items()
            if ours_cold and t in COLD_LABELS and not t.startswith("condamatrix") and "wall" in row
        ]
        if others:
            out.append(
                f"From nothing ({cold['workload']}, {cold['cells']} cells, tests included), "
                "`pytest --conda-matrix -j 1` is " + "; ".join(others) + "."
            )
    if not out:
        return []
    return [
        "## Summary",
        "",
        *[f"- {line}" for line in out],
        "- A run of `pytest --conda-matrix` pays a fixed cost that running pytest in each env",
        "  does not: one more Python process importing pytest, this plugin, rattler and rich,",
        "  the cache checks and the final report (see *How the cost grows*). It dominates a",
        "  suite of a few tests and fades as suites grow.",
        "- It wins time back by starting the next cell's interpreter while the current cell",
        "  tests: the more cells, the more start-ups overlap, so that with 9 cells even `-j 1`",
        "  can end before pytest run directly in each env one after the other (see *What",
        "  bounds the warm ratios*).",
        "",
    ]


def _short(label: str) -> str:
    return label.split(" (")[0]


def _runs_section(runs: list[dict[str, Any]]) -> list[str]:
    if not runs:
        return []
    lines = ["## Warm runs, side by side", ""]
    lines += [
        "Envs and venvs exist already. *x direct* is the best time divided by the best time",
        "of running pytest directly in each env one after the other (the floor for a",
        "sequential run); *median of pairs* divides the times of the same round instead.",
        "CPU is user + system time of every process of the run.",
        "",
    ]
    for run in runs:
        lines += [
            f"### {run['workload']}: {run['cells']} cells ({run['matrix']}), "
            f"{run['tests']} test results in all, best of {run['repeats']}",
            "",
        ]
        if run.get("load_average"):
            lines += [f"1-minute load average before / after: {run['load_average']}.", ""]
        rows = []
        for row in run["tools"]:
            tool = row["tool"]
            label = TOOL_LABELS.get(tool, tool)
            if "wall" not in row:
                reason = (row.get("error") or "not measured").splitlines()[0]
                rows.append([label, "-", "-", "-", "-", f"not measured: {reason[:120]}"])
                continue
            r, paired = ratio(run, tool), paired_ratio(run, tool)
            rss = row.get("outer_rss_mb_max")
            rows.append(
                [
                    label,
                    _s(row["wall"]),
                    "-" if r is None else f"{r:.2f}x",
                    "-" if paired is None else f"{paired:.2f}x",
                    _s(row["cpu"]),
                    "" if rss is None else f"outer process: {rss:.0f} MB peak RSS",
                ]
            )
        header = ["tool", "time (s)", "x direct", "x direct, median of pairs", "CPU (s)", ""]
        lines += _table(header, rows)
    return lines


def _growth_section(runs: list[dict[str, Any]]) -> list[str]:
    rows = []
    for run in runs:
        direct, ours = tool_row(run, "direct"), tool_row(run, "condamatrix-j1")
        if direct is None or ours is None:
            continue
        overhead = float(ours["wall"]) - float(direct["wall"])
        rows.append(
            [
                run["workload"],
                str(run["cells"]),
                str(run["tests"]),
                _s(direct["wall"]),
                _s(ours["wall"]),
                _s(overhead),
                f"{overhead / run['cells'] * 1000:.0f}",
                _s(ours.get("outer_cpu_min")),
                _s(ours.get("outer_rss_mb_max"), 0),
            ]
        )
    if not rows:
        return []
    return [
        "## How the cost grows with cells and tests",
        "",
        "Overhead = `pytest --conda-matrix -j 1` minus direct. The outer process's CPU time and",
        "peak memory (its own, not the cells') show what each cell and each streamed test adds.",
        "",
        *_table(
            [
                "workload",
                "cells",
                "test results",
                "direct (s)",
                "-j 1 (s)",
                "overhead (s)",
                "per cell (ms)",
                "outer CPU (s)",
                "outer RSS (MB)",
            ],
            rows,
        ),
    ]


def _decision_section(decision: dict[str, Any] | None) -> list[str]:
    if not decision:
        return []
    return [
        "## Cache-hit decision",
        "",
        "Per cell, in process, on a warm cache: the env spec and its key (hashing the local",
        "channel's index), the env's read lock, its stamp and the check that every file its",
        "packages installed is still there. The first cell of a run also detects the host's",
        "virtual packages once.",
        "",
        *_table(
            [
                "cells",
                "rounds",
                "median (ms)",
                "p90 (ms)",
                "min (ms)",
                "CPU median (ms)",
                "host detection once (ms)",
            ],
            [
                [
                    str(decision["cells"]),
                    str(decision["rounds"]),
                    _s(decision["median_ms"], 1),
                    _s(decision["p90_ms"], 1),
                    _s(decision["min_ms"], 1),
                    _s(decision["cpu_median_ms"], 1),
                    _s(decision["detect_ms"], 1),
                ]
            ],
        ),
    ]


def _builds_section(builds: dict[str, Any] | None) -> list[str]:
    if not builds:
        return []
    warm, cold = builds["warm_package_cache"], builds["empty_package_cache"]
    rows = [
        [cell, _s(warm["per_cell_s"].get(cell)), _s(cold["per_cell_s"].get(cell))]
        for cell in warm["per_cell_s"]
    ]
    rows.append(["**all, one after the other**", _s(warm["total_s"]), _s(cold["total_s"])])
    if "warm_package_cache_2_jobs_s" in builds:
        rows.append(
            ["**all, 2 at a time** (as `-j 2`)", _s(builds["warm_package_cache_2_jobs_s"]), ""]
        )
    return [
        "## Env builds",
        "",
        f"Every cell of {builds['matrix']} ({builds['workload']} specs) built into a new env "
        "cache, one after the other, in process (solve + install + stamp + publish).",
        "",
        *_table(["cell", "warm package cache (s)", "empty package cache (s)"], rows),
    ]


def _cold_section(cold: dict[str, Any] | None) -> list[str]:
    if not cold:
        return []
    rows_in = cold["tools"]
    ours = rows_in.get("condamatrix-j1", {}).get("wall")
    rows = []
    for tool, row in rows_in.items():
        label = COLD_LABELS.get(tool, tool)
        if "wall" not in row:
            rows.append([label, "-", "-", f"failed: {row.get('error', '').splitlines()[0][:120]}"])
            continue
        rel = "-" if ours is None else f"{float(ours) / float(row['wall']):.2f}x"
        rows.append([label, _s(row["wall"]), rel, ""])
    return [
        "## Cold runs",
        "",
        f"{cold['workload']}, {cold['cells']} cells, from no envs at all, tests included, "
        f"best of {cold.get('repeats', 1)}. *condamatrix ÷ tool* below 1 means "
        "pytest-condamatrix is faster.",
        "",
        *_table(["tool", "time (s)", "condamatrix -j 1 ÷ tool", ""], rows),
        "From an empty package cache every env's Python is unpacked and written to disk",
        "(thousands of files per env): that work is the same for nox's rattler backend,",
        "is mostly the kernel's (system time) and is what both cold conda runs spend most",
        "of their time on; pytest-condamatrix gains by building the next env while the",
        "previous cell tests. nox's uv and virtualenv backends link or copy the host's",
        "interpreter and install wheels from a warm cache instead: the run to hold against",
        "them is the one with a warm package cache (no envs), where envs are hard-linked.",
        "",
    ]


def _streaming_section(streaming: dict[str, Any] | None) -> list[str]:
    if not streaming:
        return []
    lines = ["## Result streaming", ""]
    micro = streaming.get("micro")
    if micro:
        rows = [
            [f"worker plugin, in the {cell} env (Python {micro['worker_python'][cell]})", _s(us, 1)]
            for cell, us in micro["worker_cpu_us"].items()
        ]
        rows.append(
            ["outer process: read, parse and record the stream", _s(micro["outer_cpu_us"], 1)]
        )
        rows.append(["**total** (slowest worker + outer)", _s(micro["total_cpu_us"], 1)])
        lines += [
            f"Each side of the stream timed alone, {micro['tests']} passing tests, best of 3:",
            "the worker's hooks called through pytest's plugin manager in the cell's own",
            "interpreter (setup, call and teardown reports), then the runner taking in the",
            "stream they wrote.",
            "",
            *_table(["side", "CPU per test (µs)"], rows),
        ]
    variants = streaming["variants"]
    plain = variants["plain"]
    rows = []
    for name, label in (
        ("plain", "`python -m pytest`"),
        ("worker", "+ `-p _condamatrix_worker` (results streamed as JSON lines)"),
        ("junit", "+ `--junitxml` only"),
        ("cell", "as the runner starts a cell: worker, fallback `--junitxml`, own cache dir"),
    ):
        v = variants[name]
        per_test = (v["cpu"] - plain["cpu"]) / streaming["tests"] * 1e6
        rows.append(
            [label, _s(v["wall"]), _s(v["cpu"]), "-" if name == "plain" else f"{per_test:.1f}"]
        )
    return [
        *lines,
        f"The check on whole runs: {streaming['workload']} ({streaming['tests']} tests) in the "
        f"{streaming['cell']} env, best of {streaming['repeats']}. A few percent of a run is",
        "within the noise of a shared machine: these differences can even come out negative.",
        "",
        *_table(["run", "time (s)", "CPU (s)", "added CPU per test (µs)"], rows),
    ]
