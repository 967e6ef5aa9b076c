"""The ``condamatrix`` command: the offline demo, local channels, and matrix helpers."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .. import __version__, atomic
from ..ci import gh_matrix, init_ci, merge
from ..errors import CondaMatrixError, EnvBuildError, ExitCode, UsageError
from ..matrix import select_cells
from ..report.terminal import make_console
from ..run.session import SessionOptions, cache_root, load_matrix
from . import cache as cache_command
from . import cell_shell
from .options import add_cache_dir_option, add_config_option
from .usage_parser import UsageArgumentParser

DEMO_PYTHONS = ("3.9", "3.11", "3.12")

DESCRIPTION = """\
Run a pytest suite in every cell of a Python x CUDA matrix of cached conda environments.
The matrix itself runs with `pytest --conda-matrix` (see `pytest --help`, group
"conda matrix"); this command holds the helpers around it."""


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

    demo = sub.add_parser(
        "demo",
        help="run the example project's tests in 9 cells (Python 3.9, 3.11, 3.12 x cpu, "
        "CUDA 11.8, 12.1), offline",
        description="Build (once, cached) a local conda channel from the Python interpreters "
        "on this machine, then run `pytest --conda-matrix` on the bundled example project "
        "with it. Arguments it does not know are passed on to that pytest run, e.g. "
        "`condamatrix demo -k slug --conda-matrix-json out.json`.",
    )
    add_cache_dir_option(demo)

    channel = sub.add_parser(
        "local-channel",
        help="build a conda channel from the Python interpreters on this machine",
        description="Package this machine's CPython interpreters, pytest and its "
        "dependencies as conda packages in DIR, so that any project can try its matrix "
        "offline by listing DIR in its channels. Incremental: rerunning is cheap.",
    )
    channel.add_argument("dir", type=Path, help="the channel folder to create or update")
    channel.add_argument(
        "--python",
        action="append",
        dest="pythons",
        metavar="X.Y",
        help=f"a Python version to package (repeatable; default: {', '.join(DEMO_PYTHONS)})",
    )
    channel.add_argument(
        "--wheel",
        action="append",
        dest="wheels",
        default=[],
        metavar="REQ",
        help="a pip requirement to add with its dependencies, e.g. numpy or 'hypothesis>=6' "
        "(repeatable): pip downloads the wheels for each Python, pure or binary",
    )
    channel.add_argument(
        "--wheelhouse",
        type=Path,
        metavar="DIR",
        help="a folder of wheels to add (no network); with --wheel, where pip looks first",
    )

    lock = sub.add_parser(
        "lock",
        help="solve every cell and write condamatrix.lock (exact URLs and hashes)",
        description="Solve every cell of the matrix and write one lock file (rattler's "
        "format, as used by pixi) with an environment per cell. While it is present and fits "
        "the configuration, cells install exactly the locked packages, without solving.",
    )
    add_config_option(lock)
    lock.add_argument("--output", type=Path, help="where to write it (default: beside the config)")
    add_cache_dir_option(lock)

    export = sub.add_parser(
        "export",
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

    listing = sub.add_parser(
        "list",
        help="list the matrix cells of the project in the current folder",
        description="Print each cell id with its Python, CUDA variant and conda specs.",
    )
    add_config_option(listing)

    # Step into a cell; CI: each command's arguments and logic live in its own module
    cell_shell.add_parsers(sub)
    gh_matrix.add_parser(sub)
    cache_command.add_parser(sub)
    merge.add_parser(sub)
    init_ci.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv, command = cell_shell.split_command(sys.argv[1:] if argv is None else argv)
    args, extra = parser.parse_known_args(argv)
    if command is not None:
        args.cmd = command
    try:
        if args.command != "demo" and extra:
            raise UsageError(
                f"unrecognised arguments: {' '.join(extra)}",
                hint=f"see `condamatrix {args.command} --help`",
            )
        if args.command == "demo":
            return run_demo(extra, args.cache_dir)
        if args.command == "local-channel":
            return make_local_channel(
                args.dir, tuple(args.pythons or DEMO_PYTHONS), tuple(args.wheels), args.wheelhouse
            )
        if args.command == "list":
            return list_cells(args.config)
        if args.command in ("run", "shell", "env"):
            return cell_shell.run(args)
        if args.command == "gh-matrix":
            return gh_matrix.run(args)
        if args.command == "merge":
            return merge.run(args)
        if args.command == "init-ci":
            return init_ci.run(args)
        if args.command == "cache":
            return cache_command.run(args)
        if args.command == "lock":
            return run_lock(args.config, args.output, args.cache_dir)
        if args.command == "export":
            return run_export(args.cell, args.format, args.output, args.config, args.cache_dir)
    except CondaMatrixError as exc:
        sys.stderr.write(f"condamatrix: error: {exc}\n")
        return int(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("condamatrix: interrupted\n")
        return int(ExitCode.INTERRUPTED)
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse checks


def demo_project() -> Path:
    """The example project: from a source checkout, else the copy shipped in the wheel."""
    here = Path(__file__).resolve().parent.parent  # the package folder
    for candidate in (here.parent.parent / "examples" / "demo", here / "_demo"):
        if (candidate / "pyproject.toml").is_file():
            return candidate
    raise CondaMatrixError("the demo project is missing from this installation")


def _build_channel(
    dest: Path,
    pythons: tuple[str, ...],
    wheels: tuple[str, ...] = (),
    wheelhouse: Path | None = None,
) -> tuple[Path, tuple[str, ...]]:
    from ..localchannel import ChannelBuildError, build_local_channel

    console = make_console(sys.stderr)
    if wheelhouse is not None and not wheelhouse.is_dir():
        raise UsageError(f"--wheelhouse {wheelhouse}: no such folder")
    try:
        channel = build_local_channel(
            dest,
            pythons,
            progress=lambda m: console.print(m),
            wheels=wheels,
            wheelhouse=wheelhouse.resolve() if wheelhouse else None,
        )
    except ChannelBuildError as exc:
        raise EnvBuildError(str(exc)) from None
    for version in channel.missing:
        console.print(f"Python {version} was not found on this machine: its cell is left out")
    return channel.path, channel.pythons


def make_local_channel(
    dest: Path,
    pythons: tuple[str, ...],
    wheels: tuple[str, ...] = (),
    wheelhouse: Path | None = None,
) -> int:
    path, found = _build_channel(dest.resolve(), pythons, wheels, wheelhouse)
    if not found:
        raise EnvBuildError(
            f"none of Python {', '.join(pythons)} was found on this machine",
            hint="install them (e.g. with pyenv) or name others with --python",
        )
    print(f"channel ready: {path} (python {', '.join(found)})")
    return int(ExitCode.OK)


def run_demo(pytest_args: Sequence[str], cache_dir: Path | None) -> int:
    root = cache_root(cache_dir)
    channel, found = _build_channel(root / "channels" / "local", DEMO_PYTHONS)
    if not found:
        raise EnvBuildError(
            f"the demo needs at least one of Python {', '.join(DEMO_PYTHONS)} on this machine",
            hint="install one (e.g. `pyenv install 3.12`) and run the demo again",
        )
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "--conda-matrix",
        "--conda-matrix-channel",
        str(channel),
        "--conda-matrix-cache-dir",
        str(root),
        "-p",
        "no:cacheprovider",
    ]
    user_args, cells = demo_cells(found, pytest_args)
    for cell in cells:
        argv += ["--conda-matrix-select", cell]
    from .. import processes

    # The demo is a separate pytest run in the example project, as a user would start it.
    return processes.foreground([*argv, *user_args], cwd=demo_project())


SELECT = "--conda-matrix-select"


def demo_cells(found: Sequence[str], pytest_args: Sequence[str]) -> tuple[list[str], list[str]]:
    """The demo's cells (those of the Pythons found) narrowed by the user's own
    ``--conda-matrix-select``, and the user's arguments without it: selections add up, so
    passing both on would widen the user's choice instead of narrowing it."""
    args, patterns = list(pytest_args), []
    while SELECT in args or any(a.startswith(SELECT + "=") for a in args):
        i = next(i for i, a in enumerate(args) if a == SELECT or a.startswith(SELECT + "="))
        if args[i] == SELECT:
            if i + 1 == len(args):
                raise UsageError(
                    f"{SELECT} needs a glob", hint="e.g. --conda-matrix-select 'py3.12-*'"
                )
            patterns.append(args.pop(i + 1))
        else:
            patterns.append(args[i].partition("=")[2])
        del args[i]
    _, cells = load_matrix(SessionOptions(cwd=demo_project()))
    ours = [c for c in cells if c.python in found]
    return args, [c.id for c in select_cells(ours, patterns)]


def list_cells(config: Path | None) -> int:
    matrix, cells = load_matrix(SessionOptions(cwd=Path.cwd(), config_path=config))
    if matrix.note:
        print(matrix.note, file=sys.stderr)
    for cell in cells:
        print(f"{cell.id}\tpython={cell.python}\tcuda={cell.cuda}\t{' '.join(cell.specs)}")
    return int(ExitCode.OK)


def run_lock(config: Path | None, output: Path | None, cache_dir: Path | None) -> int:
    from .lock_export import lock_matrix

    options = SessionOptions(cwd=Path.cwd(), config_path=config, cache_dir=cache_dir)
    path = lock_matrix(options, output)
    print(f"wrote {path}")
    return int(ExitCode.OK)


def run_export(
    cell: str, fmt: str, output: Path | None, config: Path | None, cache_dir: Path | None
) -> int:
    from .lock_export import export_cell

    options = SessionOptions(cwd=Path.cwd(), config_path=config, cache_dir=cache_dir)
    text = export_cell(options, cell, fmt)
    if output:
        atomic.write_text(output, text)
    else:
        sys.stdout.write(text)
    return int(ExitCode.OK)


if __name__ == "__main__":
    sys.exit(main())
