"""The figures every scenario records, and the scale (default or ``--stress``) they run at.

Each scenario adds what it measured (runs, kills, cases, failures, durations) to one
session-wide collector; the end of the session prints them and writes them as JSON to
``$CONDAMATRIX_FIGURES`` or, by default, into the session's temporary folder (never into the
clone: docs/reliability.md holds the figures worth keeping).
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

FIGURES_KEY = pytest.StashKey["Figures"]()


@dataclass
class Figures:
    """Scenario name -> figure name -> value; added to by the tests, printed at the end."""

    stress: bool
    data: dict[str, dict[str, Any]] = field(default_factory=dict)
    path: Path | None = None  # where the JSON goes; set by the first test that records

    def record(self, scenario: str, **values: Any) -> None:
        self.data.setdefault(scenario, {}).update(values)

    def add(self, scenario: str, name: str, amount: float = 1) -> None:
        figures = self.data.setdefault(scenario, {})
        figures[name] = figures.get(name, 0) + amount

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": "stress" if self.stress else "default",
            "host": {"machine": platform.machine(), "cpus": os.cpu_count()},
            "written_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "scenarios": self.data,
        }


@dataclass(frozen=True)
class Scale:
    """How hard each scenario pushes: the default keeps the suite short, --stress does not."""

    stress: bool

    def pick(self, default: int, stress: int) -> int:
        return stress if self.stress else default


def pytest_configure(config: pytest.Config) -> None:
    config.stash[FIGURES_KEY] = Figures(stress=bool(config.getoption("--stress")))


@pytest.fixture(scope="session")
def figures(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Figures:
    collected = pytestconfig.stash[FIGURES_KEY]
    explicit = os.environ.get("CONDAMATRIX_FIGURES")
    collected.path = (
        Path(explicit) if explicit else tmp_path_factory.getbasetemp() / "reliability-figures.json"
    )
    return collected


@pytest.fixture(scope="session")
def scale(pytestconfig: pytest.Config) -> Scale:
    return Scale(stress=bool(pytestconfig.getoption("--stress")))


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    collected = config.stash.get(FIGURES_KEY, None)
    if collected is None or not collected.data or collected.path is None:
        return
    path = collected.path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(collected.to_json(), indent=1, sort_keys=True) + "\n")
    mode = "stress" if collected.stress else "default"
    terminalreporter.write_sep("=", f"reliability figures ({mode})")
    for scenario in sorted(collected.data):
        values = collected.data[scenario]
        shown = ", ".join(f"{k}={_show(v)}" for k, v in sorted(values.items()))
        terminalreporter.write_line(f"{scenario}: {shown}")
    terminalreporter.write_line(f"written to {path}")


def _show(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)
