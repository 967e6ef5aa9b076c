"""When each cell may go: slots taken in turn, --maxfail across the matrix, and waits
Ctrl-C can break.

Every limit is a slot taken in turn among the cells ready for it (``turn``: a cell's place
in the start order, timings.py). ``jobs`` bounds the cells running tests; their envs are
checked or built ``jobs + EXTRA_BUILDS`` at a time, and ``PRESTART_CELLS`` more cells start
ahead and wait at the worker's gate; a cell that uses the GPU takes a GPU slot first.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from ..results import CellResult, CellStatus

WAKE_SECONDS = 0.2  # how often a wait looks up (for a stop, or a signal to handle)
EXTRA_BUILDS = 1  # envs checked or built at once beyond ``jobs``
PRESTART_CELLS = 1  # cells started ahead of a free slot, waiting at the worker's gate


def wait_interruptibly(future: Future[None]) -> None:
    """``future.result()``, in short waits that let Ctrl-C through at once.

    The kernel may hand SIGINT to any thread (a cell's thread, rattler's); a main thread
    blocked in one long wait would only see it once the cell had ended.
    """
    while True:
        try:
            return future.result(timeout=WAKE_SECONDS)
        except FutureTimeout:  # not the builtin TimeoutError before Python 3.11
            continue


class OrderedSlots:
    """Slots numbered 0..size-1; when one frees up, the waiter earliest in turn gets it.

    ``take`` yields the slot's number, or None (taking nothing) once ``stop`` is set.
    """

    def __init__(self, size: int, stop: threading.Event) -> None:
        self.free = list(range(size))
        self.stop = stop
        self.waiting: set[int] = set()
        self.changed = threading.Condition()

    @contextlib.contextmanager
    def take(self, turn: int) -> Iterator[int | None]:
        slot: int | None = None
        with self.changed:
            self.waiting.add(turn)
            try:
                while not self.stop.is_set():
                    if self.free and turn == min(self.waiting):
                        slot = self.free.pop(0)
                        break
                    self.changed.wait(WAKE_SECONDS)  # also wakes up to see ``stop``
            finally:
                self.waiting.discard(turn)
                self.changed.notify_all()
        try:
            yield slot
        finally:
            if slot is not None:
                with self.changed:
                    self.free.append(slot)
                    self.free.sort()
                    self.changed.notify_all()


class Scheduler:
    """The run's slots and its --maxfail count, shared by the cells' threads."""

    def __init__(self, jobs: int, gpu_jobs: int, maxfail: int, stop: threading.Event) -> None:
        jobs = max(1, jobs)
        self.maxfail = maxfail
        self.build_slots = OrderedSlots(jobs + EXTRA_BUILDS, stop)
        self.start_slots = OrderedSlots(jobs + PRESTART_CELLS, stop)  # live processes
        self.test_slots = OrderedSlots(jobs, stop)  # cells past the worker's gate
        self.gpu_slots = OrderedSlots(max(1, gpu_jobs), stop)
        self._failures = 0  # failed reports in all cells, for --maxfail across the matrix
        self._halted_by = ""  # the cell whose failure reached --maxfail
        self._count_lock = threading.Lock()

    def halted(self, result: CellResult) -> bool:
        """Whether --maxfail was reached before this cell's tests began (then: not run)."""
        if not self._halted_by:
            return False
        result.status = CellStatus.NOT_RUN
        result.message = f"not started: --maxfail={self.maxfail} was reached (in {self._halted_by})"
        return True

    def count_failure(self, cell: str, data: dict[str, Any]) -> None:
        """Count a failure towards --maxfail, as pytest's session counts them."""
        if not self.maxfail or data.get("wasxfail") is not None:
            return
        with self._count_lock:
            self._failures += 1
            if self._failures >= self.maxfail and not self._halted_by:
                self._halted_by = cell

    @contextlib.contextmanager
    def turn_to_start(
        self, turn: int, gpu: bool, on_wait: Callable[[], None]
    ) -> Iterator[int | None]:
        """Hold the cell's GPU slot (if it uses the GPU), then a slot to start its process.

        Yields the GPU slot (-1 for a cell without one), or None if the run stopped first.
        The GPU comes first: a cell waiting for it holds no process and no slot of ``jobs``.
        """
        with contextlib.ExitStack() as held:
            if gpu:
                on_wait()
            device = held.enter_context(self.gpu_slots.take(turn)) if gpu else -1
            if device is None:  # the run stopped while the cell waited for the GPU
                yield None
                return
            start = held.enter_context(self.start_slots.take(turn))
            yield None if start is None else device
