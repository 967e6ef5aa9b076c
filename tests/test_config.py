"""Configuration loading and validation: every bad value gets a message naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_condamatrix.config import load_config, parse_config
from pytest_condamatrix.errors import ConfigError, ExitCode


def write_pyproject(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "pyproject.toml"
    path.write_text("[tool.condamatrix]\n" + body, encoding="utf-8")
    return path


def test_minimal_pyproject_gets_defaults(tmp_path: Path) -> None:
    config = load_config(write_pyproject(tmp_path, 'python = ["3.11", "3.12"]\n'))
    assert config.python == ("3.11", "3.12")
    assert config.cuda == ("cpu",)
    assert config.channels == ("conda-forge",)
    assert config.dependencies == ()
    assert config.jobs is None and config.timeout is None
    assert config.source == tmp_path / "pyproject.toml"


def test_full_pyproject(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "chan").mkdir()
    config = load_config(
        write_pyproject(
            tmp_path,
            """
python = ["3.9", "3.12"]
cuda = ["cpu", "12.1"]
channels = ["./chan", "conda-forge"]
dependencies = ["numpy >=1.24"]
exclude = [{python = "3.9", cuda = "12.1"}]
include = [{python = "3.13", cuda = "cpu"}]
jobs = 2
timeout = 60
pythonpath = ["src"]
pytest-args = ["-q"]
cuda-policy = "cpu-tests"
[tool.condamatrix.cuda-variants."12.1"]
dependencies = ["pytorch-cuda=12.1"]
channels = ["nvidia"]
""",
        )
    )
    assert config.channels == (str(tmp_path / "chan"), "conda-forge")
    assert config.jobs == 2 and config.timeout == 60.0
    assert config.pythonpath == (tmp_path / "src",)
    assert config.cuda_variants["12.1"].dependencies == ("pytorch-cuda=12.1",)
    assert config.exclude[0].python == "3.9"
    assert config.cuda_policy == "cpu-tests"


def test_yaml_wins_over_pyproject_and_says_so(tmp_path: Path) -> None:
    write_pyproject(tmp_path, 'python = ["3.11"]\n')
    (tmp_path / "condamatrix.yml").write_text("python: ['3.12']\n", encoding="utf-8")
    config = load_config(start=tmp_path)
    assert config.python == ("3.12",)
    assert config.note and "ignored" in config.note


def test_config_found_from_a_subfolder(tmp_path: Path) -> None:
    write_pyproject(tmp_path, 'python = ["3.11"]\n')
    (tmp_path / "tests" / "unit").mkdir(parents=True)
    assert load_config(start=tmp_path / "tests" / "unit").root == tmp_path


# Each case: (file name, content, words the message must contain)
BAD_CONFIGS = [
    ("pyproject.toml", "[tool.condamatrix\npython = 1", ["invalid TOML"]),
    ("pyproject.toml", "[project]\nname='x'\n", ["no [tool.condamatrix] table"]),
    ("condamatrix.yml", "python: [3.9\n", ["invalid YAML", "line"]),
    ("condamatrix.yml", "- 3.9\n", ["table of keys"]),
    ("condamatrix.yml", "cuda: ['cpu']\n", ["python", "missing required key"]),
    ("condamatrix.yml", "python: '3.12'\n", ["python", "expected a list"]),
    ("condamatrix.yml", "python: []\n", ["python", "empty"]),
    ("condamatrix.yml", "python: [3.10]\n", ["python[0]", "number", "'3.1'"]),
    ("condamatrix.yml", "python: ['three']\n", ["python[0]", "not a Python version"]),
    ("condamatrix.yml", "python: ['3.8']\n", ["python[0]", "3.9 or newer"]),
    ("condamatrix.yml", "python: ['3.12', '3.12']\n", ["python", "twice"]),
    ("condamatrix.yml", "python: ['3.12']\ncuda: ['gpu']\n", ["cuda[0]", "not a CUDA variant"]),
    ("condamatrix.yml", "python: ['3.12']\npyton: 1\n", ["pyton", "did you mean 'python'"]),
    (
        "condamatrix.yml",
        "python: ['3.12']\ndependencies: ['numpy >=>1']\n",
        ["dependencies[0]", "match spec"],
    ),
    (
        "condamatrix.yml",
        "python: ['3.12']\ndependencies: ['python 3.12']\n",
        ["dependencies[0]", "python axis"],
    ),
    ("condamatrix.yml", "python: ['3.12']\ndependencies: [1]\n", ["dependencies[0]", "string"]),
    ("condamatrix.yml", "python: ['3.12']\nchannels: []\n", ["channels", "no channels"]),
    (
        "condamatrix.yml",
        "python: ['3.12']\nchannels: ['./nowhere']\n",
        ["channels[0]", "does not exist"],
    ),
    ("condamatrix.yml", "python: ['3.12']\njobs: 0\n", ["jobs", "positive whole number"]),
    ("condamatrix.yml", "python: ['3.12']\njobs: true\n", ["jobs"]),
    ("condamatrix.yml", "python: ['3.12']\ngpu-jobs: 0\n", ["gpu-jobs", "positive whole number"]),
    ("condamatrix.yml", "python: ['3.12']\ngpu-jobs: auto\n", ["gpu-jobs", "two GPUs"]),
    ("condamatrix.yml", "python: ['3.12']\ntimeout: -5\n", ["timeout", "positive number"]),
    ("condamatrix.yml", "python: ['3.12']\nengine: condaa\n", ["engine", "not allowed"]),
    ("condamatrix.yml", "python: ['3.12']\ncuda-policy: maybe\n", ["cuda-policy", "not allowed"]),
    (
        "condamatrix.yml",
        "python: ['3.12']\nexclude: ['3.12']\n",
        ["exclude[0]", "expected a table"],
    ),
    (
        "condamatrix.yml",
        "python: ['3.12']\nexclude: [{pyhton: '3.12'}]\n",
        ["exclude[0].pyhton", "did you mean"],
    ),
    (
        "condamatrix.yml",
        "python: ['3.12']\ninclude: [{dependencies: ['x']}]\n",
        ["include[0]", "names no axis"],
    ),
    (
        "condamatrix.yml",
        "python: ['3.12']\nexclude: [{python: 3.12}]\n",
        ["exclude[0].python", "not a string"],
    ),
    (
        "condamatrix.yml",
        "python: ['3.12']\ninclude: [{python: '2.7', cuda: 'cpu'}]\n",
        ["include[0].python"],
    ),
    (
        "condamatrix.yml",
        "python: ['3.12']\npythonpath: ['nope']\n",
        ["pythonpath[0]", "does not exist"],
    ),
    (
        "condamatrix.yml",
        "python: ['3.12']\ncuda-variants: {'11.8': {}}\n",
        ["cuda-variants.11.8", "not on the cuda axis"],
    ),
    (
        "condamatrix.yml",
        "python: ['3.12']\ncuda: ['cpu', '12.1']\ncuda-variants: {'12.1': {deps: []}}\n",
        ["cuda-variants.12.1.deps"],
    ),
    (
        "condamatrix.yml",
        "python: ['3.12']\npytest-args: '-q'\n",
        ["pytest-args", "expected a list"],
    ),
    (
        "condamatrix.yml",
        "python: ['3.12']\nrunners: ['ubuntu-latest']\n",
        ["runners", "expected a table keyed by CUDA variant"],
    ),
    (
        "condamatrix.yml",
        "python: ['3.12']\ncuda: ['cpu', '12.1']\nrunners: {12.1: gpu}\n",
        ["runners.12.1", "not a string", "quote"],
    ),
    (
        "pyproject.toml",
        "[tool.condamatrix]\npython = ['3.12']\ncuda = ['cpu', '12.1']\nrunners = {12.1 = 'gpu'}\n",
        ["runners.12", "not on the cuda axis", 'quote CUDA versions used as keys: "12.1"'],
    ),
    (
        "condamatrix.yml",
        "python: ['3.12']\nrunners: {'11.8': gpu}\n",
        ["runners.11.8", "not on the cuda axis", "default-gpu"],
    ),
    (
        "condamatrix.yml",
        "python: ['3.12']\nrunners: {cpu: []}\n",
        ["runners.cpu", "non-empty list of labels"],
    ),
    (
        "condamatrix.yml",
        "python: ['3.12']\nrunners: {cpu: 3}\n",
        ["runners.cpu", "non-empty list of labels", "got 3"],
    ),
    (
        "condamatrix.yml",
        "python: ['3.12']\nrunners: {cpu: ['linux', '']}\n",
        ["runners.cpu[1]", "not a runner label"],
    ),
    (
        "condamatrix.yml",
        "python: ['3.12']\nrunners: {cpu: ' ubuntu-latest'}\n",
        ["runners.cpu", "not a runner label", "no surrounding spaces"],
    ),
    (
        "condamatrix.yml",
        "python: ['3.12']\nruners: {}\n",
        ["runers", "did you mean 'runners'"],
    ),
]


@pytest.mark.parametrize(("name", "content", "words"), BAD_CONFIGS)
def test_bad_config_names_file_key_and_fix(
    tmp_path: Path, name: str, content: str, words: list[str]
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    for word in words:
        assert word in message
    assert info.value.exit_code == ExitCode.USAGE_ERROR


def test_missing_config_says_how_to_add_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no matrix configuration found[\s\S]*tool.condamatrix"):
        load_config(start=tmp_path)


def test_exclude_everything_is_an_error(tmp_path: Path) -> None:
    from pytest_condamatrix.matrix import build_cells

    config = parse_config(
        {"python": ["3.12"], "exclude": [{"python": "3.12"}]},
        source=tmp_path / "x.yml",
        root=tmp_path,
    )
    with pytest.raises(ConfigError, match="removes every cell"):
        build_cells(config)


def test_runners_default_per_cuda_variant(tmp_path: Path) -> None:
    config = load_config(write_pyproject(tmp_path, 'python = ["3.12"]\ncuda = ["cpu", "12.1"]\n'))
    assert config.runs_on("cpu") == ("ubuntu-latest",)
    assert config.runs_on("12.1") == ("self-hosted", "gpu")


def test_runners_per_variant_then_default_gpu(tmp_path: Path) -> None:
    config = load_config(
        write_pyproject(
            tmp_path,
            'python = ["3.12"]\ncuda = ["cpu", "11.8", "12.1"]\n'
            "include = [{python = '3.12', cuda = '12.4'}]\n"
            '[tool.condamatrix.runners]\ncpu = "linux-big"\n"12.1" = ["self-hosted", "a100"]\n'
            '"12.4" = "h100"\ndefault-gpu = ["self-hosted", "cuda"]\n',
        )
    )
    assert config.runs_on("cpu") == ("linux-big",)
    assert config.runs_on("12.1") == ("self-hosted", "a100")
    assert config.runs_on("12.4") == ("h100",)  # a variant added by include may be named
    assert config.runs_on("11.8") == ("self-hosted", "cuda")


def test_specs_read_without_rattler_are_specs_rattler_reads_alike() -> None:
    """The common spec shapes are read without importing rattler (on every run); each of
    them must be a spec rattler accepts, naming the same package, and the others go to
    rattler."""
    import itertools

    from rattler import MatchSpec

    from pytest_condamatrix.config.fields import SIMPLE_SPEC, spec_name

    names = ("numpy", "cuda-version", "pytest_cov", "ruamel.yaml", "r-base", "x264")
    constraints = (
        "", " 1", "=12.1", " =12.1", "==1.26.4", ">=1.24", " >=1.24,<2", ">1,<=2.0,!=1.5",
        "<3", " 1.2.*", "=1.2.*", "==1.2.*", " >= 1.2.*", " 1.24", "=10.20.30.40",
    )  # fmt: skip
    for name, constraint in itertools.product(names, constraints):
        spec = name + constraint
        assert SIMPLE_SPEC.match(spec), spec
        assert spec_name(spec) == MatchSpec(spec, strict=False).name.normalized == name
    for other in ("numpy=1.26=py312_0", "conda-forge::numpy", "numpy[version='>=1.2']", "NumPy"):
        assert not SIMPLE_SPEC.match(other)
        assert spec_name(other) == MatchSpec(other, strict=False).name.normalized
    for bad in ("numpy >=", "1numpy ==", ">=1.2", "numpy ==1..2", "numpy1.2.*", ""):
        assert not SIMPLE_SPEC.match(bad), bad


def test_a_version_number_rattler_cannot_hold_is_refused_as_it_was() -> None:
    """rattler keeps each number of a version in 64 bits: a longer one is no spec to it, so
    the shapes read without rattler must not take it (the config error comes at load)."""
    from rattler import MatchSpec

    from pytest_condamatrix.config.fields import spec_name

    for spec in (
        "numpy 99999999999999999999",
        "numpy >=1.18446744073709551616",
        "x=1,<2" + "0" * 20,
    ):
        with pytest.raises(Exception, match="invalid number"):
            MatchSpec(spec, strict=False)
        with pytest.raises(ValueError, match="invalid number"):
            spec_name(spec)
    assert spec_name("numpy 18446744073709551615") == "numpy"  # the largest it holds
