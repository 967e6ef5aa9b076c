"""The one command: ``python -m benchmarks [--quick]``.

Builds (once, cached) a local conda channel from this machine's interpreters, prepares the
projects, and measures everything of the chosen plan in one run. Everything it builds lives
in a private folder (default: the user cache folder's ``pytest-condamatrix/bench``).

The full plan writes ``benchmarks/results/latest.json`` and ``docs/benchmarks.md``; the quick
plan (a smoke run of about two minutes, for CI) writes ``quick.json`` and ``quick.md`` into the
benchmark folder, so that it leaves the clone alone.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import measure, projects, report
from .plan import MATRICES, PLANS, SECTIONS, WORKLOADS, Matrix, Plan
from .tools import BENCH_DIR_VAR, BenchError, Context, base_env, bench_dir

REPO = Path(__file__).resolve().parent.parent
FULL_JSON = REPO / "benchmarks" / "results" / "latest.json"
FULL_MARKDOWN = REPO / "docs" / "benchmarks.md"
#: the Python packages whose versions a results file records
VERSIONS = ("pytest-condamatrix", "py-rattler", "pytest", "nox", "tox", "virtualenv", "uv")
#: which tool needs which importable module
NEEDS = {"nox": "nox", "tox": "tox", "uv": "uv"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark pytest --conda-matrix against direct runs, nox and tox.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="the ~2 minute smoke plan (default: the full plan)"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=SECTIONS,
        metavar="SECTION",
        help=f"measure only these sections (repeatable): {', '.join(SECTIONS)}",
    )
    parser.add_argument("--repeats", type=int, help="timed repeats of every warm run")
    parser.add_argument(
        "--bench-dir",
        type=Path,
        help=f"private folder for channel, envs and projects (default: ${BENCH_DIR_VAR}, "
        "else <user cache>/pytest-condamatrix/bench)",
    )
    parser.add_argument(
        "--channel", type=Path, help="use this local conda channel instead of building one"
    )
    parser.add_argument("--results", type=Path, help="where to write the JSON results")
    parser.add_argument("--markdown", type=Path, help="where to write the Markdown page")
    parser.add_argument(
        "--from-results",
        type=Path,
        metavar="JSON",
        help="measure nothing: write the Markdown page again from a results file",
    )
    return parser


def choose_plan(args: argparse.Namespace) -> Plan:
    plan = PLANS["quick" if args.quick else "full"]
    if args.repeats:
        if args.repeats < 1:
            raise SystemExit("--repeats: give a positive number")
        plan = plan.with_repeats(args.repeats)
    return plan


def outputs(args: argparse.Namespace, plan: Plan, root: Path) -> tuple[Path, Path]:
    if plan.mode == "full" and not args.only:
        default_json, default_md = FULL_JSON, FULL_MARKDOWN
    else:
        default_json, default_md = (
            root / "results" / f"{plan.mode}.json",
            root / "results" / (f"{plan.mode}.md"),
        )
    return args.results or default_json, args.markdown or default_md


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.from_results:
        return render_again(args.from_results, args.markdown or FULL_MARKDOWN)
    plan = choose_plan(args)
    sections = tuple(args.only or SECTIONS)
    root = bench_dir(args.bench_dir)
    json_path, md_path = outputs(args, plan, root)
    started = time.time()
    command = "python -m benchmarks" + (" --quick" if args.quick else "")
    if args.only:
        command += "".join(f" --only {s}" for s in args.only)
    results = report.new_results(plan.mode, command, machine_facts())
    results["started"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))
    try:
        measure_all(plan, sections, root, args.channel, results)
    finally:
        results["duration_s"] = round(time.time() - started, 1)
        results["machine"]["load_average_end"] = _loadavg()
        report.finish(results)
        scrub = [(str(root), "<bench-dir>"), (str(Path.home()), "~")]
        report.write_json(results, json_path, scrub)
        report.write_markdown(results, md_path, scrub)
        say(f"results: {json_path}\nmarkdown: {md_path}")
    for target in results["targets"]:
        say(f"  {target['verdict']:<14} {target['name']}: {target['measured']} ({target['goal']})")
    return 1 if results["errors"] else 0


def render_again(results_path: Path, markdown: Path) -> int:
    results = json.loads(results_path.read_text(encoding="utf-8"))
    if not isinstance(results, dict) or results.get("schema") != report.SCHEMA:
        say(f"{results_path}: not a results file of these benchmarks")
        return 2
    report.write_markdown(report.finish(results), markdown)
    say(f"markdown: {markdown}")
    return 0


def measure_all(
    plan: Plan,
    sections: tuple[str, ...],
    root: Path,
    channel_dir: Path | None,
    results: dict[str, Any],
) -> None:
    from pytest_condamatrix.localchannel import build_local_channel

    root.mkdir(parents=True, exist_ok=True)
    say(f"benchmark folder: {root}")
    if channel_dir is None:
        say("local channel: building or checking (cached)")
        channel = build_local_channel(root / "channel", _all_pythons(plan), progress=say)
    else:
        channel = build_local_channel(channel_dir, _all_pythons(plan), progress=say)
    for minor in channel.missing:
        results["notes"].append(f"Python {minor} is not on this machine: its cells are left out")
    matrices = {
        name: _usable(m, channel.pythons, channel.packages, results) for name, m in MATRICES.items()
    }
    versions = {name.split("-")[1] for name in channel.packages if name.startswith("python-3")}
    results["machine"]["cell_pythons"] = ", ".join(
        sorted(versions, key=lambda v: tuple(int(x) for x in v.split(".") if x.isdigit()))
    )
    ctx = Context(
        root=root, channel=channel.path, cache=root / "cache", env=tool_env(channel.pythons)
    )
    prepared: dict[str, projects.Project] = {}

    def project(name: str) -> projects.Project:
        if name not in prepared:
            matrix_axes = _axes(matrices.values())
            prepared[name] = projects.prepare(
                WORKLOADS[name], root / "work", channel.path, *matrix_axes
            )
        return prepared[name]

    def attempt(section: str, label: str, fn: Any, *fn_args: Any) -> Any:
        say(f"[{section}] {label}")
        try:
            return fn(*fn_args, say=say)
        except (BenchError, OSError) as exc:
            results["errors"].append(f"{section} ({label}): {exc}")
            say(f"  error: {exc}")
            return None

    if "runs" in sections:
        for scenario in plan.scenarios:
            matrix = matrices[scenario.matrix]
            if matrix is None:
                continue
            tools = tuple(t for t in scenario.tools if _tool_available(t, results))
            scenario = replace(scenario, tools=tools)
            run = attempt(
                "runs",
                f"{scenario.workload} x {matrix.name}",
                measure.warm_runs,
                ctx,
                scenario,
                project(scenario.workload),
                matrix,
            )
            if run:
                results["runs"].append(run)
        results["memory"] = report.memory_figure(results, plan.memory_workload, plan.memory_matrix)
    generated = next((w for w in WORKLOADS.values() if w.generated), None)
    suite = generated.name if generated else "demo"
    if "decision" in sections and matrices.get(plan.decision_matrix):
        matrix = matrices[plan.decision_matrix]
        results["decision"] = attempt(
            "decision", f"{suite} x {plan.decision_matrix}", measure.decision,
            ctx, project(suite), matrix, plan.decision_rounds,
        )  # fmt: skip
    if "build" in sections and matrices.get(plan.build_matrix):
        results["builds"] = attempt(
            "build", f"{suite} x {plan.build_matrix}", measure.builds,
            ctx, project(suite), matrices[plan.build_matrix],
        )  # fmt: skip
    if "cold" in sections and matrices.get(plan.cold_matrix):
        cold_tools = ["condamatrix-j1"] + [
            t
            for t in plan.cold_tools
            if t.startswith("condamatrix-") or (t != "condamatrix" and _tool_available(t, results))
        ]
        results["cold"] = attempt(
            "cold", f"{plan.cold_workload} x {plan.cold_matrix}", measure.cold_runs,
            ctx, project(plan.cold_workload), matrices[plan.cold_matrix], cold_tools,
            plan.cold_repeats,
        )  # fmt: skip
    if "streaming" in sections and matrices.get("cpu3"):
        results["streaming"] = attempt(
            "streaming", plan.streaming_workload, measure.streaming,
            ctx, project(plan.streaming_workload), matrices["cpu3"], plan.streaming_repeats,
        )  # fmt: skip


def tool_env(pythons: tuple[str, ...]) -> dict[str, str]:
    """The environment of every measured command: the interpreters found on this machine
    (pyenv's versions folder or PATH) first on PATH, as nox and tox look for ``python3.X``."""
    from pytest_condamatrix.localchannel import find_interpreters

    env = base_env()
    folders = [str(exe.parent) for exe in find_interpreters(pythons).values()]
    env["PATH"] = os.pathsep.join(dict.fromkeys([*folders, env.get("PATH", "")]))
    env["UV_PYTHON_DOWNLOADS"] = "never"  # uv must use the same interpreters, not fetch its own
    return env


def _all_pythons(plan: Plan) -> tuple[str, ...]:
    del plan
    return tuple(dict.fromkeys(p for m in MATRICES.values() for p in m.pythons))


def _axes(matrices: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    usable = [m for m in matrices if m is not None]
    pythons = tuple(dict.fromkeys(p for m in usable for p in m.pythons))
    cuda = tuple(dict.fromkeys(c for m in usable for c in m.cuda))
    return pythons, cuda


def _usable(
    matrix: Matrix, pythons: tuple[str, ...], packages: tuple[str, ...], results: dict[str, Any]
) -> Matrix | None:
    """The matrix without Pythons the machine lacks; None when the channel cannot build it."""
    narrowed = matrix.only(pythons)
    if not narrowed.pythons:
        results["notes"].append(f"matrix {matrix.name}: none of its Pythons is on this machine")
        return None
    for variant in (c for c in matrix.cuda if c != "cpu"):
        if not any(p.startswith(f"cuda-version-{variant}-") for p in packages):
            results["notes"].append(
                f"matrix {matrix.name}: the local channel has no cuda-version {variant}; left out"
            )
            return None
    return narrowed


def _tool_available(tool: str, results: dict[str, Any]) -> bool:
    for key, module in NEEDS.items():
        if (tool == key or tool.startswith(f"{key}-") or tool.endswith(f"-{key}")) and (
            importlib.util.find_spec(module) is None
        ):
            note = f"{tool}: left out, `{module}` is not installed (pip install -e '.[bench]')"
            if note not in results["notes"]:
                results["notes"].append(note)
            return False
    return True


def machine_facts() -> dict[str, Any]:
    versions = {}
    for name in VERSIONS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "cpus": os.cpu_count() or 0,
        "system": f"{platform.system()} {platform.machine()}",
        "outer_python": platform.python_version(),
        "load_average_start": _loadavg(),
        "versions": versions,
    }


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
