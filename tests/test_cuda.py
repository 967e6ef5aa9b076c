"""CUDA variants: solve anywhere (virtual package overrides), run where a driver allows."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from conftest import MakeProject, RunMatrix
from pytest_condamatrix.envs.cpu_only import SolvedPackage, cuda_leaks, is_cuda_package
from pytest_condamatrix.envs.engines.rattler import RattlerEngine
from pytest_condamatrix.envs.host import detect_driver
from pytest_condamatrix.run import gpu as cuda
from pytest_condamatrix.run.gpu import decide


@pytest.mark.parametrize(
    ("variant", "driver", "policy", "run", "gpu", "reason"),
    [
        ("cpu", None, "skip", True, False, "CPU cell"),
        ("12.1", "12.4", "skip", True, True, ""),
        ("12.1", "12.1", "fail", True, True, ""),
        ("12.1", None, "skip", False, False, "built, not run here: no NVIDIA driver found"),
        ("12.1", None, "cpu-tests", True, False, "no NVIDIA driver found"),
        ("12.1", None, "fail", False, False, "cannot run here: no NVIDIA driver found"),
        (
            "12.1",
            "11.8",
            "skip",
            False,
            False,
            "built, not run here: driver supports CUDA 11.8, older than 12.1",
        ),
        ("11.8", "12.4", "cpu-tests", True, True, ""),
    ],
)
def test_policy(
    variant: str, driver: str | None, policy: str, run: bool, gpu: bool, reason: str
) -> None:
    decision = decide(variant, driver, policy)
    assert (decision.run, decision.gpu, decision.reason) == (run, gpu, reason)


@pytest.mark.parametrize("policy", ["skip", "cpu-tests", "fail"])
def test_require_gpu_turns_every_skip_into_a_failure(policy: str) -> None:
    decision = decide("12.1", None, policy, require_gpu=True)
    assert not decision.run
    assert "--conda-matrix-require-gpu" in decision.reason
    assert decide("12.1", "12.4", policy, require_gpu=True).gpu


def test_driver_detection_honours_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("CONDA_OVERRIDE_CUDA", "12.4")
    assert detect_driver() == "12.4"
    monkeypatch.setenv("CONDA_OVERRIDE_CUDA", "")
    assert detect_driver() is None
    monkeypatch.setenv("CONDA_OVERRIDE_CUDA", "12.4")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert detect_driver() is None


def test_no_driver_on_this_machine_without_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONDA_OVERRIDE_CUDA", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    if Path("/proc/driver/nvidia").exists():
        pytest.skip("this machine has an NVIDIA driver")
    assert detect_driver() is None


@pytest.mark.parametrize(
    ("name", "build", "expected"),
    [
        ("cuda-version", "h1", True),
        ("cudatoolkit", "h1", True),
        ("pytorch-cuda", "h1", True),
        ("pytorch", "py312_cuda12.1_cudnn8_0", True),
        ("pytorch", "cpu_py312h1", False),
        ("numpy", "py312h1", False),
        ("cudademo", "cpu_abc", False),
    ],
)
def test_cuda_package_names(name: str, build: str, expected: bool) -> None:
    assert is_cuda_package(name, build) is expected


def test_leaks_name_the_spec_that_pulled_them_in() -> None:
    solved = [
        SolvedPackage("python", "3.12.1", "h1"),
        SolvedPackage("mylib", "1.0", "py_0", ("python", "torchish >=2")),
        SolvedPackage("torchish", "2.0", "cuda121_0", ("cuda-version 12.1.*",)),
        SolvedPackage("cuda-version", "12.1", "h1"),
        SolvedPackage("numpy", "2.0", "py312"),
    ]
    leaks = cuda_leaks(["python 3.12.*", "mylib", "numpy"], solved)
    assert leaks == {"torchish=2.0=cuda121_0": ["mylib"], "cuda-version=12.1=h1": ["mylib"]}


def test_cpu_cells_solve_without_cuda_and_cuda_cells_with_their_variant(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CONDA_OVERRIDE_CUDA", "12.4")  # a driver must not leak into CPU solves
    engine = RattlerEngine(tmp_path / "pkgs", tmp_path / "repodata")
    assert not any(v.startswith("__cuda") for v in engine.virtual_packages("cpu"))
    assert "__cuda=12.1=0" in engine.virtual_packages("12.1")
    assert "__linux" in engine.virtual_packages("cpu"), "kernel version stays out of the key"


# --- real envs from the local channel ------------------------------------------------------

CUDA_TESTS = """
import os
import pytest

