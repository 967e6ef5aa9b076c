"""Run the cells: get each env from the cache, run the inner pytest, collect its results.

The outer process never imports the project's tests. Per cell it runs
``<prefix>/bin/python -m pytest <args> -p _condamatrix_worker`` in a process group of its
own; the worker appends pytest's own serialised reports to a file that this module tails
(protocol.py) for live progress, the outer pytest's hooks and the results. A cell that ends
without reporting says why through the last meaningful lines of its output (outcome.py).

``jobs`` bounds how many cells run tests at once; the cells after them are prepared ahead.
Their envs are checked or built meanwhile (``jobs + 1`` at a time), and one more cell is
*prestarted*: its interpreter starts, imports pytest and its plugins, then waits at the
worker's gate (before any conftest.py or test is imported) until a slot frees up. A cold
env build, or a small suite's start-up, then overlaps the previous cells' tests instead of
following them. Each cell has a thread, and every limit is a slot (slots.py) taken in turn
among the cells ready for it; a cell that uses the GPU takes a GPU slot before it starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .. import cuda
from .. import processes as command
from ..config.envfile import file_fingerprints
from ..envs.cache import EnvCache, EnvStatus, LockWaitCancelled
from ..envs.engines import Engine
from ..envs.spec import EnvSpec, channel_fingerprint
from ..errors import CacheError, CondaMatrixError
from ..install import InstallSettings, Overlay, prepare_install
from ..matrix import Cell
from ..options import FLAG_OPTIONS, VALUE_OPTIONS, strip_addopts
from ..results import CellResult, CellStatus, EnvState, RunResult, TestResult, ordered_counts
from .cellenv import cell_variables
from .outcome import classify
from .protocol import ReportRelay, StreamTail
from .slots import OrderedSlots, wait_interruptibly
from .timings import start_order

WORKER_MODULE = "_condamatrix_worker"
POLL_SECONDS = 0.05
EXTRA_BUILDS = 1  # envs checked or built at once beyond ``jobs``
PRESTART_CELLS = 1  # cells started ahead of a free slot, waiting at the worker's gate
GO_FD_VAR = "CONDAMATRIX_GO_FD"  # the worker waits for its word (JSON) on this fd to go on
#: our options, which the worker accepts and ignores (the cells read the ini's addopts too)
OUTER_OPTIONS_VAR = "CONDAMATRIX_OUTER_OPTIONS"
OUTER_OPTIONS_JSON = json.dumps({"flags": FLAG_OPTIONS, "values": VALUE_OPTIONS})


class Reporter(Protocol):
    """Receives progress while the matrix runs (terminal output, tests)."""

    def cell_phase(self, cell: str, phase: str) -> None: ...

    def cell_collected(self, cell: str, count: int) -> None: ...

    def test_done(self, cell: str, test: TestResult) -> None: ...

    def cell_done(self, result: CellResult) -> None: ...


class NullReporter:
    def cell_phase(self, cell: str, phase: str) -> None:
        pass

    def cell_collected(self, cell: str, count: int) -> None:
        pass

    def test_done(self, cell: str, test: TestResult) -> None:
        pass

    def cell_done(self, result: CellResult) -> None:
        pass


@dataclass(frozen=True)
class RunOptions:
    cache: EnvCache
    engine: Engine
    run_dir: Path
    cwd: Path
    jobs: int = 1
    gpu_jobs: int = 1  # cells using the GPU at once: two on one device compete for its memory
    #: devices handed out to GPU slots in turn when gpu_jobs > 1 (default: 0..gpu_jobs-1)
    gpu_devices: tuple[str, ...] = ()
    timeout: float | None = None
    rebuild: bool = False
    pytest_args: tuple[str, ...] = ()
    pythonpath: tuple[Path, ...] = ()
    cuda_policy: str = "skip"
    require_gpu: bool = False
    environment_sha: str = ""
    #: cell id -> seconds its tests took last time (the longest start first)
    previous_seconds: Mapping[str, float] = field(default_factory=dict)
    #: cell id -> identities of its locked packages (cells absent here are solved)
    locked: dict[str, tuple[str, ...]] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    #: pytest's --maxfail (-x is 1) across the matrix: no new cell starts once reached
    maxfail: int = 0
    #: per-cell pytest cache folders, unless the cache provider is off (-p no:cacheprovider)
    cell_caches: bool = True
    #: where the cells' reports go: results, and the outer pytest's hooks
    relay: ReportRelay = field(default_factory=ReportRelay)
    install: InstallSettings | None = None  # None: the sources only, through pythonpath


def make_spec(
    cell: Cell,
    engine: Engine,
    platform: str,
    *,
    environment_sha: str = "",
    locked: tuple[str, ...] = (),
) -> EnvSpec:
    fingerprints = tuple(
        fp for fp in (channel_fingerprint(c, platform) for c in cell.channels) if fp
    )
    return EnvSpec(
        cell_id=cell.id,
        engine=engine.id,
        platform=platform,
        channels=cell.channels,
        specs=cell.specs,
        virtual_packages=engine.virtual_packages(cell.cuda),
        channel_fingerprints=fingerprints,
        cuda=cell.cuda,
        pip=cell.pip,
        pip_files=file_fingerprints(cell.pip),
        environment_file=environment_sha,
        locked=locked,
    )


class MatrixRunner:
    """Runs cells in parallel; a crashed, hung or unbuildable cell is an outcome, not an abort."""

    def __init__(self, options: RunOptions, reporter: Reporter | None = None) -> None:
        self.options = options
        self.reporter: Reporter = reporter or NullReporter()
        self._stop = threading.Event()
        self._driver: str | None = None
        self._failures = 0  # failed reports in all cells, for --maxfail across the matrix
        self._halted_by = ""  # the cell whose failure reached --maxfail
        self._count_lock = threading.Lock()
        self._overlays: dict[str, Overlay] = {}  # the project installed for each cell
        jobs = max(1, options.jobs)
        self._build_slots = OrderedSlots(jobs + EXTRA_BUILDS, self._stop)
        self._start_slots = OrderedSlots(jobs + PRESTART_CELLS, self._stop)  # live processes
        self._test_slots = OrderedSlots(jobs, self._stop)  # cells past the worker's gate
        self._gpu_slots = OrderedSlots(max(1, options.gpu_jobs), self._stop)

    def run(self, cells: Sequence[Cell], platform: str) -> RunResult:
        opts = self.options
        try:
            opts.run_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(
                Path(__file__).parent.parent / "worker.py", opts.run_dir / f"{WORKER_MODULE}.py"
            )
        except OSError as exc:  # a full disk, most likely
            raise CacheError(
                f"cannot write the run's files into {opts.run_dir}: {exc.strerror or exc}",
                hint="free disk space there, or pick another --conda-matrix-cache-dir",
            ) from None
        if any(c.is_cuda for c in cells):
            self._driver = cuda.detect_driver()
        results = [
            CellResult(
                cell=c.id,
                python=c.python,
                cuda=c.cuda,
                channels=list(c.channels),
                specs=[*c.specs, *(f"pip:{p}" for p in c.pip)],
            )
            for c in cells
        ]
        start = time.monotonic()
        interrupted = False
        # a thread per cell: slots, not threads, decide what runs (a thread may wait long)
        pool = ThreadPoolExecutor(max_workers=max(1, len(cells)), thread_name_prefix="cell")
        order = start_order([c.id for c in cells], opts.previous_seconds, opts.jobs)
        futures: list[Future[None]] = []
        try:
            # inside the try: a Ctrl-C between two submits must stop the cells already going
            for turn, i in enumerate(order):  # ``turn``: the cell's place in line for slots
                futures.append(pool.submit(self._run_cell, turn, cells[i], results[i], platform))
            for future in futures:
                wait_interruptibly(future)
        except KeyboardInterrupt:
            interrupted = True
            self._stop.set()
            for future in futures:
                future.cancel()
            for result in results:
                if result.status in (CellStatus.PENDING, CellStatus.RUNNING):
                    result.status = CellStatus.INTERRUPTED
                    result.message = "interrupted before the cell finished"
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return RunResult(cells=results, duration=time.monotonic() - start, interrupted=interrupted)

    def stop(self) -> None:
        self._stop.set()

    def _halted(self, result: CellResult) -> bool:
        """Whether --maxfail was reached before this cell's tests began (then: not run)."""
        if not self._halted_by:
            return False
        result.status = CellStatus.NOT_RUN
        result.message = (
            f"not started: --maxfail={self.options.maxfail} was reached (in {self._halted_by})"
        )
        return True

    def _run_cell(self, turn: int, cell: Cell, result: CellResult, platform: str) -> None:
        if self._stop.is_set():
            return
        opts = self.options
        if self._halted(result):
            self.reporter.cell_done(result)
            return
        result.status = CellStatus.RUNNING
        try:
            spec = make_spec(
                cell,
                opts.engine,
                platform,
                environment_sha=opts.environment_sha,
                locked=opts.locked.get(cell.id, ()),
            )
            result.env_key = spec.key
            with contextlib.ExitStack() as stack:
                with self._build_slots.take(turn) as slot:
                    if slot is None:
                        return
                    env = stack.enter_context(
                        opts.cache.use(
                            spec,
                            opts.engine.build,
                            rebuild=opts.rebuild,
                            on_phase=lambda phase: self.reporter.cell_phase(cell.id, phase),
                            cancelled=self._stop.is_set,
                        )
                    )
                self._record_env(result, env)
                if self._halted(result):
                    return
                if opts.install is not None:
                    overlay = prepare_install(
                        opts.install, cell, env.prefix, env.python, env.key, opts.run_dir
                    )
                    self._overlays[cell.id] = overlay
                    if overlay.note:
                        self.reporter.cell_phase(cell.id, overlay.note)
                    result.env_reason = "; ".join(filter(None, (result.env_reason, overlay.note)))
                decision = cuda.decide(
                    cell.cuda, self._driver, opts.cuda_policy, require_gpu=opts.require_gpu
                )
                if not decision.run:
                    failing = opts.cuda_policy == "fail" or opts.require_gpu
                    result.status = CellStatus.ERROR if failing else CellStatus.NOT_RUN
                    result.message = decision.reason
                elif not self._stop.is_set():
                    self.reporter.cell_phase(cell.id, "ready")
                    with self._turn_to_start(turn, cell.id, decision.gpu) as device:
                        if device is not None:
                            self._run_tests(turn, cell, result, env, decision, device)
                    if cell.is_cuda and not decision.gpu and not result.message:
                        result.message = f"ran without a GPU, gpu tests skipped: {decision.reason}"
            # the env's read lock is released: a damaged env can be checked, and discarded
            if looks_damaged(result):
                damage = opts.cache.check_suspected(spec)
                if damage:
                    result.message = "\n".join(
                        filter(None, (result.message, f"{damage} (the next run rebuilds it)"))
                    )
        except LockWaitCancelled:
            result.status = CellStatus.INTERRUPTED
            result.message = "interrupted while waiting for another run's lock on the env"
        except CondaMatrixError as exc:
            result.env_status = result.env_status or EnvState.FAILED
            result.status = CellStatus.ENV_ERROR
            result.message = str(exc)
        except Exception as exc:  # a bug of ours must not lose the other cells' results
            result.status = CellStatus.ERROR
            result.message = f"internal error: {type(exc).__name__}: {exc}"
        finally:
            if self._stop.is_set() and result.status in (CellStatus.PENDING, CellStatus.RUNNING):
                result.status = CellStatus.INTERRUPTED
            self.reporter.cell_done(result)

    @contextlib.contextmanager
    def _turn_to_start(self, turn: int, cell: str, gpu: bool) -> Iterator[int | None]:
        """Hold the cell's GPU slot (if it uses the GPU), then a slot to start its process.

        Yields the GPU slot (-1 for a cell without one), or None if the run stopped first.
        The GPU comes first: a cell waiting for it holds no process and no slot of ``jobs``.
        """
        with contextlib.ExitStack() as held:
            if gpu:
                self.reporter.cell_phase(cell, "waiting for the GPU")
            device = held.enter_context(self._gpu_slots.take(turn)) if gpu else -1
            if device is None:  # the run stopped while the cell waited for the GPU
                yield None
                return
            start = held.enter_context(self._start_slots.take(turn))
            yield None if start is None else device

    @staticmethod
    def _record_env(result: CellResult, env: EnvStatus) -> None:
        result.env_status = env.status
        result.env_reason = env.reason
        result.env_prefix = str(env.prefix)
        result.packages = list(env.packages)
        result.build_seconds = env.seconds

    def _cell_env(self, cell: Cell, env: EnvStatus, gpu: cuda.GpuDecision) -> dict[str, str]:
        opts = self.options
        overlay = self._overlays.get(cell.id, Overlay())
        pythonpath = [str(opts.run_dir), *overlay.pythonpath, *(str(p) for p in opts.pythonpath)]
        environ = cell_variables(cell, gpu, pythonpath, {**os.environ, **opts.extra_env})
        bins = [*overlay.path, str(env.prefix / "bin")]
        environ["PATH"] = os.pathsep.join([*bins, environ.get("PATH", "")])
        environ["CONDA_PREFIX"] = str(env.prefix)
        environ[OUTER_OPTIONS_VAR] = OUTER_OPTIONS_JSON
        # every report in full only when a plugin of the outer run listens: it costs more
        environ["CONDAMATRIX_REPORTS"] = "all" if opts.relay.relays_tests else "short"
        if "PYTEST_ADDOPTS" in environ:
            environ["PYTEST_ADDOPTS"] = strip_addopts(environ["PYTEST_ADDOPTS"])
        return environ

    def _run_tests(
        self,
        turn: int,
        cell: Cell,
        result: CellResult,
        env: EnvStatus,
        gpu: cuda.GpuDecision,
        device: int,
    ) -> None:
        opts = self.options
        stream = opts.run_dir / f"{cell.id}.jsonl"
        log = opts.run_dir / f"{cell.id}.log"
        stream.unlink(missing_ok=True)
        argv = [str(env.python), "-m", "pytest", "-p", WORKER_MODULE]
        argv.append(f"--condamatrix-stream={stream}")
        if opts.cell_caches:
            argv += ["-o", f"cache_dir=.pytest_cache/condamatrix/{cell.id}"]
        argv += opts.pytest_args
        result.log = str(log)
        timed_out = False
        halted = False
        with log.open("wb") as output:
            environ = self._cell_env(cell, env, gpu)
            gate, go = os.pipe()
            environ[GO_FD_VAR] = str(gate)
            try:
                proc = command.spawn(
                    argv, env=environ, cwd=opts.cwd, output=output, pass_fds=(gate,)
                )
            finally:
                os.close(gate)
            tail = StreamTail(stream)
            pause = _ExitWaiter(proc)
            try:
                with contextlib.ExitStack() as held:
                    slot = held.enter_context(self._test_slots.take(turn))
                    # unwound first: what the tests left running ends before the slots free up
                    held.callback(command.reap_group, proc)
                    start = time.monotonic()
                    halted = self._halted(result)
                    if slot is not None and not halted:
                        self.reporter.cell_phase(cell.id, "running")
                        with contextlib.suppress(OSError):  # it died starting: see below
                            os.write(go, json.dumps(self._gpu_env(device)).encode())
                    os.close(go)  # without a word, the worker exits at its gate
                    go = -1
                    while proc.poll() is None:
                        self._consume(cell, result, tail.read())
                        if opts.timeout and time.monotonic() - start > opts.timeout:
                            timed_out = True
                            command.kill_group(proc)
                            break
                        if self._stop.is_set():
                            command.kill_group(proc)
                            break
                        pause.wait(POLL_SECONDS)  # returns as soon as the cell ends
            finally:
                if go >= 0:
                    os.close(go)
                pause.close()
                command.reap_group(proc)  # also ends children the tests left behind
        if halted:
            return
        self._consume(cell, result, tail.read())
        result.test_seconds = time.monotonic() - start
        result.exit_code = proc.returncode
        classify(
            result,
            timed_out=timed_out,
            timeout=opts.timeout,
            interrupted=self._stop.is_set(),
            log=log,
        )

    def _gpu_env(self, slot: int) -> dict[str, str]:
        """What the worker sets once it may go: with several GPU slots, each its device."""
        if slot < 0 or self.options.gpu_jobs <= 1:
            return {}
        devices = self.options.gpu_devices or tuple(str(i) for i in range(self.options.gpu_jobs))
        return {"CUDA_VISIBLE_DEVICES": devices[slot % len(devices)]}

    def _consume(self, cell: Cell, result: CellResult, records: list[dict[str, Any]]) -> None:
        relay = self.options.relay
        for record in records:
            event = record.get("e")
            if event in ("test", "collect"):
                test = relay.test(cell.id, record)
                data = record.get("r")
                if isinstance(data, dict) and data.get("outcome") == "failed":
                    self._count_failure(cell.id, data)
                if test is not None:
                    result.tests.append(test)
                    self.reporter.test_done(cell.id, test)
            elif event == "warning":
                result.warnings += 1
                relay.warning(cell.id, record)
            elif event == "deselected":
                result.deselected += _int(record.get("n"))
            elif event == "collected":
                result.collected = _int(record.get("n"))
                ids = record.get("ids")
                if isinstance(ids, list):
                    result.collected_ids = [str(i) for i in ids]
                self.reporter.cell_collected(cell.id, result.collected)
            elif event == "start":
                result.interpreter = str(record.get("python", ""))
                result.pytest_version = str(record.get("pytest", ""))
            elif event == "finish":
                counts = record.get("counts")
                result.summary = (
                    ordered_counts({str(k): _int(v) for k, v in counts.items()})
                    if isinstance(counts, dict)
                    else result.counts()  # no terminal reporter in the cell: count reports
                )

    def _count_failure(self, cell: str, data: dict[str, Any]) -> None:
        """Count a failure towards --maxfail, as pytest's session counts them."""
        if not self.options.maxfail or data.get("wasxfail") is not None:
            return
        with self._count_lock:
            self._failures += 1
            if self._failures >= self.options.maxfail and not self._halted_by:
                self._halted_by = cell


#: what a cell's failure looks like when a file of its env is damaged (a truncated binary,
#: a module that no longer imports)
DAMAGE_SIGNS = re.compile(
    r"Exec format error|bad marshal data|invalid ELF header|cannot open shared object"
    r"|ImportError|ModuleNotFoundError|killed by signal (?:4|7|11)\b"
)


def looks_damaged(result: CellResult) -> bool:
    if result.status not in (CellStatus.CRASHED, CellStatus.ERROR, CellStatus.FAILED):
        return False
    texts = [result.message, *(t.longrepr for t in result.tests if t.longrepr)]
    return any(DAMAGE_SIGNS.search(text) for text in texts[:50])


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


class _ExitWaiter:
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
