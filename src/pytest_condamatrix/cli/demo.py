"""``condamatrix demo`` and ``condamatrix local-channel``: a conda channel made of this
machine's Python interpreters, and the example project's matrix run offline with it.

What a command needs beyond the standard library is imported when it runs: the parser is
built for ``condamatrix --help``, which must not import pytest, rattler or rich.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import CondaMatrixError, EnvBuildError, ExitCode, UsageError
from .options import Subcommands, add_cache_dir_option, add_command

DEMO_PYTHONS = ("3.9", "3.11", "3.12")
SELECT = "--conda-matrix-select"


def add_parsers(sub: Subcommands) -> None:
    demo = add_command(
        sub,
        "demo",
        _run_demo,
        help="run the example project's tests in 9 cells (Python 3.9, 3.11, 3.12 x cpu, "
        "CUDA 11.8, 12.1), offline",
        description="Build (once, cached) a local conda channel from the Python interpreters "
        "on this machine, then run `pytest --conda-matrix` on the bundled example project "
        "with it. Arguments it does not know are passed on to that pytest run, e.g. "
        "`condamatrix demo -k slug --conda-matrix-json out.json`.",
    )
    demo.set_defaults(passes_unknown=True)  # to the demo's pytest run
    add_cache_dir_option(demo)

    channel = add_command(
        sub,
        "local-channel",
        _run_local_channel,
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


def _run_demo(args: argparse.Namespace) -> int:
    return run_demo(args.unknown, args.cache_dir)


def _run_local_channel(args: argparse.Namespace) -> int:
    return make_local_channel(
        args.dir, tuple(args.pythons or DEMO_PYTHONS), tuple(args.wheels), args.wheelhouse
    )


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
    from ..report.terminal import make_console

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
    from ..run.session import cache_root

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
    # The demo is a separate pytest run in the example project, as a user would start it.
    from .. import processes

    return processes.foreground([*argv, *user_args], cwd=demo_project())


def demo_cells(found: Sequence[str], pytest_args: Sequence[str]) -> tuple[list[str], list[str]]:
    """The demo's cells (those of the Pythons found) narrowed by the user's own
    ``--conda-matrix-select``, and the user's arguments without it: selections add up, so
    passing both on would widen the user's choice instead of narrowing it."""
    from ..matrix import select_cells
    from ..run.session import SessionOptions, load_matrix

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
