"""``condamatrix run CELL -- CMD``, ``condamatrix shell CELL``, ``condamatrix env CELL``: step
into one cell by hand (the cell's env and the commands in it: :mod:`.cell_env`, imported
when a command runs)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ExitCode, UsageError
from .options import Subcommands, add_cache_dir_option, add_command, add_config_option

if TYPE_CHECKING:
    from ..run.session import SessionOptions


def add_parsers(sub: Subcommands) -> None:
    run = add_command(
        sub,
        "run",
        run_command,
        help="run a command in a cell's env, activated (e.g. `run py3.12-cpu -- pytest --pdb`)",
        description="Run CMD in the env of CELL, activated as conda would activate it, with "
        "the project importable as in the matrix and the CONDAMATRIX_* variables of the cell. "
        "The env is built first when needed. Exits with CMD's exit code.",
    )
    run.add_argument("cell", help="cell id, e.g. py3.12-cpu (a glob that matches one cell)")
    run.add_argument(
        "cmd", nargs="*", metavar="-- CMD ARGS", help="the command, after `--` (options too)"
    )
    shell = add_command(
        sub,
        "shell",
        shell_command,
        help="an interactive shell in a cell's env, activated",
        description="Start $SHELL (else bash) in the env of CELL, activated as for `run`.",
    )
    shell.add_argument("cell", help="cell id, e.g. py3.12-cpu")
    env = add_command(
        sub,
        "env",
        env_command,
        help="print the prefix of a cell's env (built when needed), for scripts and IDEs",
        description="Print the conda prefix of CELL's env, building it first when needed. "
        "Progress goes to stderr, the path alone to stdout.",
    )
    env.add_argument("cell", help="cell id, e.g. py3.12-cpu")
    env.add_argument(
        "--python", action="store_true", help="print the env's Python interpreter instead"
    )
    for parser in (run, shell, env):
        parser.add_argument(
            "--channel",
            action="append",
            default=[],
            metavar="CHANNEL",
            help="use this channel instead of the configured ones, as "
            "--conda-matrix-channel does (repeatable)",
        )
        add_config_option(parser)
        add_cache_dir_option(parser)


def split_command(argv: Sequence[str]) -> tuple[list[str], list[str] | None]:
    """``run CELL [options] -- CMD ARGS`` -> (``run CELL [options]``, ``CMD ARGS``): argparse
    would take an option of CMD for one of ours."""
    argv = list(argv)
    if argv[:1] != ["run"] or "--" not in argv:
        return argv, None
    i = argv.index("--")
    return argv[:i], argv[i + 1 :]


def _options(args: argparse.Namespace) -> SessionOptions:
    from ..run.session import SessionOptions

    return SessionOptions(
        cwd=Path.cwd(),
        config_path=args.config,
        cache_dir=args.cache_dir,
        channels=tuple(args.channel),
    )


def run_command(args: argparse.Namespace) -> int:
    from .cell_env import cell_env, run_in_cell

    options = _options(args)
    cmd = list(args.cmd)
    if not cmd:
        raise UsageError("no command to run", hint=f"e.g. condamatrix run {args.cell} -- pytest -x")
    with cell_env(options, args.cell) as env:
        return run_in_cell(cmd, env.environ, cwd=options.cwd)


def shell_command(args: argparse.Namespace) -> int:
    from .cell_env import cell_env, interactive_shell

    with cell_env(_options(args), args.cell) as env:
        return interactive_shell(env)


def env_command(args: argparse.Namespace) -> int:
    from .cell_env import cell_env

    with cell_env(_options(args), args.cell, with_project=False) as env:
        print(env.status.python if args.python else env.status.prefix)
    return int(ExitCode.OK)
