"""One matrix run from start to end: config, cells, envs, runner, reports, exit code.

Shared by the pytest plugin (``pytest --conda-matrix``) and the ``condamatrix`` command.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs
from rich.console import Console
from rich.text import Text

from ..config import MatrixConfig, load_config, resolve_channel
from ..envs import host
from ..envs.cache import EnvCache
from ..envs.engines import Engine, make_engine
from ..envs.host import run_facts
from ..envs.layout import host_dir, new_run_dir
from ..envs.lock import LOCK_NAME, MatrixLock
from ..envs.spec import EnvSpec, make_spec
from ..errors import ConfigError, ExitCode, UsageError
from ..install import InstallSettings
from ..matrix import Cell, build_cells, select_cells, with_build_pin_notes
from ..report.live import make_reporter
from ..report.terminal import render_run
from ..results import CellResult, TestResult
from .protocol import Reporter, ReportRelay
from .report_files import check_report_paths, write_reports
from .runner import MatrixRunner, RunOptions
from .timings import load_timings, save_timings, timings_file

if TYPE_CHECKING:  # the CLI runs a session without importing pytest
    import pytest

CACHE_ENV_VAR = "CONDAMATRIX_CACHE_DIR"


@dataclass(frozen=True)
class SessionOptions:
    """What the command line asked for (pytest options or ``condamatrix`` arguments)."""

    cwd: Path
    config_path: Path | None = None
    select: tuple[str, ...] = ()
    jobs: int | None = None
    gpu_jobs: int | None = None
    rebuild: bool = False
    require_gpu: bool = False
    locked: bool = False
    engine: str | None = None  # overrides the configured engine
    install: str | None = None  # overrides the configured install mode
    cache_dir: Path | None = None
    json_path: Path | None = None
    junit_path: Path | None = None
    markdown_path: Path | None = None
    channels: tuple[str, ...] = ()
    timeout: float | None = None
    list_only: bool = False
    pytest_args: tuple[str, ...] = ()
    verbosity: int = 0
    extra_env: dict[str, str] = field(default_factory=dict)
    #: pytest's --maxfail (-x: 1), applied across the matrix
    maxfail: int = 0
    collect_only: bool = False
    #: pytest's -r characters, resolved (default "fE")
    reportchars: str = "fE"
    #: per-cell pytest caches (off with -p no:cacheprovider)
    cell_caches: bool = True


def cache_root(explicit: Path | None) -> Path:
    if explicit is not None:
        return explicit.expanduser().resolve()
    env = os.environ.get(CACHE_ENV_VAR)
    if env:
        return Path(env).expanduser().resolve()
    return Path(platformdirs.user_cache_dir("pytest-condamatrix", appauthor=False))


def load_matrix(options: SessionOptions) -> tuple[MatrixConfig, list[Cell]]:
    config = load_config(
        (options.cwd / options.config_path) if options.config_path else None, start=options.cwd
    )
    if options.channels:
        channels = tuple(
            resolve_channel(c, options.cwd, where="--conda-matrix-channel", key=c)
            for c in options.channels
        )
        config = dataclasses.replace(config, channels=channels)
    config = with_build_pin_notes(config)
    cells = select_cells(build_cells(config), options.select)
    return config, cells


class _HookedReporter:
    """Passes progress on to the terminal reporter and calls our pytest hooks."""

    def __init__(self, inner: Reporter, config: pytest.Config) -> None:
        self.inner = inner
        self.config = config

    def cell_phase(self, cell: str, phase: str) -> None:
        self.inner.cell_phase(cell, phase)

    def cell_collected(self, cell: str, count: int) -> None:
        self.inner.cell_collected(cell, count)

    def test_done(self, cell: str, test: TestResult) -> None:
        self.inner.test_done(cell, test)

    def cell_done(self, result: CellResult) -> None:
        self.inner.cell_done(result)
        self.config.hook.pytest_condamatrix_cell_finished(config=self.config, result=result)


def run_session(
    options: SessionOptions, console: Console, *, pytest_config: pytest.Config | None = None
) -> ExitCode:
    config, cells = load_matrix(options)
    if pytest_config is not None:
        changed = pytest_config.hook.pytest_condamatrix_modify_cells(
            config=pytest_config, cells=list(cells)
        )
        if changed is not None:
            cells = list(changed)
        if not cells:
            raise UsageError("pytest_condamatrix_modify_cells left no cell to run")
    if options.list_only:
        for cell in cells:
            console.print(
                f"{cell.id}  python={cell.python} cuda={cell.cuda}  " + " ".join(cell.specs)
            )
        return ExitCode.OK
    check_report_paths(options)  # now, not after a run whose results would then be lost
    root = cache_root(options.cache_dir)
    cache = EnvCache(root, project=str(config.root))
    host.keep_facts_in(host_dir(root))  # a warm run then never imports rattler
    lock = load_lock(config)
    engine = make_engine(options.engine or config.engine, root, lock=lock)
    locked = locked_cells(lock, cells, engine, options.locked, console)
    install = InstallSettings.from_config(config, options.install, root)
    pythonpath = config.import_path(installed=install.mode != "none")
    run_dir = new_run_dir(root)
    timings = timings_file(root, config.root)
    jobs = options.jobs or config.jobs or min(len(cells), os.cpu_count() or 1)
    console.print(
        Text(
            f"conda matrix: {len(cells)} cells from {config.source_name}, jobs={jobs}, "
            f"cache {root}",
            style="bold",
        )
    )
    if config.note:
        console.print(Text(config.note, style="yellow"))
    reporter = make_reporter(console, [c.id for c in cells], options.verbosity)
    hooked: Reporter = (
        _HookedReporter(reporter, pytest_config) if pytest_config is not None else reporter
    )
    runner = MatrixRunner(
        RunOptions(
            cache=cache,
            engine=engine,
            run_dir=run_dir,
            cwd=options.cwd,
            jobs=jobs,
            gpu_jobs=options.gpu_jobs or config.gpu_jobs,
            gpu_devices=visible_devices(),
            timeout=options.timeout or config.timeout,
            rebuild=options.rebuild,
            pytest_args=(*config.pytest_args, *options.pytest_args),
            pythonpath=pythonpath,
            install=install,
            cuda_policy=config.cuda_policy,
            require_gpu=options.require_gpu,
            extra_env=options.extra_env,
            environment_sha=config.environment_sha,
            locked=locked,
            previous_seconds=load_timings(timings),
            maxfail=options.maxfail,
            cell_caches=options.cell_caches,
            relay=ReportRelay(pytest_config),
        ),
        hooked,
    )
    with reporter, _terminate_as_interrupt():
        run = runner.run(cells, engine.platform)
    save_timings(timings, run)
    run.config = config.source_name
    run.host = run_facts(engine)
    if pytest_config is not None:
        pytest_config.hook.pytest_condamatrix_run_finished(config=pytest_config, run=run)
    notes = [f"logs: {run_dir}", *write_reports(run, options)]
    render_run(
        console,
        run,
        notes=notes,
        verbosity=options.verbosity,
        reportchars=options.reportchars,
        collect_only=options.collect_only,
    )
    return run.exit_code


def visible_devices() -> tuple[str, ...]:
    """The GPUs this run may hand out to its cells: ``CUDA_VISIBLE_DEVICES``, if set."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    return tuple(d.strip() for d in value.split(",") if d.strip())


