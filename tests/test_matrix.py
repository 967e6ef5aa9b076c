"""Cells from axes, include/exclude, ids and selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_condamatrix.config import parse_config
from pytest_condamatrix.errors import UsageError
from pytest_condamatrix.matrix import build_cells, cell_id, parse_cell_id, select_cells


def cells_of(raw: dict[str, object], tmp_path: Path) -> list[str]:
    config = parse_config(raw, source=tmp_path / "condamatrix.yml", root=tmp_path)
    return [c.id for c in build_cells(config)]


def test_ids_are_readable_and_stable() -> None:
    assert cell_id("3.12", "cpu") == "py3.12-cpu"
    assert cell_id("3.11", "12.1") == "py3.11-cu12.1"


def test_ids_parse_back_to_their_axes() -> None:
    for python, cuda in (("3.12", "cpu"), ("3.11", "12.1"), ("3.9.18", "11.8.0")):
        assert parse_cell_id(cell_id(python, cuda)) == (python, cuda)
    for bad in ("py3.12", "3.12-cpu", "py3.12-gpu", "py3.12-cu", "py2.7-cpu"):
        assert parse_cell_id(bad) is None, bad


def test_product_in_python_major_order(tmp_path: Path) -> None:
    assert cells_of({"python": ["3.9", "3.12"], "cuda": ["cpu", "11.8"]}, tmp_path) == [
        "py3.9-cpu",
        "py3.9-cu11.8",
        "py3.12-cpu",
        "py3.12-cu11.8",
    ]


def test_exclude_and_include(tmp_path: Path) -> None:
    raw = {
        "python": ["3.9", "3.12"],
        "cuda": ["cpu", "12.1"],
        "exclude": [{"python": "3.9", "cuda": "12.1"}],
        "include": [{"python": "3.13", "cuda": "cpu"}],
    }
    assert cells_of(raw, tmp_path) == ["py3.9-cpu", "py3.12-cpu", "py3.12-cu12.1", "py3.13-cpu"]


def test_include_extends_matching_cells(tmp_path: Path) -> None:
    config = parse_config(
        {
            "python": ["3.9", "3.12"],
            "dependencies": ["pytest"],
            "include": [{"python": "3.9", "dependencies": ["tomli"]}],
        },
        source=None,
        root=tmp_path,
    )
    cells = {c.id: c for c in build_cells(config)}
    assert cells["py3.9-cpu"].dependencies == ("pytest", "tomli")
    assert cells["py3.12-cpu"].dependencies == ("pytest",)


def test_cuda_cells_get_cuda_version_by_default_or_configured_specs(tmp_path: Path) -> None:
    config = parse_config(
        {
            "python": ["3.12"],
            "cuda": ["cpu", "11.8", "12.1"],
            "cuda-variants": {
                "12.1": {"dependencies": ["pytorch-cuda=12.1"], "channels": ["nvidia"]}
            },
        },
        source=None,
        root=tmp_path,
    )
    cells = {c.id: c for c in build_cells(config)}
    # pytest: add-pytest puts it into every cell that names none
    assert cells["py3.12-cpu"].specs == ("python 3.12.*", "pytest")
    assert cells["py3.12-cu11.8"].specs == ("python 3.12.*", "cuda-version 11.8.*", "pytest")
    assert cells["py3.12-cu12.1"].specs == ("python 3.12.*", "pytorch-cuda=12.1", "pytest")
    assert cells["py3.12-cu12.1"].channels == ("conda-forge", "nvidia")


def test_exact_python_pins_with_double_equals(tmp_path: Path) -> None:
    config = parse_config({"python": ["3.12.1"]}, source=None, root=tmp_path)
    assert build_cells(config)[0].python_spec == "python ==3.12.1"


def test_select_by_glob(tmp_path: Path) -> None:
    config = parse_config(
        {"python": ["3.9", "3.12"], "cuda": ["cpu", "11.8"]}, source=None, root=tmp_path
    )
    cells = build_cells(config)
    assert [c.id for c in select_cells(cells, ["py3.12-*"])] == ["py3.12-cpu", "py3.12-cu11.8"]
    assert [c.id for c in select_cells(cells, ["*-cpu", "py3.9-cu11.8"])] == [
        "py3.9-cpu",
        "py3.9-cu11.8",
        "py3.12-cpu",
    ]


def test_select_that_matches_nothing_lists_cells(tmp_path: Path) -> None:
    config = parse_config({"python": ["3.12"]}, source=None, root=tmp_path)
    with pytest.raises(UsageError, match=r"matches no cell[\s\S]*py3.12-cpu"):
        select_cells(build_cells(config), ["py2*"])
