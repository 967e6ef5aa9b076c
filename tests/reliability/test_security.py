"""Security hygiene: no shell, no code run from data, file names from validated ids only,
and files made with the user's umask."""

from __future__ import annotations

import ast
import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import pytest_condamatrix
from conftest import MakeProject
from pytest_condamatrix.config import parse_config
from pytest_condamatrix.errors import ConfigError
from pytest_condamatrix.matrix import SAFE_ID, build_cells
from pytest_condamatrix.report.junit import write_junit
from pytest_condamatrix.report.markdown import write_markdown
from pytest_condamatrix.report.terminal import make_console, render_run
from pytest_condamatrix.results import from_json

from .conftest import Figures
from .helpers import PYTEST_WITH_SIGINT

SOURCE = Path(pytest_condamatrix.__file__).parent
SUBPROCESS_CALLS = {"run", "Popen", "call", "check_call", "check_output"}
#: module.function calls that run a shell, or code or objects from data
FORBIDDEN = {
    ("os", "system"),
    ("os", "popen"),
    ("subprocess", "getoutput"),
    ("subprocess", "getstatusoutput"),
    ("pickle", "load"),
    ("pickle", "loads"),
    ("marshal", "load"),
    ("marshal", "loads"),
    ("yaml", "load"),
    ("yaml", "unsafe_load"),
    ("yaml", "full_load"),
}


def sources() -> list[Path]:
    return sorted(p for p in SOURCE.rglob("*.py") if "__pycache__" not in p.parts)


def test_no_shell_and_no_code_from_data_in_the_source(figures: Figures) -> None:
    problems = []
    for path in sources():
        text = path.read_text(encoding="utf-8")
        where = path.relative_to(SOURCE)
        for needle in ("shell=True", "os.system"):  # plain grep first: the cheapest net
            if needle in text:
                problems.append(f"{where}: contains {needle!r}")
        for node in ast.walk(ast.parse(text, filename=str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = (
                (func.value.id, func.attr)
                if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                else None
            )
            if isinstance(func, ast.Name) and func.id in ("eval", "exec"):
                problems.append(f"{where}:{node.lineno}: {func.id}()")
            if name in FORBIDDEN:
                problems.append(f"{where}:{node.lineno}: {'.'.join(name)}()")
            for keyword in node.keywords:
                if keyword.arg == "shell" and not (
                    isinstance(keyword.value, ast.Constant) and keyword.value.value is False
                ):
                    problems.append(f"{where}:{node.lineno}: shell=")
            if name and name[0] == "subprocess" and name[1] in SUBPROCESS_CALLS and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant | ast.JoinedStr | ast.BinOp):
                    problems.append(f"{where}:{node.lineno}: a command line as one string")
    figures.record("security", source_files_scanned=len(sources()), violations=len(problems))
    assert not problems, problems


def test_cell_ids_are_file_name_safe_and_path_tricks_are_refused(
    tmp_path: Path, figures: Figures
) -> None:
    config = parse_config(
        {
            "python": ["3.9", "3.10", "3.12.1"],
            "cuda": ["cpu", "11.8", "12.1.1"],
            "include": [{"python": "3.13", "cuda": "12.4"}],
        },
        source=tmp_path / "condamatrix.yml",
        root=tmp_path,
    )
    ids = [cell.id for cell in build_cells(config)]
    assert len(ids) == 10
    for cell_id in ids:
        assert SAFE_ID.match(cell_id) and "\n" not in cell_id, cell_id
        assert Path(cell_id).name == cell_id and ".." not in cell_id.split("."), cell_id
    refused = 0
    for axis, value in [
        ("python", "3.12/../../x"),
        ("python", "3.12\n"),
        ("python", "3.12\x00"),
        ("python", "../3.12"),
        ("cuda", "12.1/.."),
        ("cuda", "12.1\n"),
        ("cuda", "cpu/../../etc"),
        ("cuda", "~/12.1"),
    ]:
        raw = {"python": ["3.12"], axis: [value]}
        with pytest.raises(ConfigError):
            parse_config(raw, source=tmp_path / "condamatrix.yml", root=tmp_path)
        refused += 1
    figures.record("security", cell_ids_checked=len(ids), path_tricks_refused=refused)


PAYLOADS = [
    "__import__('os').system('touch PWNED')",
    "$(touch PWNED)",
    "`touch PWNED`",
    "; touch PWNED",
    "[/][bold red]markup[/]",
    "<script>alert(1)</script>",
    "{{7*7}} %(x)s {0}",
    "!!python/object/apply:os.system ['touch PWNED']",
]


def test_nothing_runs_from_a_results_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, figures: Figures
) -> None:
    monkeypatch.chdir(tmp_path)
    for payload in PAYLOADS:
        data = {
            "schema": "pytest-condamatrix/results",
            "version": 2,
            "config": payload,
            "host": {"system": payload},
            "cells": [
                {
                    "cell": "py3.12-cpu",
                    "python": "3.12",
                    "cuda": "cpu",
                    "status": "failed",
                    "message": payload,
                    "env_status": "built",
                    "env_reason": payload,
                    "packages": [payload],
                    "tests": [
                        {
                            "nodeid": f"test_x.py::test[{payload}]",
                            "outcome": "failed",
                            "message": payload,
                            "longrepr": payload,
                        }
                    ],
                }
            ],
        }
        path = tmp_path / "results.json"
        path.write_text(json.dumps(data))
        run = from_json(json.loads(path.read_text()), source=str(path))
        buffer = io.StringIO()
        render_run(make_console(buffer, width=200), run, notes=[payload], verbosity=1)
        write_junit(run, tmp_path / "junit.xml")
        write_markdown(run, tmp_path / "summary.md")
        # Shown as the text it is (rich markup, templates and shell syntax all inert).
        assert payload in buffer.getvalue(), payload
    assert not list(tmp_path.rglob("PWNED")) and not Path.home().joinpath("PWNED").exists()
    figures.record("security", results_payloads_inert=len(PAYLOADS))


