"""The ``condamatrix`` command: its parser, and the dispatch to each subcommand's handler.

Each subcommand lives in a module of its own, which adds its parser here and names its
handler (``set_defaults(handler=...)``); a handler imports what its command needs when it
runs, so that ``condamatrix --version`` and ``--help`` import neither pytest, rattler nor rich.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import UsageError, exit_code_for
from . import cache, cell_shell, demo, gh_matrix, init_ci, listing, lock_export, merge
from .usage_parser import UsageArgumentParser

DESCRIPTION = """\
Run a pytest suite in every cell of a Python x CUDA matrix of cached conda environments.
The matrix itself runs with `pytest --conda-matrix` (see `pytest --help`, group
"conda matrix"); this command holds the helpers around it."""

#: in the order of `condamatrix --help`: the demo first, then a project's own commands, CI last
COMMANDS = (
    demo.add_parsers,
    lock_export.add_parsers,
    listing.add_parsers,
    cell_shell.add_parsers,
    gh_matrix.add_parsers,
    cache.add_parsers,
    merge.add_parsers,
    init_ci.add_parsers,
)


def build_parser() -> argparse.ArgumentParser:
    parser = UsageArgumentParser(
        prog="condamatrix",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=UsageArgumentParser
    )
    for add_parsers in COMMANDS:
        add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv, command = cell_shell.split_command(sys.argv[1:] if argv is None else argv)
    args, unknown = parser.parse_known_args(argv)
    if command is not None:
        args.cmd = command
    args.unknown = unknown

    def dispatch() -> int:
        if unknown and not getattr(args, "passes_unknown", False):
            raise UsageError(
                f"unrecognised arguments: {' '.join(unknown)}",
                hint=f"see `condamatrix {args.command} --help`",
            )
        return int(args.handler(args))

    return exit_code_for(
        dispatch, error_prefix="condamatrix: error: ", interrupted="condamatrix: interrupted"
    )


if __name__ == "__main__":
    sys.exit(main())
