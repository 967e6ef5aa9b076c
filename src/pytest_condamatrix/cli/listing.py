"""``condamatrix list``: the matrix cells of the project in the current folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ExitCode
from .options import Subcommands, add_command, add_config_option


def add_parsers(sub: Subcommands) -> None:
    listing = add_command(
        sub,
        "list",
        list_cells,
        help="list the matrix cells of the project in the current folder",
        description="Print each cell id with its Python, CUDA variant and conda specs.",
    )
    add_config_option(listing)


def list_cells(args: argparse.Namespace) -> int:
    from ..run.session import SessionOptions, load_matrix

    matrix, cells = load_matrix(SessionOptions(cwd=Path.cwd(), config_path=args.config))
    if matrix.note:
        print(matrix.note, file=sys.stderr)
    for cell in cells:
        print(f"{cell.id}\tpython={cell.python}\tcuda={cell.cuda}\t{' '.join(cell.specs)}")
    return int(ExitCode.OK)
