"""The validated configuration of a matrix: frozen dataclasses, the keys and their choices."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .envfile import EnvironmentFile

DEFAULT_CHANNELS = ("conda-forge",)
ENGINES = ("rattler", "conda", "mamba", "micromamba")
CUDA_POLICIES = ("skip", "cpu-tests", "fail")
INSTALL_MODES = ("wheel", "editable", "none")

# key -> human description of the expected type, used in messages and the reference docs
TOP_LEVEL_KEYS: dict[str, str] = {
    "python": "a list of Python versions as strings, e.g. ['3.9', '3.11', '3.12']",
    "cuda": "a list of CUDA variants as strings: 'cpu' or a version like '12.1'",
    "channels": "a list of conda channel names, URLs or local folders",
    "dependencies": "a list of conda match specs, e.g. ['numpy >=1.24']",
    "environment": "a conda environment.yml, relative to the config file: the base of every cell",
    "pip": "a list of pip requirements installed into every env after the conda packages",
    "include": "a list of tables: cells to add or extend, e.g. {python = '3.13', cuda = 'cpu'}",
    "exclude": "a list of tables: cells to drop, e.g. {python = '3.9', cuda = '12.1'}",
    "jobs": "a positive whole number of cells to run at once, or 'auto'",
    "gpu-jobs": "a positive whole number of cells that may use the GPU at once",
    "timeout": "seconds a cell may run before it is killed (a positive number)",
    "pythonpath": "a list of folders, relative to the config file, put on the cells' PYTHONPATH",
    "install": "how the project reaches the cells: 'wheel', 'editable' or 'none' "
    "(default: 'wheel' when pyproject.toml has a [build-system] table, else 'none')",
    "install-extras": "a list of the project's extras whose requirements the envs must hold",
    "pytest-args": "a list of extra arguments given to pytest in every cell",
    "engine": f"the conda engine: one of {', '.join(ENGINES)}",
    "cuda-policy": "what to do with a CUDA cell this machine cannot run: "
    + ", ".join(CUDA_POLICIES),
    "cuda-variants": "a table: per CUDA variant, its 'dependencies' and 'channels'",
    "add-pytest": "true (default) or false: add `pytest` to the specs of every cell whose "
    "dependencies name no pytest",
    "runners": "a table: GitHub Actions runs-on labels per CUDA variant ('cpu', a version "
    "like '12.1', or 'default-gpu' for every CUDA variant not named), each a label or a list",
}
#: ``runners`` key that stands for every CUDA variant without an entry of its own
DEFAULT_GPU = "default-gpu"
#: runs-on labels when ``runners`` names none: GitHub's hosted Linux runner for CPU cells,
#: a self-hosted runner with a GPU for CUDA cells (hosted runners have no NVIDIA driver)
DEFAULT_RUNNERS: dict[str, tuple[str, ...]] = {
    "cpu": ("ubuntu-latest",),
    DEFAULT_GPU: ("self-hosted", "gpu"),
}


@dataclass(frozen=True)
class CudaVariantSpec:
    """What one CUDA variant adds to a cell's environment."""

    dependencies: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()


@dataclass(frozen=True)
class CellRule:
    """One ``include`` or ``exclude`` entry: axis values, plus dependencies for ``include``."""

    python: str | None = None
    cuda: str | None = None
    dependencies: tuple[str, ...] = ()

    def matches(self, python: str, cuda: str) -> bool:
        return (self.python is None or self.python == python) and (
            self.cuda is None or self.cuda == cuda
        )


@dataclass(frozen=True)
class MatrixConfig:
    """The validated configuration of one project's matrix."""

    root: Path
    source: Path | None
    python: tuple[str, ...]
    cuda: tuple[str, ...] = ("cpu",)
    channels: tuple[str, ...] = DEFAULT_CHANNELS
    dependencies: tuple[str, ...] = ()
    pip: tuple[str, ...] = ()
    environment: EnvironmentFile | None = None
    include: tuple[CellRule, ...] = ()
    exclude: tuple[CellRule, ...] = ()
    jobs: int | None = None
    gpu_jobs: int = 1
    timeout: float | None = None
    pythonpath: tuple[Path, ...] = ()
    pytest_args: tuple[str, ...] = ()
    install: str | None = None  # None: decided from the project (see install/__init__.py)
    install_extras: tuple[str, ...] = ()
    engine: str = "rattler"
    cuda_policy: str = "skip"
    add_pytest: bool = True  # a cell whose specs name no pytest gets it: it runs pytest
    cuda_variants: Mapping[str, CudaVariantSpec] = field(default_factory=dict)
    runners: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # as configured
    note: str | None = None  # e.g. which of two config files was ignored

    @property
    def source_name(self) -> str:
        return str(self.source) if self.source else "(defaults)"

    @property
    def environment_sha(self) -> str:
        """The environment file's content hash, part of every env key ("" without one)."""
        return self.environment.sha256 if self.environment else ""

    def import_path(self, *, installed: bool) -> tuple[Path, ...]:
        """The folders on the cells' PYTHONPATH: ``pythonpath``, else ``src/`` when the
        project is not installed in the cells (its sources are then what they import)."""
        if self.pythonpath or installed or not (self.root / "src").is_dir():
            return self.pythonpath
        return (self.root / "src",)

    def runs_on(self, cuda: str) -> tuple[str, ...]:
        """The GitHub Actions ``runs-on`` labels of the cells of CUDA variant ``cuda``."""
        if cuda in self.runners:
            return self.runners[cuda]
        fallback = "cpu" if cuda == "cpu" else DEFAULT_GPU
        return self.runners.get(fallback, DEFAULT_RUNNERS[fallback])