def test_variant_build():
    import cudademo
    assert cudademo.VARIANT == os.environ["CONDAMATRIX_CUDA"]

@pytest.mark.gpu
def test_gpu():
    assert os.environ["CONDAMATRIX_GPU"] == "1"
"""


def by_cell(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["cell"]: c for c in data["cells"]}


def cuda_project(matrix_project: MakeProject, policy: str, extra: str = "") -> None:
    matrix_project(
        python=("3.12",),
        tests=CUDA_TESTS,
        dependencies=("pytest", "cudademo"),
        extra=f'cuda = ["cpu", "11.8", "12.1"]\ncuda-policy = "{policy}"\n{extra}',
    )


@pytest.fixture
def no_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONDA_OVERRIDE_CUDA", raising=False)
    if detect_driver() is not None:
        pytest.skip("this machine has a CUDA driver: see test_real_gpu_cell")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")


@pytest.mark.integration
def test_each_variant_gets_its_build_and_skip_policy_reports_not_run(
    run_matrix: RunMatrix,
    pytester: pytest.Pytester,
    matrix_project: MakeProject,
    warm_cache: Path,
    no_driver: None,
) -> None:
    cuda_project(matrix_project, "skip")
    result, data = run_matrix(warm_cache)
    assert result.ret == 0, result.stdout.str()
    cells = by_cell(data)
    assert cells["py3.12-cpu"]["status"] == "passed"
    assert cells["py3.12-cpu"]["counts"]["skipped"] == 1  # the gpu test
    for cell in ("py3.12-cu11.8", "py3.12-cu12.1"):
        assert cells[cell]["status"] == "not-run"
        assert cells[cell]["message"] == "built, not run here: no NVIDIA driver found"
        assert any(p.startswith("cuda-version=" + cell[-4:]) for p in cells[cell]["packages"])
        assert any("=cuda" + cell[-4:].replace(".", "") for p in cells[cell]["packages"])
    assert not any(p.startswith("cuda-") for p in cells["py3.12-cpu"]["packages"])
    result.stdout.fnmatch_lines(
        ["*py3.12-cu11.8*not-run*", "*built, not run here: no NVIDIA driver found*"]
    )


@pytest.mark.integration
def test_cpu_tests_policy_runs_cuda_cells_with_gpu_tests_skipped(
    run_matrix: RunMatrix,
    pytester: pytest.Pytester,
    matrix_project: MakeProject,
    warm_cache: Path,
    no_driver: None,
) -> None:
    cuda_project(matrix_project, "cpu-tests")
    result, data = run_matrix(warm_cache)
    assert result.ret == 0, result.stdout.str()
    for cell in data["cells"]:
        assert cell["status"] == "passed"
        assert cell["counts"] == {**cell["counts"], "passed": 1, "skipped": 1}
        (gpu_test,) = [t for t in cell["tests"] if t["nodeid"].endswith("test_gpu")]
        assert gpu_test["outcome"] == "skipped"
        expected = "CPU cell" if cell["cuda"] == "cpu" else "no NVIDIA driver found"
        assert gpu_test["message"] == f"gpu test: {expected}"


@pytest.mark.integration
@pytest.mark.parametrize("how", ["policy", "option"])
def test_fail_policy_and_require_gpu_fail_cuda_cells(
    run_matrix: RunMatrix,
    pytester: pytest.Pytester,
    matrix_project: MakeProject,
    warm_cache: Path,
    no_driver: None,
    how: str,
) -> None:
    cuda_project(matrix_project, "fail" if how == "policy" else "skip")
    args = ("--conda-matrix-require-gpu",) if how == "option" else ()
    result, data = run_matrix(warm_cache, *args)
    assert result.ret == 1
    cells = by_cell(data)
    assert cells["py3.12-cpu"]["status"] == "passed"
    assert cells["py3.12-cu12.1"]["status"] == "error"
    assert "no NVIDIA driver found" in cells["py3.12-cu12.1"]["message"]


@pytest.mark.integration
def test_conda_override_cuda_stands_for_a_driver(
    run_matrix: RunMatrix,
    pytester: pytest.Pytester,
    matrix_project: MakeProject,
    warm_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("CONDA_OVERRIDE_CUDA", "11.8")
    cuda_project(matrix_project, "skip")
    result, data = run_matrix(warm_cache)
    assert result.ret == 0, result.stdout.str()
    cells = by_cell(data)
    assert cells["py3.12-cu11.8"]["status"] == "passed"
    assert cells["py3.12-cu11.8"]["counts"]["passed"] == 2  # the gpu test ran
    assert cells["py3.12-cu12.1"]["status"] == "not-run"
    assert "driver supports CUDA 11.8, older than 12.1" in cells["py3.12-cu12.1"]["message"]


@pytest.mark.integration
def test_a_cuda_package_leaking_into_a_cpu_cell_is_caught(
    run_matrix: RunMatrix, pytester: pytest.Pytester, matrix_project: MakeProject, warm_cache: Path
) -> None:
    matrix_project(
        python=("3.12",),
        extra="include = [{cuda = 'cpu', dependencies = ['cuda-version 12.1.*']}]\n",
    )
    result, data = run_matrix(warm_cache)
    assert result.ret == 1
    (cell,) = data["cells"]
    assert cell["status"] == "env-error"
    assert (
        "the CPU cell py3.12-cpu would contain CUDA packages: cuda-version=12.1" in cell["message"]
    )
    assert "pulled in by 'cuda-version 12.1.*'" in cell["message"]


@pytest.mark.gpu_host
def test_real_gpu_cell(
    run_matrix: RunMatrix, pytester: pytest.Pytester, matrix_project: MakeProject, tmp_path: Path
) -> None:
    """Opt-in: on a machine with an NVIDIA driver, a CUDA cell runs its gpu tests for real.

    Run it with ``pytest -m gpu_host tests/test_cuda.py`` on a GPU machine; elsewhere it skips.
    """
    if os.environ.get("CONDA_OVERRIDE_CUDA") is not None or detect_driver() is None:
        pytest.skip("needs a real NVIDIA driver (none detected; CONDA_OVERRIDE_CUDA must be unset)")
    driver = detect_driver() or ""
    variant = "12.1" if cuda._version_tuple(driver) >= (12, 1) else "11.8"
    matrix_project(
        python=("3.12",),
        tests=CUDA_TESTS
        + textwrap.dedent(
            """
            @pytest.mark.gpu
            def test_driver_answers():
                import ctypes
                lib = ctypes.CDLL("libcuda.so.1")
                assert lib.cuInit(0) == 0
                n = ctypes.c_int()
                assert lib.cuDeviceGetCount(ctypes.byref(n)) == 0 and n.value > 0
            """
        ),
        dependencies=("pytest", "cudademo"),
        extra=f'cuda = ["{variant}"]\n',
    )
    result, data = run_matrix(tmp_path / "cache", "--conda-matrix-require-gpu")
    assert result.ret == 0, result.stdout.str()
    (cell,) = data["cells"]
    assert cell["counts"]["passed"] == 3 and cell["counts"]["skipped"] == 0
