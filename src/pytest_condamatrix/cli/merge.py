"""``condamatrix merge``: per-job results files into one report (the checks and the merge
itself: :mod:`..ci.merge`, imported when the command runs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .options import Subcommands, add_command


def add_parsers(sub: Subcommands) -> None:
    parser = add_command(
        sub,
        "merge",
        run,
        help="combine the results files of several jobs into one report",
        description="Combine results files written by `pytest --conda-matrix "
        "--conda-matrix-json` (one per CI job, e.g. one per cell) into the report of one "
        "run: the terminal table, and the --json, --junit and --markdown files asked for. "
        "The Markdown summary is appended to $GITHUB_STEP_SUMMARY when that is set. Exits "
        "with the code of the whole matrix (0 only if every cell passed).",
    )
    parser.add_argument("files", nargs="*", type=Path, metavar="FILE", help="results files")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the merged results")
    parser.add_argument("--junit", type=Path, metavar="OUT", help="write one JUnit XML file")
    parser.add_argument("--markdown", type=Path, metavar="OUT", help="write a Markdown summary")
    parser.add_argument(
        "--expect",
        action="append",
        default=[],
        metavar="CELL",
        help="a cell that must have results (repeatable): a missing one is reported as an "
        "error instead of silently left out",
    )


def run(args: argparse.Namespace) -> int:
    from ..ci.merge import load_shard, merge_shards
    from ..report.terminal import make_console, render_run
    from ..run.report_files import write_reports
    from ..run.session import SessionOptions

    shards = [load_shard(path) for path in args.files]
    merged = merge_shards(shards, args.expect)
    options = SessionOptions(
        cwd=Path.cwd(), json_path=args.json, junit_path=args.junit, markdown_path=args.markdown
    )
    notes = [f"merged {len(shards)} results files", *write_reports(merged, options)]
    render_run(make_console(), merged, notes=notes)
    return int(merged.exit_code)
