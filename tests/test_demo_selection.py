"""`condamatrix demo`: its own selection (the Pythons found here) narrows the user's."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import CONDAMATRIX
from pytest_condamatrix.cli.demo import demo_cells
from pytest_condamatrix.errors import UsageError
from pytest_condamatrix.localchannel import LocalChannel

ALL = ("3.9", "3.11", "3.12")


def test_the_demo_has_nine_cells() -> None:
    args, cells = demo_cells(ALL, ["-k", "slug"])
    assert args == ["-k", "slug"]
    assert len(cells) == 9 and "py3.9-cu11.8" in cells


def test_the_users_selection_narrows_the_demos() -> None:
    args, cells = demo_cells(ALL, ["--conda-matrix-select", "py3.12*", "-x"])
    assert args == ["-x"]  # the user's selection is folded into the demo's
    assert cells == ["py3.12-cpu", "py3.12-cu11.8", "py3.12-cu12.1"]
    _, cells = demo_cells(ALL, ["--conda-matrix-select=py3.12*", "--conda-matrix-select=*-cpu"])
    assert cells == ["py3.9-cpu", "py3.11-cpu", "py3.12-cpu", "py3.12-cu11.8", "py3.12-cu12.1"]
    # a Python missing here stays out even when the user's glob names it
    _, cells = demo_cells(("3.9", "3.11"), ["--conda-matrix-select", "*-cpu"])
    assert cells == ["py3.9-cpu", "py3.11-cpu"]
    with pytest.raises(UsageError, match=r"'py3\.12\*' matches no cell"):
        demo_cells(("3.9",), ["--conda-matrix-select", "py3.12*"])
    with pytest.raises(UsageError, match="needs a glob"):
        demo_cells(ALL, ["--conda-matrix-select"])


@pytest.mark.integration
def test_demo_runs_only_the_selected_cells(
    local_channel: LocalChannel, warm_cache: Path, tmp_path: Path
) -> None:
    if "3.12" not in local_channel.pythons:
        pytest.skip("Python 3.12 is not on this machine")
    out = tmp_path / "r.json"
    argv = [
        *CONDAMATRIX,
        "demo",
        "--cache-dir",
        str(warm_cache),
    ]
    argv += ["--conda-matrix-select", "py3.12*", "--conda-matrix-json", str(out)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 cells (3 passed)" in result.stdout
    cells = [c["cell"] for c in json.loads(out.read_text())["cells"]]
    assert cells == ["py3.12-cpu", "py3.12-cu11.8", "py3.12-cu12.1"]
