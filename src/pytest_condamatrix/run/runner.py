"""Run the cells: get each env from the cache, run the inner pytest, collect its results.

The outer process never imports the project's tests. Per cell it starts the inner pytest
(cell_process.py); the worker appends pytest's own serialised reports to a file that this
module tails (protocol.py) for live progress, the outer pytest's hooks and the results. A
cell that ends without reporting says why through the last meaningful lines of its output
(outcome.py).

``jobs`` bounds how many cells run tests at once; the cells after them are prepared ahead
(scheduler.py): their envs are checked or built meanwhile, and one more cell is
*prestarted*, waiting at the worker's gate until a slot frees up. A cold env build, or a
small suite's start-up, then overlaps the previous cells' tests instead of following them.
Each cell has a thread; slots, not threads, decide what runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import processes
from ..envs.cache import EnvCache, EnvStatus
from ..envs.engines import Engine
from ..envs.host import detect_driver
from ..envs.locks import LockWaitCancelled
from ..envs.spec import make_spec
from ..errors import CacheError, CondaMatrixError
from ..install import InstallSettings, Overlay, prepare_install
from ..matrix import Cell
from ..results import CellResult, CellStatus, EnvState, RunResult
from .cell_process import (
    POLL_SECONDS,
    WORKER_MODULE,
    ExitWaiter,
    cell_argv,
    cell_environ,
    gpu_word,
    let_go,
    start_at_gate,
)
from .gpu import GpuDecision, decide
from .outcome import classify, looks_damaged
from .protocol import NullReporter, Reporter, ReportRelay, StreamTail, apply_records
from .scheduler import Scheduler, wait_interruptibly
from .timings import start_order


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


class MatrixRunner:
    """Runs cells in parallel; a crashed, hung or unbuildable cell is an outcome, not an abort."""

    def __init__(self, options: RunOptions, reporter: Reporter | None = None) -> None:
        self.options = options
        self.reporter: Reporter = reporter or NullReporter()
        self._stop = threading.Event()
        self._driver: str | None = None
        self._overlays: dict[str, Overlay] = {}  # the project installed for each cell
        self._slots = Scheduler(options.jobs, options.gpu_jobs, options.maxfail, self._stop)

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
            self._driver = detect_driver()
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

    def _run_cell(self, turn: int, cell: Cell, result: CellResult, platform: str) -> None:
        if self._stop.is_set():
            return
        opts = self.options
        if self._slots.halted(result):
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
                with self._slots.build_slots.take(turn) as slot:
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
                if self._slots.halted(result):
                    return
                if opts.install is not None:
                    overlay = prepare_install(
                        opts.install, cell, env.prefix, env.python, env.key, opts.run_dir
                    )
                    self._overlays[cell.id] = overlay
                    if overlay.note:
                        self.reporter.cell_phase(cell.id, overlay.note)
                    result.env_reason = "; ".join(filter(None, (result.env_reason, overlay.note)))
                decision = decide(
                    cell.cuda, self._driver, opts.cuda_policy, require_gpu=opts.require_gpu
                )
                if not decision.run:
                    failing = opts.cuda_policy == "fail" or opts.require_gpu
                    result.status = CellStatus.ERROR if failing else CellStatus.NOT_RUN
                    result.message = decision.reason
                elif not self._stop.is_set():
                    self.reporter.cell_phase(cell.id, "ready")
                    waiting = lambda: self.reporter.cell_phase(cell.id, "waiting for the GPU")  # noqa: E731
                    with self._slots.turn_to_start(turn, decision.gpu, waiting) as device:
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

    @staticmethod
    def _record_env(result: CellResult, env: EnvStatus) -> None:
        result.env_status = env.status
        result.env_reason = env.reason
        result.env_prefix = str(env.prefix)
        result.packages = list(env.packages)
        result.build_seconds = env.seconds

    def _cell_env(self, cell: Cell, env: EnvStatus, gpu: GpuDecision) -> dict[str, str]:
        opts = self.options
        overlay = self._overlays.get(cell.id, Overlay())
        return cell_environ(
            cell,
            gpu,
            env.prefix,
            pythonpath=[str(opts.run_dir), *overlay.pythonpath, *map(str, opts.pythonpath)],
            path=overlay.path,
            extra_env=opts.extra_env,
            all_reports=opts.relay.relays_tests,
        )

    def _run_tests(
        self,
        turn: int,
        cell: Cell,
        result: CellResult,
        env: EnvStatus,
        gpu: GpuDecision,
        device: int,
    ) -> None:
        opts = self.options
        stream = opts.run_dir / f"{cell.id}.jsonl"
        log = opts.run_dir / f"{cell.id}.log"
        stream.unlink(missing_ok=True)
        argv = cell_argv(env.python, cell, stream, opts.pytest_args, cell_cache=opts.cell_caches)
        result.log = str(log)
        timed_out = False
        halted = False
        with log.open("wb") as output:
            proc, go = start_at_gate(argv, self._cell_env(cell, env, gpu), opts.cwd, output)
            tail = StreamTail(stream)
            pause = ExitWaiter(proc)
            try:
                with contextlib.ExitStack() as held:
                    slot_held = held.enter_context(contextlib.ExitStack())
                    slot = slot_held.enter_context(self._slots.test_slots.take(turn))
                    # unwound first: unless the cell said it was exiting (then its slot is
                    # free already), what its tests left running ends before its slot frees up
                    held.callback(processes.reap_group, proc)
                    start = time.monotonic()
                    halted = self._slots.halted(result)
                    if slot is not None and not halted:
                        self.reporter.cell_phase(cell.id, "running")
                        let_go(go, gpu_word(device, opts.gpu_jobs, opts.gpu_devices))
                    os.close(go)  # without a word, the worker exits at its gate
                    go = -1
                    while proc.poll() is None:
                        records = tail.read()
                        self._consume(cell, result, records)
                        if any(r.get("e") == "exiting" for r in records):
                            # its pytest is over: the next cell's tests may start while this
                            # interpreter shuts down (the GPU slot waits for the exit)
                            slot_held.close()
                        if opts.timeout and time.monotonic() - start > opts.timeout:
                            timed_out = True
                            processes.kill_group(proc)
                            break
                        if self._stop.is_set():
                            processes.kill_group(proc)
                            break
                        pause.wait(POLL_SECONDS)  # returns as soon as the cell ends
            finally:
                if go >= 0:
                    os.close(go)
                pause.close()
                processes.reap_group(proc)  # also ends children the tests left behind
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

    def _consume(self, cell: Cell, result: CellResult, records: list[dict[str, Any]]) -> None:
        apply_records(
            cell.id, result, records, self.options.relay, self.reporter, self._slots.count_failure
        )
