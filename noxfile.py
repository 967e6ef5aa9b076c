"""Sessions for developing pytest-condamatrix: tests, lint, typecheck, lowest versions, and the
demo matrix."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_venv = "yes"

LOWEST_PYTHON = "3.10"  # requires-python's lower bound


def _python(version: str) -> str:
    """``version`` as nox finds it on PATH, else the interpreter the local channel would use
    (pyenv's versions folder, for one): uv must not download one, CI may be offline."""
    try:
        from pytest_condamatrix.localchannel import find_interpreters
    except ImportError:  # nox runs without this project installed
        return version
    return str(find_interpreters([version]).get(version, version))


@nox.session(python=["3.10", "3.11", "3.12", "3.13"])
def tests(session: nox.Session) -> None:
    """Our test suite on each supported Python found on this machine."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session(python=_python(LOWEST_PYTHON), venv_backend="uv", reuse_venv=False)
def lowest(session: nox.Session) -> None:
    """The unit tests on the lowest versions pyproject.toml allows: its lower bounds stay true.

    A fresh env each time: uv keeps the versions already installed when they still fit.
    """
    session.install("--resolution", "lowest-direct", "-e", ".[test]")
    session.run("uv", "pip", "list", external=True, silent=False)
    session.run("pytest", "-m", "not integration", "-p", "no:cacheprovider", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "src", "tests", "benchmarks", "examples", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "benchmarks", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    session.run("mypy")


@nox.session
def matrix(session: nox.Session) -> None:
    """The offline demo: the example project on Python 3.9, 3.11 and 3.12 x cpu, 11.8, 12.1."""
    session.install("-e", ".[channel]")
    session.run("condamatrix", "demo", *session.posargs)
