"""Environment files, the pip layer, lock files and exports."""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from conftest import MakeProject, RunMatrix
from pytest_condamatrix.config import load_config
from pytest_condamatrix.errors import ConfigError
from pytest_condamatrix.matrix import build_cells, with_build_pin_notes


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


ENV_YML = """
name: ignored
channels: [conda-forge, bioconda]
dependencies:
  - python=3.10
  - numpy >=1.24
  - cuda-version 11.8.*
  - pip
  - pip:
    - requests==2.32.0
"""


def test_environment_file_is_the_base_of_every_cell(tmp_path: Path) -> None:
    write(tmp_path / "environment.yml", ENV_YML)
    config = load_config(
        write(
            tmp_path / "condamatrix.yml",
            "python: ['3.12']\nenvironment: environment.yml\ndependencies: ['scipy']\npip: ['rich']\n",
        )
    )
    assert config.channels == ("conda-forge", "bioconda")
    assert config.dependencies == ("numpy >=1.24", "pip", "scipy")
    assert config.pip == ("requests==2.32.0", "rich")
    assert config.environment is not None
    assert config.environment.dropped == ("python=3.10", "cuda-version 11.8.*")
    (cell,) = build_cells(config)
    assert cell.specs == ("python 3.12.*", "numpy >=1.24", "pip", "scipy", "pytest")
    assert cell.pip == ("requests==2.32.0", "rich")


def test_config_channels_come_first(tmp_path: Path) -> None:
    write(tmp_path / "environment.yml", ENV_YML)
    config = load_config(
        write(
            tmp_path / "condamatrix.yml",
            "python: ['3.12']\nenvironment: environment.yml\nchannels: [nvidia, conda-forge]\n",
        )
    )
    assert config.channels == ("nvidia", "conda-forge", "bioconda")


def test_pip_brings_pip_into_the_env(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "condamatrix.yml", "python: ['3.12']\npip: ['rich']\n"))
    assert build_cells(config)[0].specs == ("python 3.12.*", "pytest", "pip")


@pytest.mark.parametrize(
    ("files", "config", "words"),
    [
        ({}, "environment: missing.yml\n", ["environment", "cannot read environment file"]),
        ({"e.yml": "- a\n"}, "environment: e.yml\n", ["e.yml", "mapping"]),
        ({"e.yml": "dependencies: [1]\n"}, "environment: e.yml\n", ["e.yml: dependencies[0]"]),
        (
            {"e.yml": "variables: {A: 1}\n"},
            "environment: e.yml\n",
            ["e.yml: variables", "not supported"],
        ),
        (
            {"e.yml": "dependencies: ['numpy >=>1']\n"},
            "environment: e.yml\n",
            ["e.yml: dependencies[0]", "match spec"],
        ),
        (
            {"e.yml": "dependencies: [numpy=1.26]\n"},
            "environment: e.yml\ndependencies: ['numpy >=2']\n",
            [
                "dependencies[0]",
                "'numpy >=2' conflicts with 'numpy=1.26'",
                "e.yml (dependencies[0])",
            ],
        ),
        ({}, "environment: 5\n", ["environment", "expected a file path"]),
        ({}, "pip: ['-e .']\n", ["pip[0]", "not allowed", "pythonpath"]),
        ({}, "pip: ['./src']\n", ["pip[0]", "is a folder"]),
        ({}, "pip: ['dist/x-1.0-py3-none-any.whl']\n", ["pip[0]", "does not exist"]),
        ({"src/.keep": ""}, "pip: [1]\n", ["pip[0]", "string"]),
    ],
)
def test_bad_environment_and_pip_settings(
    tmp_path: Path, files: dict[str, str], config: str, words: list[str]
) -> None:
    for name, text in files.items():
        write(tmp_path / name, text)
    (tmp_path / "src").mkdir(exist_ok=True)
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path / "condamatrix.yml", "python: ['3.12']\n" + config))
    for word in words:
        assert word in str(info.value)


# --- real envs ------------------------------------------------------------------------------


def make_wheel(folder: Path, version_text: str = "1") -> Path:
    """A minimal pure-Python wheel, written by hand (no build backend, no network)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tinywheel-0.1-py3-none-any.whl"
    files = {
        "tinywheel.py": f"VALUE = {version_text!r}\n",
        "tinywheel-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: tinywheel\nVersion: 0.1\n",
        "tinywheel-0.1.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, text in files.items():
        digest = (
            base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        )
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    record.append("tinywheel-0.1.dist-info/RECORD,,")
    files["tinywheel-0.1.dist-info/RECORD"] = "\n".join(record) + "\n"
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


PIP_TEST = """
import tinywheel, shutil, subprocess
def test_pip_layer():
    assert tinywheel.VALUE == "1"
