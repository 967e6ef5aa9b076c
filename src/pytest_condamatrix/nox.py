"""Sessions for a project's noxfile that run its conda matrix::

    # noxfile.py
    from pytest_condamatrix.nox import register_matrix_sessions

    register_matrix_sessions(per_cell=True)

``nox -s matrix`` runs ``pytest --conda-matrix`` (every cell, one report), with what follows
``--`` passed on; with ``per_cell=True`` each cell also gets a session of its own, listed by
``nox -l``: ``nox -s "matrix(cell='py3.12-cpu')"``. Each cell's session is tagged by axis
(``python-3.12``, ``cuda-cpu``, ``cuda-12.1``) and declares its Python, so ``nox -t
python-3.12``, ``nox -t cuda-cpu`` and ``nox -t matrix-cell -p 3.12`` select cells.

The sessions create no virtualenv: the cells' envs are conda prefixes built by the plugin,
and the outer pytest only drives them, so it runs on the interpreter that runs nox, where
the noxfile has just imported this module (so the plugin is known to be installed there).
A virtualenv would only cost an install per session and could hold a different version.
So a cell's session declares its cell's Python (for ``-p``) with ``venv_backend="none"``:
nox then creates nothing.

Per-cell sessions are not default sessions (a bare ``nox`` would run every cell twice), and
nox drops those before it looks at ``-p``: ``nox -p 3.12`` alone selects no cell, so the
module says so and names the commands that do. ``-k`` takes a Python expression in nox, in
which ``py3.12`` cannot be written: ``-k "matrix and cpu"`` works, the tags cover the rest.

Per-cell sessions are plain sessions named ``matrix(cell='<id>')`` rather than a
``nox.parametrize``-d ``matrix``: nox runs every parametrization of a session for ``-s
matrix``, which would split the one report of ``nox -s matrix`` into a run per cell.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

try:
    import nox
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "pytest_condamatrix.nox needs nox, which is not installed in this Python "
        f"({sys.executable})",
        name="nox",
    ) from exc

from .errors import CondaMatrixError
from .run.session import SessionOptions, load_matrix

#: tag of the per-cell sessions: ``nox -t matrix-cell`` runs each cell as its own session
CELL_TAG = "matrix-cell"
#: nox's options that select sessions by Python, by name, tag or keyword
PYTHON_OPTIONS = ("-p", "--python", "--pythons")
SELECT_OPTIONS = ("-s", "-e", "--session", "--sessions", "-t", "--tags", "-k", "--keywords")


def cell_tags(python: str, cuda: str) -> list[str]:
    """``matrix-cell``, ``python-X.Y`` and ``cuda-<variant>``: ``nox -t`` selects by axis."""
    return [CELL_TAG, f"python-{python}", f"cuda-{cuda}"]


def _pytest(session: nox.Session, *args: str) -> None:
    # sys.executable is nox's interpreter, where this module (so the plugin) is importable.
    session.run(sys.executable, "-m", "pytest", "--conda-matrix", *args, external=True)


def register_matrix_sessions(
    *,
    per_cell: bool = False,
    name: str = "matrix",
    config: str | Path | None = None,
    pytest_args: Sequence[str] = (),
) -> list[str]:
    """Register the ``matrix`` session (and, with ``per_cell``, one per cell) with nox.

    ``config`` is a pyproject.toml or condamatrix.yml (default: found from the noxfile's
    folder); ``pytest_args`` go before the session's posargs in every run. Returns the names
    of the sessions registered. A configuration that cannot be read leaves out the per-cell
    sessions with a logged error, so that the noxfile's other sessions stay usable, and the
    ``matrix`` session then reports the error when run.
    """
    root = Path.cwd()  # nox imports the noxfile from its own folder
    extra = list(pytest_args)
    if config is not None:
        extra = ["--conda-matrix-config", str(config), *extra]

    def matrix(session: nox.Session) -> None:
        _pytest(session, *extra, *session.posargs)

    matrix.__doc__ = "pytest --conda-matrix: the test suite in every cell, one report"
    _register(matrix, name=name)
    names = [name]
    if not per_cell:
        return names
    try:
        _, cells = load_matrix(
            SessionOptions(cwd=root, config_path=Path(config) if config else None)
        )
    except CondaMatrixError as exc:
        from nox.logger import logger

        logger.error(f"{name}: no per-cell sessions: {exc}")
        return names
    for cell in cells:
        cell_name = f"{name}(cell={cell.id!r})"
        session_func = _cell_session(cell.id, extra)
        session_func.__doc__ = (
            f"pytest --conda-matrix in cell {cell.id} only (python {cell.python}, cuda {cell.cuda})"
        )
        _register(
            session_func,
            name=cell_name,
            tags=cell_tags(cell.python, cell.cuda),
            python=cell.python,
            venv_backend="none",
            default=False,
        )
        names.append(cell_name)
    hint = python_selection_hint(sys.argv[1:]) if _run_by_nox(sys.argv[0]) else None
    if hint:
        from nox.logger import logger

        logger.warning(hint)
    return names


def _run_by_nox(program: str) -> bool:
    # `nox ...` or `python -m nox ...`: its options, not those of a program that imports us
    path = Path(program)
    return path.name == "nox" or path.parent.name == "nox"


def _given(argv: Sequence[str], options: Sequence[str]) -> bool:
    # `-p 3.12`, `-p3.12`, `--python=3.12`
    prefixes = tuple(o if len(o) == 2 else f"{o}=" for o in options)
    return any(a in options or a.startswith(prefixes) for a in argv)


def python_selection_hint(argv: Sequence[str]) -> str | None:
    """What to type when ``nox -p X.Y`` alone would pass over the cells' sessions."""
    if not _given(argv, PYTHON_OPTIONS) or _given(argv, SELECT_OPTIONS):
        return None
    return (
        "matrix cells are not default sessions, so -p alone selects none of them: "
        "use `nox -t matrix-cell -p X.Y` (or `nox -t python-X.Y`)"
    )


def _cell_session(cell: str, extra: list[str]) -> Callable[[nox.Session], None]:
    def run_cell(session: nox.Session) -> None:
        _pytest(session, "--conda-matrix-select", cell, *extra, *session.posargs)

    return run_cell


def _register(func: Callable[[nox.Session], None], **options: Any) -> None:
    # `default=False` keeps a bare `nox` from running every cell twice; older nox lacks it.
    if "default" in options and "default" not in inspect.signature(nox.session).parameters:
        del options["default"]
    options.setdefault("python", False)
    nox.session(**options)(func)
