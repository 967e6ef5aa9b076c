"""What a benchmark run measures: workloads, matrices, tools, repeats (quick and full plans).

Adding a matrix or a workload to a run is a change to the tables here, nothing else: every
measurement takes its cells from :class:`Matrix` and its project from :class:`Workload`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pytest_condamatrix.matrix import cell_id

#: tools compared on warm runs; see ``benchmarks.tools`` for what each runs
TOOLS = (
    "direct",  # <prefix>/bin/python -m pytest in each env, one after the other: the limit
    "condamatrix-j1",  # pytest --conda-matrix --conda-matrix-jobs 1
    "condamatrix-j2",  # pytest --conda-matrix --conda-matrix-jobs 2
    "condamatrix-j3",  # one job per cell: more jobs than the 2 cores of the reference machine
    "outer-alone",  # pytest --conda-matrix --conda-matrix-list: the outer process, no cell
    "nox",  # nox -R, virtualenv backend (nox's default)
    "nox-uv",  # nox -R, uv backend
    "nox-rattler",  # nox -R, rattler backend (conda envs from the same local channel)
    "tox",  # tox run (virtualenv), sequential
    "tox-p2",  # tox run-parallel -p 2
)
#: tools compared on cold runs (new envs; see ``benchmarks.measure.cold_runs``)
COLD_TOOLS = ("condamatrix", "condamatrix-pkgs", "nox", "nox-uv", "nox-rattler", "tox")
SECTIONS = ("runs", "decision", "build", "cold", "streaming")


@dataclass(frozen=True)
class Matrix:
    """The cells of a run: every Python x every CUDA variant."""

    name: str
    pythons: tuple[str, ...]
    cuda: tuple[str, ...] = ("cpu",)

    @property
    def cell_ids(self) -> tuple[str, ...]:
        return tuple(cell_id(py, cu) for py in self.pythons for cu in self.cuda)

    @property
    def cells(self) -> int:
        return len(self.pythons) * len(self.cuda)

    @property
    def is_cuda(self) -> bool:
        return any(c != "cpu" for c in self.cuda)

    def only(self, pythons: tuple[str, ...]) -> Matrix:
        """The same matrix without the Pythons this machine lacks."""
        return replace(self, pythons=tuple(p for p in self.pythons if p in pythons))


@dataclass(frozen=True)
class Workload:
    """A project whose test suite every tool runs: the demo, or a generated suite."""

    name: str
    tests: int = 0  # generated suites: number of tests (0: the demo project as it is)
    files: int = 0  # generated suites: number of test modules

    @property
    def generated(self) -> bool:
        return self.tests > 0


@dataclass(frozen=True)
class Scenario:
    """One workload on one matrix, timed with each tool ``repeats`` times (interleaved)."""

    workload: str
    matrix: str
    tools: tuple[str, ...]
    repeats: int


@dataclass(frozen=True)
class Plan:
    mode: str
    scenarios: tuple[Scenario, ...]
    decision_matrix: str  # cells whose cache-hit decision is timed in-process
    decision_rounds: int
    build_matrix: str  # cells built from a warm and from an empty package cache
    cold_workload: str
    cold_matrix: str
    cold_tools: tuple[str, ...]
    cold_repeats: int
    streaming_workload: str  # run in one env with and without the worker plugin
    streaming_repeats: int
    memory_workload: str  # the outer process's peak memory is checked on this workload ...
    memory_matrix: str  # ... and this matrix (target: <= 100 MB)

    def with_repeats(self, repeats: int) -> Plan:
        return replace(self, scenarios=tuple(replace(s, repeats=repeats) for s in self.scenarios))


PYTHONS = ("3.9", "3.11", "3.12")
MATRICES = {
    "cpu3": Matrix("cpu3", PYTHONS),
    "cuda9": Matrix("cuda9", PYTHONS, ("cpu", "11.8", "12.1")),
}
WORKLOADS = {
    "demo": Workload("demo"),
    "suite-1k": Workload("suite-1k", tests=1_000, files=50),
    "suite-10k": Workload("suite-10k", tests=10_000, files=200),
}
WARM = ("direct", "condamatrix-j1", "condamatrix-j2", "outer-alone")
ALL_WARM = TOOLS

QUICK = Plan(
    mode="quick",
    scenarios=(
        Scenario("demo", "cpu3", (*WARM, "nox"), repeats=1),
        Scenario("suite-1k", "cpu3", WARM, repeats=1),
    ),
    decision_matrix="cpu3",
    decision_rounds=10,
    build_matrix="cpu3",
    cold_workload="demo",
    cold_matrix="cpu3",
    cold_tools=("condamatrix",),
    cold_repeats=1,
    streaming_workload="suite-1k",
    streaming_repeats=1,
    memory_workload="suite-1k",
    memory_matrix="cpu3",
)

FULL = Plan(
    mode="full",
    scenarios=(
        Scenario("demo", "cpu3", ALL_WARM, repeats=5),
        Scenario("demo", "cuda9", WARM, repeats=3),
        Scenario("suite-1k", "cpu3", ALL_WARM, repeats=3),
        Scenario("suite-1k", "cuda9", WARM, repeats=2),
        # the longest: fewer tools, one more repeat (its 5% margins need it)
        Scenario("suite-10k", "cpu3", (*WARM, "condamatrix-j3", "nox", "tox-p2"), repeats=3),
    ),
    decision_matrix="cuda9",
    decision_rounds=30,
    build_matrix="cuda9",
    cold_workload="demo",
    cold_matrix="cpu3",
    cold_tools=COLD_TOOLS,
    cold_repeats=2,
    streaming_workload="suite-10k",
    streaming_repeats=3,
    memory_workload="suite-1k",
    memory_matrix="cuda9",
)

PLANS = {"quick": QUICK, "full": FULL}
