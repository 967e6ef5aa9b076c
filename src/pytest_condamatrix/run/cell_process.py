"""A cell's inner pytest as a process: its variables, its argv, the gate it waits at, its end.

The cell runs ``<prefix>/bin/python -m pytest <args> -p _condamatrix_worker`` in a process
group of its own (processes.py). The worker imports pytest and its plugins, then waits at
its gate (before any conftest.py or test is imported) for a word on ``CONDAMATRIX_GO_FD``:
the variables to set once it may go (JSON), or the pipe's end without a word, to exit.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from .. import processes
from ..matrix import Cell
from ..options import FLAG_OPTIONS, VALUE_OPTIONS, strip_addopts
from .cellenv import cell_variables
from .gpu import GpuDecision

WORKER_MODULE = "_condamatrix_worker"
POLL_SECONDS = 0.05
GO_FD_VAR = "CONDAMATRIX_GO_FD"  # the worker waits for its word (JSON) on this fd to go on
#: our options, which the worker accepts and ignores (the cells read the ini's addopts too)
OUTER_OPTIONS_VAR = "CONDAMATRIX_OUTER_OPTIONS"
OUTER_OPTIONS_JSON = json.dumps({"flags": FLAG_OPTIONS, "values": VALUE_OPTIONS})


def cell_environ(
    cell: Cell,
    gpu: GpuDecision,
    prefix: Path,
    *,
    pythonpath: Sequence[str],
    path: Sequence[str],
    extra_env: Mapping[str, str],
    all_reports: bool,
) -> dict[str, str]:
    """What the cell's pytest sees: the outer variables (less the outer Python's), the cell's
    import path, its env's ``bin`` after the ``path`` entries, who it is."""
    environ = cell_variables(cell, gpu, pythonpath, {**os.environ, **extra_env})
    bins = [*path, str(prefix / "bin")]
    environ["PATH"] = os.pathsep.join([*bins, environ.get("PATH", "")])
    environ["CONDA_PREFIX"] = str(prefix)
    environ[OUTER_OPTIONS_VAR] = OUTER_OPTIONS_JSON
    # every report in full only when a plugin of the outer run listens: it costs more
    environ["CONDAMATRIX_REPORTS"] = "all" if all_reports else "short"
    if "PYTEST_ADDOPTS" in environ:
        environ["PYTEST_ADDOPTS"] = strip_addopts(environ["PYTEST_ADDOPTS"])
    return environ


def cell_argv(
    python: Path, cell: Cell, stream: Path, pytest_args: Sequence[str], *, cell_cache: bool
) -> list[str]:
    argv = [str(python), "-m", "pytest", "-p", WORKER_MODULE]
    argv.append(f"--condamatrix-stream={stream}")
    if cell_cache:
        argv += ["-o", f"cache_dir=.pytest_cache/condamatrix/{cell.id}"]
    argv += pytest_args
    return argv


def start_at_gate(
    argv: Sequence[str], environ: dict[str, str], cwd: Path, output: IO[bytes]
) -> tuple[subprocess.Popen[bytes], int]:
    """Start the cell, which waits at its gate; returns it and the fd to send its word on."""
    gate, go = os.pipe()
    environ[GO_FD_VAR] = str(gate)
    try:
        proc = processes.spawn(argv, env=environ, cwd=cwd, output=output, pass_fds=(gate,))
    except BaseException:
        os.close(go)
        raise
    finally:
        os.close(gate)
    return proc, go


def let_go(go: int, word: Mapping[str, str]) -> None:
    """Tell the waiting worker to go on, with the variables to set first."""
    with contextlib.suppress(OSError):  # it died starting: its exit code says so
        os.write(go, json.dumps(dict(word)).encode())


def gpu_word(slot: int, gpu_jobs: int, devices: Sequence[str]) -> dict[str, str]:
    """What the worker sets once it may go: with several GPU slots, each its device."""
    if slot < 0 or gpu_jobs <= 1:
        return {}
    devices = devices or tuple(str(i) for i in range(gpu_jobs))
    return {"CUDA_VISIBLE_DEVICES": devices[slot % len(devices)]}


class ExitWaiter:
    """Pauses between two looks at a running cell, and wakes up as soon as the cell ends.

    On Linux one ``select`` on a pidfd per pause; elsewhere ``Popen.wait`` with a timeout
    (which polls, costing more CPU). A plain sleep would add up to a whole pause per cell.
    """

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.fd: int | None = None
        pidfd_open = getattr(os, "pidfd_open", None)
        if pidfd_open is not None:
            with contextlib.suppress(OSError):
                self.fd = pidfd_open(proc.pid)

    def wait(self, seconds: float) -> None:
        if self.fd is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(seconds)
        else:
            select.select([self.fd], [], [], seconds)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
