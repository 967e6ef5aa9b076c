import os
import sys

import demo
import pytest


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Hello, World", "hello-world"), ("  many   spaces ", "many-spaces"), ("", "")],
)
def test_slug(text, expected):
    assert demo.slug(text) == expected


def test_word_counts_orders_by_frequency():
    assert list(demo.word_counts("b a b c b a")) == ["b", "a", "c"]


def test_each_cell_runs_its_own_python():
    cell_python = os.environ.get("CONDAMATRIX_PYTHON")
    if cell_python is None:
        pytest.skip("not running inside a conda matrix cell")
    assert demo.interpreter() == cell_python


def test_interpreter_comes_from_a_conda_env():
    if "CONDAMATRIX_CELL" not in os.environ:
        pytest.skip("not running inside a conda matrix cell")
    assert os.path.isdir(os.path.join(sys.prefix, "conda-meta"))


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is new in Python 3.11")
def test_tomllib_reads_the_project_file():
    import tomllib

    assert tomllib.loads('name = "demo"')["name"] == "demo"


@pytest.mark.skipif(sys.version_info < (3, 10), reason="zip(strict=) is new in Python 3.10")
def test_zip_strict():
    with pytest.raises(ValueError):
        list(zip([1, 2], [1], strict=True))


def test_each_cell_gets_its_own_cuda_build():
    if "CONDAMATRIX_CUDA" not in os.environ:
        pytest.skip("not running inside a conda matrix cell")
    import cudademo

    assert cudademo.VARIANT == os.environ["CONDAMATRIX_CUDA"]


@pytest.mark.gpu
def test_the_gpu_answers():
    # Talks to the driver directly, so it needs no CUDA toolkit in the env.
    import ctypes

    cuda = ctypes.CDLL("libcuda.so.1")
    assert cuda.cuInit(0) == 0
    count = ctypes.c_int()
    assert cuda.cuDeviceGetCount(ctypes.byref(count)) == 0
    assert count.value > 0
