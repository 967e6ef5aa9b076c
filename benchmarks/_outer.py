"""Run pytest in this process and record the process's own peak memory and CPU time.

Usage: python _outer.py STATS.json PYTEST-ARGS...  (a script, not a module of the package:
it measures the outer ``pytest --conda-matrix`` process only, not the cells it starts).
"""

from __future__ import annotations

import atexit
import json
import resource
import runpy
import sys
from pathlib import Path


def _record(path: Path) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    stats = {"maxrss_kb": usage.ru_maxrss, "cpu": usage.ru_utime + usage.ru_stime}
    path.write_text(json.dumps(stats), encoding="utf-8")


def main() -> None:
    stats = Path(sys.argv[1])
    sys.argv = ["pytest", *sys.argv[2:]]
    sys.path[0] = str(Path.cwd())  # as `python -m pytest` has it, not this script's folder
    atexit.register(_record, stats)
    runpy.run_module("pytest", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
