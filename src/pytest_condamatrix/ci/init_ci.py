"""``condamatrix init-ci``: write a GitHub Actions workflow for the matrix into a project.

Templates are package data (``templates/*.yml``) with ``@@NAME@@`` placeholders: GitHub's own
``${{ }}`` syntax rules out the usual template engines' braces, and a replace needs no
dependency. Every value is inserted as a JSON string, which YAML reads as a quoted scalar.

Actions are named by major version (``actions/checkout@v7``), which follows the action's
fixes; ``--pin-sha`` names the commit of a release instead (``@<sha> # v7.0.1``), which
nothing can move: the choice of projects that pin their whole supply chain.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .. import atomic
from ..errors import CondaMatrixError, UsageError

PLACEHOLDER = re.compile(r"@@([A-Z_]+)@@")
PYTHON_RE = re.compile(r"^3\.\d+$")
DEFAULT_TOOL_PYTHON = "3.12"
DEFAULT_INSTALL = "pytest-condamatrix"


@dataclass(frozen=True)
class Release:
    major: str  # what the templates name: the action's current major version
    version: str  # its latest release known to this version of pytest-condamatrix
    sha: str  # the commit of that release


#: every action the templates use; a test keeps this table and the templates in step
ACTIONS = {
    "actions/checkout": Release("v7", "v7.0.1", "3d3c42e5aac5ba805825da76410c181273ba90b1"),
    "actions/setup-python": Release("v7", "v7.0.0", "5fda3b95a4ea91299a34e894583c3862153e4b97"),
    "actions/cache": Release("v5", "v5.0.5", "27d5ce7f107fe9357f9df03efb73ab90386fccae"),
    "actions/upload-artifact": Release("v7", "v7.0.0", "bbbca2ddaa5d8feaa63e36b76fdaad77386f024f"),
    "actions/download-artifact": Release(
        "v8", "v8.0.1", "3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c"
    ),
}
# `uses: actions/cache/restore@v5`: repository, sub-action path, version
USES = re.compile(r"(?m)^(\s*(?:- )?uses: )([\w.-]+/[\w.-]+)((?:/[\w.-]+)*)@(\S+)$")


def pin_actions(text: str) -> str:
    """Name each action by the commit of its release, its version in a comment."""

    def pin(match: re.Match[str]) -> str:
        lead, repo, sub, ref = match.groups()
        release = ACTIONS.get(repo)
        if release is None or ref != release.major:
            raise CondaMatrixError(f"no pinned release for {repo}{sub}@{ref}")
        return f"{lead}{repo}{sub}@{release.sha}  # {release.version}"

    return USES.sub(pin, text)


@dataclass(frozen=True)
class Template:
    file: str  # in pytest_condamatrix/ci/templates
    default_path: str  # where init-ci writes it, relative to the project


WORKFLOW = Template("condamatrix.yml", ".github/workflows/condamatrix.yml")
REUSABLE = Template("condamatrix-reusable.yml", ".github/workflows/condamatrix-reusable.yml")


def template_text(template: Template) -> str:
    return (resources.files("pytest_condamatrix.ci") / "templates" / template.file).read_text(
        encoding="utf-8"
    )


def render(text: str, values: Mapping[str, str]) -> str:
    """Replace each ``@@NAME@@`` with ``values[NAME]`` as a JSON string; all must be given."""
    missing = sorted(set(PLACEHOLDER.findall(text)) - set(values))
    if missing:
        raise CondaMatrixError(f"template placeholders without a value: {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda m: json.dumps(values[m.group(1)]), text)


def render_template(
    template: Template,
    *,
    python: str = DEFAULT_TOOL_PYTHON,
    install: str = DEFAULT_INSTALL,
    pin_sha: bool = False,
) -> str:
    if not PYTHON_RE.match(python):
        raise UsageError(
            f"--python {python!r} is not a Python version",
            hint="give the Python that runs pytest-condamatrix in CI, e.g. --python 3.12",
        )
    if not install.strip() or any(c in install for c in "\n\r"):
        raise UsageError(
            f"--install {install!r} is not a pip requirement",
            hint="e.g. --install 'pytest-condamatrix==0.1.0' (one line)",
        )
    text = render(template_text(template), {"TOOL_PYTHON": python, "INSTALL": install.strip()})
    return pin_actions(text) if pin_sha else text


def write_workflow(path: Path, text: str, *, force: bool = False) -> Path:
    """Write ``text`` to ``path``; an existing file is replaced only with ``force``."""
    if path.is_dir():
        raise UsageError(
            f"{path} is a folder", hint="give the workflow file's path, e.g. --path ci/x.yml"
        )
    if path.exists() and not force:
        raise UsageError(
            f"{path} already exists: not overwritten",
            hint="pass --force to replace it, or --path to write the workflow elsewhere",
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(path, text)
    except OSError as exc:
        raise UsageError(
            f"cannot write {path}: {exc.strerror or exc}", hint="pick a writable --path"
        ) from None
    return path
