"""``condamatrix init-ci``: write a GitHub Actions workflow for the matrix into a project
(templates and their rendering: :mod:`..ci.init_ci`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..ci.init_ci import (
    DEFAULT_INSTALL,
    DEFAULT_TOOL_PYTHON,
    REUSABLE,
    WORKFLOW,
    render_template,
    write_workflow,
)
from ..errors import ExitCode
from .options import Subcommands, add_command


def add_parsers(sub: Subcommands) -> None:
    parser = add_command(
        sub,
        "init-ci",
        run,
        help="write a GitHub Actions workflow that runs the matrix, one job per cell",
        description="Write a GitHub Actions workflow into this project: a job lists the cells "
        "(`condamatrix gh-matrix`), one job per cell runs `pytest --conda-matrix` with its "
        "env cached, and a last job merges the results into one report (`condamatrix "
        "merge`). With --reusable, write a reusable workflow (on: workflow_call) instead.",
    )
    parser.add_argument(
        "--path",
        type=Path,
        help=f"where to write it (default: {WORKFLOW.default_path}, or "
        f"{REUSABLE.default_path} with --reusable)",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing file")
    parser.add_argument(
        "--reusable", action="store_true", help="write the reusable workflow (workflow_call)"
    )
    parser.add_argument(
        "--python",
        default=DEFAULT_TOOL_PYTHON,
        metavar="X.Y",
        help=f"Python that runs pytest-condamatrix in CI (default: {DEFAULT_TOOL_PYTHON})",
    )
    parser.add_argument(
        "--install",
        default=DEFAULT_INSTALL,
        metavar="REQUIREMENT",
        help=f"what the jobs `pip install` (default: {DEFAULT_INSTALL}); pin it to keep the "
        "jobs of one run on one version",
    )
    parser.add_argument(
        "--pin-sha",
        action="store_true",
        help="name each action by the commit of its release (`@<sha>  # v7.0.1`) instead of "
        "its major version (`@v7`)",
    )


def run(args: argparse.Namespace) -> int:
    from ..config import find_config_file

    template = REUSABLE if args.reusable else WORKFLOW
    text = render_template(template, python=args.python, install=args.install, pin_sha=args.pin_sha)
    path = write_workflow(args.path or Path(template.default_path), text, force=args.force)
    print(f"wrote {path}")
    if find_config_file(Path.cwd().resolve()) is None:
        sys.stderr.write(
            "note: no [tool.condamatrix] table (nor condamatrix.yml) was found from here; "
            "the workflow needs one to list the cells\n"
        )
    if args.reusable:
        shown = f".github/workflows/{path.name}" if path.is_absolute() else path.as_posix()
        print(
            "call it from a job of another workflow:\n"
            "  jobs:\n"
            "    conda-matrix:\n"
            f"      uses: ./{shown}"
        )
    return int(ExitCode.OK)
