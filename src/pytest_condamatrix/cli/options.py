"""What every ``condamatrix`` subcommand's parser is made of: the subcommand itself with its
handler, and the options that several of them share, worded once.

This module, like every command module, imports neither pytest, rattler nor rich: the whole
parser is built for ``condamatrix --help``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias

from ..errors import UsageError
from ..validate import check_path
from .usage_parser import UsageArgumentParser

#: what ``add_subparsers`` returns (generic for type checkers only, hence the string)
Subcommands: TypeAlias = "argparse._SubParsersAction[UsageArgumentParser]"

#: a command's entry point: its parsed arguments in, its exit code out
Handler = Callable[[argparse.Namespace], int]


def add_command(
    sub: Subcommands, name: str, handler: Handler, *, help: str, description: str
) -> argparse.ArgumentParser:
    """Add subcommand ``name``; :func:`.main.main` dispatches it to ``handler``, which imports
    what the command needs when it runs."""
    parser = sub.add_parser(name, help=help, description=description)
    parser.set_defaults(handler=handler)
    return parser


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        help="pyproject.toml or condamatrix.yml to read (default: found from the current "
        "folder upwards)",
    )


def add_cache_dir_option(parser: argparse.ArgumentParser, *, checked: bool = False) -> None:
    """``--cache-dir``; ``checked`` refuses an empty value, which would be the current folder
    (for the commands that remove things there)."""
    parser.add_argument(
        "--cache-dir",
        type=_cache_dir if checked else Path,
        help="the cache folder (default: $CONDAMATRIX_CACHE_DIR, else the user cache folder)",
    )


def _cache_dir(text: str) -> Path:
    try:
        return check_path(text, "--cache-dir")
    except UsageError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None