def load_lock(config: MatrixConfig) -> MatrixLock | None:
    path = config.root / LOCK_NAME
    return MatrixLock(path) if path.is_file() else None


def locked_cells(
    lock: MatrixLock | None,
    cells: Sequence[Cell],
    engine: Engine,
    required: bool,
    console: Console,
) -> dict[str, tuple[str, ...]]:
    """Cell id -> locked package identities, for the cells the lock still fits."""
    if lock is None:
        if required:
            raise UsageError(
                f"--conda-matrix-locked: there is no {LOCK_NAME}",
                hint="create it with `condamatrix lock`",
            )
        return {}
    locked: dict[str, tuple[str, ...]] = {}
    for cell in cells:
        identities, why = lock.identities(cell.id, cell.channels, cell.specs, engine.platform)
        if identities is not None:
            locked[cell.id] = identities
            continue
        message = f"{lock.path} is out of date for cell {cell.id}: {why}"
        if required:
            raise ConfigError(message, hint="update it with `condamatrix lock`")
        console.print(Text(message + " (solving instead)", style="yellow"))
    return locked


def locked_spec(
    config: MatrixConfig,
    cell: Cell,
    engine: Engine,
    lock: MatrixLock | None,
    console: Console,
) -> EnvSpec:
    """One cell's env spec as a run makes it: its locked packages when the lock still fits
    it (else it is solved, and ``console`` says why)."""
    locked = locked_cells(lock, [cell], engine, False, console)
    return make_spec(
        cell,
        engine,
        engine.platform,
        environment_sha=config.environment_sha,
        locked=locked.get(cell.id, ()),
    )


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """Make SIGTERM (docker stop, a cancelled CI job) end the run as Ctrl-C does.

    By default SIGTERM kills this process on the spot: the cells' pytest, each in a session
    of its own, would go on running unseen, and the results so far would be lost.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set signal handlers
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        if previous is not None:  # None: set outside Python, which we cannot put back
            signal.signal(signal.SIGTERM, previous)
