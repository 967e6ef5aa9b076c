"""``condamatrix lock`` and ``condamatrix export``: reproducible cells, conda-style files
(the work itself is in :mod:`.pins`, imported when a command runs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .. import atomic
from ..errors import ExitCode
from .options import Subcommands, add_cache_dir_option, add_command, add_config_option

if TYPE_CHECKING:
    from ..run.session import SessionOptions


def add_parsers(sub: Subcommands) -> None:
    lock = add_command(
        sub,
        "lock",
        run_lock,
        help="solve every cell and write condamatrix.lock (exact URLs and hashes)",
        description="Solve every cell of the matrix and write one lock file (rattler's "
        "format, as used by pixi) with an environment per cell. While it is present and fits "
        "the configuration, cells install exactly the locked packages, without solving.",
    )
    add_config_option(lock)
    lock.add_argument("--output", type=Path, help="where to write it (default: beside the config)")
    add_cache_dir_option(lock)

    export = add_command(
        sub,
        "export",
        run_export,
        help="print a cell's env as a pinned environment.yml or an @EXPLICIT list",
        description="Read the built env of CELL (build it with pytest --conda-matrix first) "
        "and print it like `conda env export` (yml, with pip packages) or `conda list "
        "--explicit` (explicit URLs).",
    )
    export.add_argument("cell", help="cell id, e.g. py3.12-cpu")
    export.add_argument("--format", choices=("yml", "explicit"), default="yml")
    export.add_argument("--output", type=Path, help="write to this file instead of stdout")
    add_config_option(export)
    add_cache_dir_option(export)


def _options(args: argparse.Namespace) -> SessionOptions:
    from ..run.session import SessionOptions

    return SessionOptions(cwd=Path.cwd(), config_path=args.config, cache_dir=args.cache_dir)


def run_lock(args: argparse.Namespace) -> int:
    from .pins import lock_matrix

    path = lock_matrix(_options(args), args.output)
    print(f"wrote {path}")
    return int(ExitCode.OK)


def run_export(args: argparse.Namespace) -> int:
    from .pins import export_cell

    text = export_cell(_options(args), args.cell, args.format)
    if args.output:
        atomic.write_text(args.output, text)
    else:
        sys.stdout.write(text)
    return int(ExitCode.OK)
