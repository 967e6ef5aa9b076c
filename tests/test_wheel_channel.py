"""``local-channel --wheel REQ`` / ``--wheelhouse DIR``: any wheels, pure or binary, as conda
packages per Python; and a numpy project run offline from such a channel."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from conftest import PYTHONS, RunMatrix, test_cache_root
from pytest_condamatrix.localchannel import LocalChannel, build_local_channel
from pytest_condamatrix.localchannel.conda_package import PackageFile
from pytest_condamatrix.localchannel.extra_wheels import PLACEHOLDER, _fitting, binary_files
from pytest_condamatrix.localchannel.wheels import Wheel

LINUX = "manylinux_2_17_x86_64.manylinux2014_x86_64"


def test_wheelhouse_picks_the_newest_fitting_wheel_per_python(tmp_path: Path) -> None:
    names = [
        f"numpy-2.0.2-cp39-cp39-{LINUX}.whl",
        f"numpy-2.3.0-cp311-cp311-{LINUX}.whl",
        f"numpy-2.4.0-cp312-cp312-{LINUX}.whl",
        "attrs-25.1.0-py3-none-any.whl",
        "attrs-24.1.0-py3-none-any.whl",
        "not-a-wheel.whl",
    ]
    paths = [tmp_path / n for n in names]
    if not sys.platform.startswith("linux"):
        pytest.skip("the names above are Linux wheels")
    chosen = {minor: [p.name for p in _fitting(paths, minor)] for minor in ("3.9", "3.12")}
    assert chosen["3.9"] == ["attrs-25.1.0-py3-none-any.whl", names[0]]
    assert chosen["3.12"] == ["attrs-25.1.0-py3-none-any.whl", names[2]]


def test_binary_package_paths_and_scripts(tmp_path: Path) -> None:
    wheel = Wheel(
        path=tmp_path / "x.whl", name="numpy", version="2.0.2", sha256="0", requires_python="",
        requires_dist=(), console_scripts=("f2py = numpy.f2py.f2py2e:main",), license="",
        summary="", timestamp_ms=0, dist_info="numpy-2.0.2.dist-info",
    )  # fmt: skip
    noarch = [
        PackageFile("site-packages/numpy/__init__.py", data=b""),
        PackageFile("python-scripts/tool", data=b"#!python\n"),
    ]
    files = {f.path: f for f in binary_files(wheel, "3.9", noarch)}
    assert set(files) == {
        "lib/python3.9/site-packages/numpy/__init__.py",
        "bin/tool",
        "bin/f2py",
    }
    script = files["bin/f2py"]
    assert script.prefix == PLACEHOLDER and script.data is not None
    assert script.data.startswith(f"#!{PLACEHOLDER}/bin/python3.9\n".encode())
    assert b"from numpy.f2py.f2py2e import main" in script.data


@pytest.fixture(scope="session")
def numpy_channel(local_channel: LocalChannel) -> LocalChannel:
    # A channel of its own: adding numpy to the shared one would change every env's key.
    return build_local_channel(test_cache_root() / "channels" / "numpy", PYTHONS, wheels=["numpy"])


@pytest.mark.integration
def test_second_wheel_build_asks_pip_nothing(numpy_channel: LocalChannel) -> None:
    said: list[str] = []
    again = build_local_channel(numpy_channel.path, PYTHONS, wheels=["numpy"], progress=said.append)
    assert again.packages == numpy_channel.packages
    assert [m for m in said if "pip" in m or "packaging" in m or "indexing" in m] == []
    binary = [p for p in numpy_channel.packages if p.startswith("numpy-")]
    assert len(binary) == len(numpy_channel.pythons)


@pytest.mark.integration
def test_numpy_project_runs_offline_on_every_python(
    numpy_channel: LocalChannel, pytester: pytest.Pytester, warm_cache: Path, run_matrix: RunMatrix
) -> None:
    if missing := set(PYTHONS) - set(numpy_channel.pythons):
        pytest.skip(f"Python {', '.join(sorted(missing))} is not on this machine")
    pytester.makepyprojecttoml(
        textwrap.dedent(
            f"""
            [tool.condamatrix]
            python = {list(PYTHONS)!r}
            channels = [{str(numpy_channel.path)!r}]
            dependencies = ["pytest", "numpy"]
            """
        )
    )
    pytester.makepyfile(
        test_np="""
        import shutil
        import numpy as np

        def test_linear_algebra():
            assert np.linalg.solve(np.eye(3) * 2, np.ones(3)).tolist() == [0.5, 0.5, 0.5]

        def test_console_script_of_a_binary_package():
            assert shutil.which("f2py")
        """
    )
    result, data = run_matrix(warm_cache)
    assert result.ret == 0, result.stdout.str()
    cells = {c["cell"]: c for c in data["cells"]}
    assert set(cells) == {f"py{p}-cpu" for p in PYTHONS}
    for cell in cells.values():
        assert cell["counts"]["passed"] == 2
        assert any(p.startswith("numpy=") for p in cell["packages"])


def test_cli_refuses_a_missing_wheelhouse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_condamatrix.cli.main import main

    missing = tmp_path / "no-wheels"
    assert main(["local-channel", str(tmp_path / "ch"), "--wheelhouse", str(missing)]) == 4
    assert f"--wheelhouse {missing}: no such folder" in capsys.readouterr().err
