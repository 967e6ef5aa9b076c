"""Sessions for developing pytest-condamatrix: tests, lint, typecheck, and the demo matrix."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_venv = "yes"


@nox.session(python=["3.10", "3.11", "3.12", "3.13"])
def tests(session: nox.Session) -> None:
    """Our test suite on each supported Python found on this machine."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


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
    """The offline demo: the example project on Python 3.9, 3.11 and 3.12."""
    session.install("-e", ".[channel]")
    session.run("condamatrix", "demo", *session.posargs)
