"""Expand the configured axes into cells, apply include/exclude, and select cells by glob."""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .config import CellRule, MatrixConfig
from .config.envfile import spec_name
from .config.envfile_checks import build_pin_note
from .errors import ConfigError, UsageError

SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
#: an id as :func:`cell_id` writes it
CELL_ID = re.compile(r"^py(?P<python>3\.\d+(?:\.\d+)?)-(?:cpu|cu(?P<cuda>\d+(?:\.\d+){0,2}))$")


@dataclass(frozen=True)
class Cell:
    """One point of the matrix: a Python version, a CUDA variant and what its env holds."""

    python: str
    cuda: str
    dependencies: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    pip: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return cell_id(self.python, self.cuda)

    @property
    def is_cuda(self) -> bool:
        return self.cuda != "cpu"

    @property
    def python_spec(self) -> str:
        """The conda spec that pins this cell's interpreter."""
        if self.python.count(".") >= 2:
            return f"python =={self.python}"
        return f"python {self.python}.*"

    @property
    def specs(self) -> tuple[str, ...]:
        """Every conda spec the env is solved for: the interpreter first."""
        return (self.python_spec, *self.dependencies)


def cell_id(python: str, cuda: str) -> str:
    """Readable, stable, file-name-safe id such as ``py3.12-cpu`` or ``py3.11-cu12.1``."""
    return f"{axis_label('python', python)}-{axis_label('cuda', cuda)}"


def axis_label(axis: str, value: str) -> str:
    """One axis value as the cell ids write it: ``py3.12``, ``cpu`` or ``cu12.1``."""
    if axis == "python":
        return f"py{value}"
    return "cpu" if value == "cpu" else f"cu{value}"


def parse_cell_id(cell: str) -> tuple[str, str] | None:
    """The (python, cuda) of an id as :func:`cell_id` writes it; None for anything else."""
    match = CELL_ID.match(cell)
    if match is None:
        return None
    return match.group("python"), match.group("cuda") or "cpu"


def cuda_specs(config: MatrixConfig, cuda: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The specs and extra channels a CUDA variant adds: ``cuda-version X.*`` unless configured."""
    if cuda == "cpu":
        variant = config.cuda_variants.get("cpu")
        return (variant.dependencies, variant.channels) if variant else ((), ())
    variant = config.cuda_variants.get(cuda)
    if variant and variant.dependencies:
        return variant.dependencies, variant.channels
    return (f"cuda-version {cuda}.*",), (variant.channels if variant else ())


def build_cells(config: MatrixConfig) -> list[Cell]:
    """All cells, in a stable order: Python major axis, CUDA minor axis, then added cells."""
    combos: list[tuple[str, str]] = [(py, cu) for py in config.python for cu in config.cuda]
    extra: dict[tuple[str, str], list[str]] = {combo: [] for combo in combos}
    for rule in config.include:
        _apply_include(rule, combos, extra)
    combos = [c for c in combos if not any(r.matches(*c) for r in config.exclude)]
    if not combos:
        raise ConfigError(
            "exclude removes every cell of the matrix",
            file=config.source_name,
            key="exclude",
            hint="narrow the exclude rules so at least one cell is left",
        )
    cells: list[Cell] = []
    for python, cuda in combos:
        variant_deps, variant_channels = cuda_specs(config, cuda)
        deps = _unique((*config.dependencies, *variant_deps, *extra[(python, cuda)]))
        if config.add_pytest and not _names_pytest(deps, config.pip):
            deps = (*deps, "pytest")  # the cell runs pytest: an env without it cannot
        if config.pip and not any(spec_name(d) == "pip" for d in deps):
            deps = (*deps, "pip")  # the pip layer runs the env's own pip
        channels = _unique((*config.channels, *variant_channels))
        cells.append(
            Cell(python=python, cuda=cuda, dependencies=deps, channels=channels, pip=config.pip)
        )
    return cells


def with_build_pin_notes(config: MatrixConfig) -> MatrixConfig:
    """The config, its note saying which cells the environment file's build pins cannot fit
    (``pytorch=2.0.1=py3.11_cuda11.8_0`` fits py3.11-cu11.8 only)."""
    if config.environment is None:
        return config
    cells = [(c.id, c.python, c.cuda) for c in build_cells(config)]
    note = build_pin_note(config.environment, cells)
    if not note:
        return config
    return dataclasses.replace(config, note="\n".join(n for n in (config.note, note) if n))


def _names_pytest(specs: Sequence[str], pip: Sequence[str]) -> bool:
    pip_names = {re.split(r"[\s\[<>=!~;@]", p.strip(), maxsplit=1)[0].lower() for p in pip}
    return any(spec_name(d) == "pytest" for d in specs) or "pytest" in pip_names


def _apply_include(
    rule: CellRule, combos: list[tuple[str, str]], extra: dict[tuple[str, str], list[str]]
) -> None:
    # GitHub-style: an entry naming both axes adds that cell if it is missing; any entry
    # extends the cells it matches with its dependencies.
    if rule.python is not None and rule.cuda is not None and (rule.python, rule.cuda) not in extra:
        combos.append((rule.python, rule.cuda))
        extra[(rule.python, rule.cuda)] = []
    for combo in combos:
        if rule.matches(*combo):
            extra[combo].extend(rule.dependencies)


def _unique(items: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def select_cells(cells: Sequence[Cell], patterns: Sequence[str]) -> list[Cell]:
    """Cells whose id matches any glob in ``patterns`` (all cells when there is none)."""
    if not patterns:
        return list(cells)
    ids = [c.id for c in cells]
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(i, pattern) for i in ids):
            raise UsageError(
                f"--conda-matrix-select {pattern!r} matches no cell",
                hint=f"cells are: {', '.join(ids)} (globs like 'py3.12-*' work)",
            )
    return [c for c in cells if any(fnmatch.fnmatchcase(c.id, p) for p in patterns)]