def umask_run(project: Path, cache: Path, umask: int) -> subprocess.CompletedProcess[bytes]:
    code = f"import os; os.umask(0o{umask:03o}); " + PYTEST_WITH_SIGINT
    argv = [sys.executable, "-c", code, "--conda-matrix", "-p", "no:cacheprovider"]
    argv += ["--conda-matrix-cache-dir", str(cache)]
    return subprocess.run(argv, cwd=project, capture_output=True, check=False, timeout=300)


@pytest.mark.integration
@pytest.mark.parametrize("umask", [0o077, 0o002], ids=["umask-077", "umask-002"])
def test_cache_files_follow_the_umask(
    matrix_project: MakeProject, tmp_path: Path, umask: int, figures: Figures
) -> None:
    project = matrix_project(python=("3.12",))
    cache = tmp_path / "cache"
    done = umask_run(project, cache, umask)
    assert done.returncode == 0, done.stdout.decode()
    (env,) = (cache / "envs").iterdir()
    (run_dir,) = (cache / "runs").iterdir()
    made = {  # what the tool itself creates (package files keep the modes their package gives)
        cache / "envs": 0o777,
        cache / "locks": 0o777,
        env: 0o777,
        env / "conda-meta": 0o777,
        env / "conda-meta" / "condamatrix-stamp.json": 0o666,
        cache / "locks" / f"{env.name}.lock": 0o666,
        cache / "CACHEDIR.TAG": 0o666,
        run_dir: 0o777,
    }
    wrong = {
        str(path.relative_to(cache)): oct(stat.S_IMODE(path.stat().st_mode))
        for path, full in made.items()
        if stat.S_IMODE(path.stat().st_mode) != full & ~umask
    }
    figures.add("security", "umask_paths_checked", len(made))
    assert not wrong, f"umask {umask:03o}: {wrong}"
    assert os.access(cache, os.W_OK)
