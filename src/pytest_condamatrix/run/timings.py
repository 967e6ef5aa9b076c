"""How long each cell's tests took last time: with cells in parallel, the longest start first.

Started in matrix order, a long cell that comes last runs alone at the end while the other
slots sit idle. Started longest first (cells never seen before first of all, as they may be
the longest), the slots fill evenly. The times live in the cache, one small file per project.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from .. import atomic
from ..results import CellStatus, RunResult

#: outcomes whose time says how long the cell's tests take
TIMED = (CellStatus.PASSED, CellStatus.FAILED, CellStatus.NO_TESTS)


def timings_file(cache_root: Path, project_root: Path) -> Path:
    digest = hashlib.sha256(str(project_root).encode()).hexdigest()[:16]
    return cache_root / "timings" / f"{digest}.json"


def load_timings(path: Path) -> dict[str, float]:
    """Cell id -> seconds its tests took in the last run that finished them; {} if unknown."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        str(cell): float(seconds)
        for cell, seconds in data.items()
        if isinstance(seconds, int | float) and math.isfinite(seconds) and seconds >= 0
    }


def save_timings(path: Path, run: RunResult) -> None:
    """Record this run's times, keeping those of cells it did not run; never fails a run."""
    timings = load_timings(path)
    for cell in run.cells:
        if cell.status in TIMED:
            timings[cell.cell] = round(cell.test_seconds, 3)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(path, json.dumps(timings, sort_keys=True))  # whole or not at all


def start_order(cell_ids: Sequence[str], previous: Mapping[str, float], jobs: int) -> list[int]:
    """Indices of ``cell_ids`` in the order to start them.

    Matrix order when one cell runs at a time (the order then changes no total) or all at
    once; else cells without a time first, then the longest first (matrix order on ties).
    """
    indices = list(range(len(cell_ids)))
    if jobs <= 1 or jobs >= len(cell_ids):
        return indices
    return sorted(
        indices,
        key=lambda i: (cell_ids[i] in previous, -previous.get(cell_ids[i], 0.0), i),
    )