"""


@pytest.mark.integration
def test_pip_layer_with_a_local_wheel_and_env_file(
    run_matrix: RunMatrix, pytester: pytest.Pytester, matrix_project: MakeProject, tmp_path: Path
) -> None:
    make_wheel(pytester.path / "dist")
    write(
        pytester.path / "environment.yml",
        "dependencies:\n  - pip\n  - pip:\n    - ./dist/tinywheel-0.1-py3-none-any.whl\n",
    )
    matrix_project(python=("3.12",), tests=PIP_TEST, extra="environment = 'environment.yml'\n")
    cache = tmp_path / "cache"
    result, data = run_matrix(cache)
    assert result.ret == 0, result.stdout.str()
    (cell,) = data["cells"]
    assert "pip:tinywheel==0.1" in cell["packages"]
    stamp = json.loads(
        (Path(cell["env_prefix"]) / "conda-meta" / "condamatrix-stamp.json").read_text()
    )
    assert stamp["inputs"]["environment_file"]
    prefix = Path(cell["env_prefix"])
    for script in (prefix / "bin").iterdir():
        if script.is_file() and not script.is_symlink() and script.read_bytes()[:2] == b"#!":
            assert str(cache / "tmp") not in script.read_text(errors="replace"), script

    make_wheel(pytester.path / "dist", version_text="2")  # same name, new content
    result, data = run_matrix(cache)
    assert result.ret == 1  # the test now sees VALUE == "2"
    assert data["cells"][0]["env_reason"] == "inputs changed: a local pip file changed"


@pytest.mark.integration
def test_a_failing_pip_layer_fails_the_build_and_keeps_no_env(
    run_matrix: RunMatrix, pytester: pytest.Pytester, matrix_project: MakeProject, tmp_path: Path
) -> None:
    (pytester.path / "dist").mkdir()
    (pytester.path / "dist" / "broken-0.1-py3-none-any.whl").write_bytes(b"not a zip")
    matrix_project(python=("3.12",), extra="pip = ['dist/broken-0.1-py3-none-any.whl']\n")
    cache = tmp_path / "cache"
    result, data = run_matrix(cache)
    assert result.ret == 1
    (cell,) = data["cells"]
    assert cell["status"] == "env-error"
    assert "the pip layer of py3.12-cpu failed" in cell["message"]
    assert not list((cache / "envs").iterdir()), "no half-built env may be kept"


@pytest.mark.integration
def test_lock_round_trip_and_out_of_date_detection(
    run_matrix: RunMatrix, pytester: pytest.Pytester, matrix_project: MakeProject, warm_cache: Path
) -> None:
    from pytest_condamatrix.cli.main import main

    project = matrix_project(python=("3.9", "3.12"))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project)
        assert main(["lock", "--cache-dir", str(warm_cache)]) == 0
    lock = project / "condamatrix.lock"
    assert "py3.9-cpu" in lock.read_text() and "py3.12-cpu" in lock.read_text()

    result, data = run_matrix(warm_cache, "--conda-matrix-locked")
    assert result.ret == 0, result.stdout.str()
    for cell in data["cells"]:
        stamp = json.loads(
            (Path(cell["env_prefix"]) / "conda-meta" / "condamatrix-stamp.json").read_text()
        )
        locked = stamp["inputs"]["locked"]
        assert len(locked) == len([p for p in cell["packages"] if not p.startswith("pip:")])
        assert all(entry.startswith("file://") and "#" in entry for entry in locked)

    matrix_project(python=("3.9", "3.12"), dependencies=("pytest", "tomli"))
    result, _ = run_matrix(warm_cache, "--conda-matrix-locked")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        [
            "*condamatrix.lock is out of date for cell py3.12-cpu: spec 'tomli' is not satisfied*",
            "*condamatrix lock*",
        ]
    )
    result, data = run_matrix(warm_cache)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*out of date for cell py3.12-cpu*(solving instead)*"])


@pytest.mark.integration
def test_export_recreates_an_identical_env(
    run_matrix: RunMatrix,
    pytester: pytest.Pytester,
    matrix_project: MakeProject,
    warm_cache: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pytest_condamatrix.cli.main import main

    project = matrix_project(python=("3.12",), dependencies=("pytest", "tomli"))
    result, data = run_matrix(warm_cache)
    assert result.ret == 0
    before = sorted(data["cells"][0]["packages"])
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project)
        assert (
            main(
                ["export", "py3.12-cpu", "--cache-dir", str(warm_cache), "--output", "exported.yml"]
            )
            == 0
        )
        assert (
            main(["export", "py3.12-cpu", "--cache-dir", str(warm_cache), "--format", "explicit"])
            == 0
        )
    explicit = capsys.readouterr().out
    assert "@EXPLICIT" in explicit and "tomli-" in explicit
    exported = (project / "exported.yml").read_text()
    assert "- tomli=" in exported

    matrix_project(python=("3.12",), dependencies=(), extra="environment = 'exported.yml'\n")
    result, data = run_matrix(warm_cache)
    assert result.ret == 0, result.stdout.str()
    assert sorted(data["cells"][0]["packages"]) == before


def test_export_of_an_unbuilt_cell_says_how_to_build_it(
    pytester: pytest.Pytester,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pytest_condamatrix.cli.main import main

    pytester.makepyprojecttoml("[tool.condamatrix]\npython = ['3.12']\n")
    monkeypatch.chdir(pytester.path)
    assert main(["export", "py3.12-cpu", "--cache-dir", str(tmp_path)]) == 4
    err = capsys.readouterr().err
    assert "the env of py3.12-cpu for the current configuration is not built" in err
    assert "pytest --conda-matrix --conda-matrix-select py3.12-cpu" in err
    assert main(["export", "py3.99-cpu", "--cache-dir", str(tmp_path)]) == 4
    assert "no cell 'py3.99-cpu'" in capsys.readouterr().err


@pytest.mark.integration
def test_export_right_after_lock_reads_the_lock(
    pytester: pytest.Pytester,
    matrix_project: MakeProject,
    warm_cache: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pytest_condamatrix.cli.main import main

    project = matrix_project(
        python=("3.12",), dependencies=("pytest", "tomli"), extra="pip = ['hypothesis']\n"
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project)
        assert main(["lock", "--cache-dir", str(warm_cache)]) == 0
        capsys.readouterr()
        # no run since the lock: the locked env is not built, the lock itself is exported
        assert main(["export", "py3.12-cpu", "--cache-dir", str(warm_cache)]) == 0
        exported = capsys.readouterr().out
        assert (
            main(["export", "py3.12-cpu", "--cache-dir", str(warm_cache), "--format", "explicit"])
            == 0
        )
        explicit = capsys.readouterr().out
    assert "- tomli=" in exported and "- python=3.12" in exported
    assert "- pip:\n  - hypothesis" in exported
    urls = [line for line in explicit.splitlines() if line.startswith("file://")]
    assert any("/tomli-" in u for u in urls) and all("#" in u for u in urls)


def test_python_pin_of_the_file_is_reported_as_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_condamatrix.cli.main import main

    write(tmp_path / "environment.yml", "dependencies:\n  - python=3.11.5\n  - pytest\n")
    write(tmp_path / "condamatrix.yml", "python: ['3.11', '3.12']\nenvironment: environment.yml\n")
    config = load_config(tmp_path / "condamatrix.yml")
    assert config.note == (
        "environment.yml: 'python=3.11.5' is replaced by the python axis (3.11, 3.12)"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["list"]) == 0
    assert "'python=3.11.5' is replaced by the python axis" in capsys.readouterr().err


def test_python_pin_that_contradicts_a_cell_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "environment.yml", "dependencies:\n  - python=3.11.5\n")
    with pytest.raises(ConfigError, match=r"pins 'python=3\.11\.5', which contradicts") as err:
        load_config(
            write(
                tmp_path / "condamatrix.yml", "python: ['3.11.4']\nenvironment: environment.yml\n"
            )
        )
    assert "the python axis decides" in str(err.value)


@pytest.mark.parametrize(
    ("file_channels", "config_channels", "expected"),
    [
        ("[conda-forge, nodefaults]", None, ("conda-forge",)),
        ("[defaults, conda-forge, nodefaults]", None, ("conda-forge",)),
        ("[nodefaults]", "[conda-forge, defaults]", ("conda-forge",)),
        ("[conda-forge, defaults]", None, ("conda-forge", "defaults")),  # no nodefaults
    ],
)
def test_nodefaults_drops_the_default_channels(
    tmp_path: Path, file_channels: str, config_channels: str | None, expected: tuple[str, ...]
) -> None:
    write(tmp_path / "environment.yml", f"channels: {file_channels}\ndependencies: [pytest]\n")
    text = "python: ['3.12']\nenvironment: environment.yml\n"
    if config_channels:
        text += f"channels: {config_channels}\n"
    assert load_config(write(tmp_path / "condamatrix.yml", text)).channels == expected


def test_nodefaults_alone_leaves_no_channel(tmp_path: Path) -> None:
    write(tmp_path / "environment.yml", "channels: [nodefaults]\ndependencies: [pytest]\n")
    with pytest.raises(ConfigError, match="'nodefaults' leaves no channel"):
        load_config(
            write(tmp_path / "condamatrix.yml", "python: ['3.12']\nenvironment: environment.yml\n")
        )


def test_spec_pinned_to_one_cuda_build_is_flagged_for_the_cells_it_cannot_fit(
    tmp_path: Path,
) -> None:
    write(
        tmp_path / "environment.yml",
        "dependencies:\n  - pytorch=2.0.1=py3.11_cuda11.8_0\n  - numpy=1.26=py311h_0\n",
    )
    config = with_build_pin_notes(
        load_config(
            write(
                tmp_path / "condamatrix.yml",
                "python: ['3.11']\ncuda: [cpu, '11.8', '12.1']\nenvironment: environment.yml\n",
            )
        )
    )
    assert config.note is not None
    assert (
        "'pytorch=2.0.1=py3.11_cuda11.8_0' is a build for CUDA 11.8 and Python 3.11 only: "
        "it cannot fit py3.11-cpu, py3.11-cu12.1"
    ) in config.note
    assert "numpy" not in config.note  # no CUDA or Python in its build string
