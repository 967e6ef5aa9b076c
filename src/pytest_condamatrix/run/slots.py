"""The runner's scheduling primitives: slots taken in turn, and waits Ctrl-C can break."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

WAKE_SECONDS = 0.2  # how often a wait looks up (for a stop, or a signal to handle)


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
