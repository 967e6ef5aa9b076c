"""What carrying pytest's own reports costs: the 10k-test suite with ``-j 1`` against pytest
run directly in each env, and the worker's CPU per test, short and full.

Run: ``python -m benchmarks.reports_cost`` (``--quick``: the 1k-test suite, one repeat). It
measures with the main benchmark's pieces (its projects, tools and timings) and writes its
own section of docs/benchmarks.md (kept when that page is regenerated) and
``benchmarks/results/reports.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from . import report
from .plan import Plan, Scenario
from .run import machine_facts, measure_all
from .sections import REPORTS_COST, write_section
from .tools import bench_dir

START, END = REPORTS_COST
RESULTS = Path(__file__).parent / "results" / "reports.json"


#: pairs of (direct, -j 1) runs: on a shared machine one pair can be 20% off either way, so
#: the verdict is the median of the pairs' ratios
RUN_REPEATS = 7


def plan(quick: bool, run_repeats: int = RUN_REPEATS) -> Plan:
    workload, repeats = ("suite-1k", 1) if quick else ("suite-10k", 3)
    run_repeats = 1 if quick else run_repeats
    return Plan(
        mode="reports",
        scenarios=(Scenario(workload, "cpu3", ("direct", "condamatrix-j1"), run_repeats),),
        decision_matrix="cpu3",
        decision_rounds=1,
        build_matrix="cpu3",
        cold_workload="demo",
        cold_matrix="cpu3",
        cold_tools=("condamatrix",),
        cold_repeats=1,
        streaming_workload=workload,
        streaming_repeats=repeats,
        memory_workload=workload,
        memory_matrix="cpu3",
    )


def section(results: dict[str, Any]) -> str:
    """The page's section: the figures and the command that measured them."""
    lines = [
        START,
        "## Reports as pytest's own: what they cost",
        "",
        f"Measured by `{results['command']}` on {results.get('started', '?')}"
        f" ({results['machine'].get('cpus', '?')} CPUs). The cells stream pytest's own"
        " reports (serialised with `pytest_report_to_serializable`, classified by the cell's"
        " `pytest_report_teststatus`). Reports that passed are sent short, and passed"
        " setups and teardowns not at all, unless a plugin of the outer run listens"
        " (`--report-log`, a conftest's hook): then every report goes in full. The worker's"
        " cost is what it adds to pytest's own work per test (setup, call and teardown"
        " reports; with the worker minus without it). This section supersedes the streaming"
        " rows and the suite-10k `-j 1` rows of the full run above, measured before these"
        " changes (with a JUnit fallback file the runner no longer asks for). With `-j 1`,"
        " the next cell goes on as soon as the previous one's pytest is over (session,"
        " plugins, atexit handlers), while that interpreter frees its objects and exits:"
        " about a second per 10k-test cell that direct runs, one after the other, spend"
        " waiting.",
        "",
        "| figure | value | target |",
        "|---|---|---|",
    ]
    for run in results["runs"]:
        best = report.ratio(run, "condamatrix-j1")
        paired = report.paired_ratio(run, "condamatrix-j1")
        if paired is not None:
            lines.append(
                f"| {run['workload']}, {run['cells']} cells, `-j 1` / direct pytest per env"
                f" (median of {run['repeats']} pairs run in turn; best of each:"
                f" {_fmt(best)}) | {paired:.2f}x | <= 1.0x |"
            )
    stream = results.get("streaming") or {}
    micro = stream.get("micro") or {}
    for mode, key in (("short", "worker_cpu_us"), ("full", "worker_all_cpu_us")):
        for cell, value in (micro.get(key) or {}).items():
            python = (micro.get("worker_python") or {}).get(cell, "")
            goal = "<= 25 us" if mode == "short" else "(only with a listening plugin)"
            lines.append(
                f"| worker CPU per test, {mode} reports, {cell} (Python {python}) |"
                f" {value:.1f} us | {goal} |"
            )
    if micro.get("outer_cpu_us") is not None:
        lines.append(f"| outer process CPU per test | {micro['outer_cpu_us']:.1f} us | |")
    for name, figures in (stream.get("variants") or {}).items():
        lines.append(
            f"| {stream.get('workload')} in one env, `{name}`: wall / CPU |"
            f" {figures['wall']:.2f} s / {figures['cpu']:.2f} s | |"
        )
    lines += [*(f"\n{note}" for note in results.get("notes") or []), "", END, ""]
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reports_cost")
    parser.add_argument("--quick", action="store_true", help="the 1k suite, one repeat")
    parser.add_argument(
        "--repeats",
        type=int,
        default=RUN_REPEATS,
        help=f"pairs of direct and -j 1 runs of the 10k suite (default {RUN_REPEATS})",
    )
    parser.add_argument("--dir", type=Path, help="private folder (see python -m benchmarks)")
    parser.add_argument("--channel", type=Path, help="a local channel already built to use")
    parser.add_argument(
        "--from-results", action="store_true", help=f"write the section again from {RESULTS}"
    )
    args = parser.parse_args()
    if args.from_results:
        write_section(section(json.loads(RESULTS.read_text(encoding="utf-8"))), REPORTS_COST)
        return
    root = bench_dir(args.dir)
    command = "python -m benchmarks.reports_cost" + (" --quick" if args.quick else "")
    results = report.new_results("reports", command, machine_facts())
    results["started"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    measure_all(plan(args.quick, args.repeats), ("runs", "streaming"), root, args.channel, results)
    scrub = [(str(root), "<bench-dir>"), (str(Path.home()), "~")]
    if args.quick:
        print(section(results))
        return
    report.write_json(results, RESULTS, scrub)
    write_section(section(results), REPORTS_COST)
    print(json.dumps(results["runs"], indent=1)[:2000])


if __name__ == "__main__":
    main()
