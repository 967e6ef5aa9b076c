"""Sessions for a project's noxfile that run its conda matrix::

    # noxfile.py
    from pytest_condamatrix.nox import register_matrix_sessions

    register_matrix_sessions(per_cell=True)

``nox -s matrix`` runs ``pytest --conda-matrix`` (every cell, one report), with what follows
``--`` passed on; with ``per_cell=True`` each cell also gets a session of its own, listed by
``nox -l``: ``nox -s "matrix(cell='py3.12-cpu')"``.

The sessions create no virtualenv: the cells' envs are conda prefixes built by the plugin,
and the outer pytest only drives them, so it runs on the interpreter that runs nox, where
the noxfile has just imported this module (so the plugin is known to be installed there).
A virtualenv would only cost an install per session and could hold a different version.

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
from .session import SessionOptions, load_matrix

#: tag of the per-cell sessions: ``nox -t matrix-cell`` runs each cell as its own session
CELL_TAG = "matrix-cell"


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
        _register(session_func, name=cell_name, tags=[CELL_TAG], default=False)
        names.append(cell_name)
    return names


def _cell_session(cell: str, extra: list[str]) -> Callable[[nox.Session], None]:
    def run_cell(session: nox.Session) -> None:
        _pytest(session, "--conda-matrix-select", cell, *extra, *session.posargs)

    return run_cell


def _register(func: Callable[[nox.Session], None], **options: Any) -> None:
    # `default=False` keeps a bare `nox` from running every cell twice; older nox lacks it.
    if "default" in options and "default" not in inspect.signature(nox.session).parameters:
        del options["default"]
    nox.session(python=False, **options)(func)
