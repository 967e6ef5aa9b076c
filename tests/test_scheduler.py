"""The runner's slots: taken in turn among those waiting, numbered, and left on a stop;
--maxfail counted across the cells."""

from __future__ import annotations

import threading
import time

from pytest_condamatrix.results import CellResult
from pytest_condamatrix.run.scheduler import OrderedSlots, Scheduler


def test_a_freed_slot_goes_to_the_earliest_waiter_and_keeps_its_number() -> None:
    stop = threading.Event()
    slots = OrderedSlots(1, stop)
    got: list[tuple[int, int | None]] = []
    with slots.take(5) as first:
        assert first == 0
        threads = [
            threading.Thread(target=lambda t=turn: got.append((t, _hold(slots, t))))
            for turn in (9, 7, 8)  # they queue in this order, but turn 7 comes first
        ]
        for thread in threads:
            thread.start()
        time.sleep(0.3)  # all three are waiting
        assert got == []
    for thread in threads:
        thread.join(10)
    assert got == [(7, 0), (8, 0), (9, 0)]


def _hold(slots: OrderedSlots, turn: int) -> int | None:
    with slots.take(turn) as slot:
        time.sleep(0.05)
        return slot


def test_several_slots_are_numbered_and_reused_lowest_first() -> None:
    slots = OrderedSlots(2, threading.Event())
    with slots.take(0) as a, slots.take(1) as b:
        assert (a, b) == (0, 1)
    with slots.take(2) as c:
        assert c == 0


def test_a_stop_ends_the_wait_with_no_slot() -> None:
    stop = threading.Event()
    slots = OrderedSlots(1, stop)
    result: list[int | None] = [-1]
    with slots.take(0):
        waiter = threading.Thread(target=lambda: result.__setitem__(0, _hold(slots, 1)))
        waiter.start()
        time.sleep(0.1)
        stop.set()
        waiter.join(5)
    assert not waiter.is_alive() and result == [None]
    with slots.take(2) as slot:
        assert slot is None  # once stopped, nothing more is handed out


def test_maxfail_across_cells_halts_the_cells_not_yet_started() -> None:
    scheduler = Scheduler(jobs=2, gpu_jobs=1, maxfail=2, stop=threading.Event())
    scheduler.count_failure("py3.11-cpu", {"outcome": "failed", "wasxfail": "known"})
    scheduler.count_failure("py3.11-cpu", {"outcome": "failed"})
    later = CellResult(cell="py3.13-cpu", python="3.13", cuda="cpu")
    assert not scheduler.halted(later)  # an xfail does not count: one failure so far
    scheduler.count_failure("py3.12-cpu", {"outcome": "failed"})
    assert scheduler.halted(later)
    assert later.status == "not-run"
    assert later.message == "not started: --maxfail=2 was reached (in py3.12-cpu)"


def test_a_cell_without_the_gpu_skips_the_gpu_slot() -> None:
    scheduler = Scheduler(jobs=1, gpu_jobs=1, maxfail=0, stop=threading.Event())
    waited: list[int] = []
    with scheduler.turn_to_start(0, False, lambda: waited.append(0)) as device:
        assert device == -1
    with scheduler.turn_to_start(1, True, lambda: waited.append(1)) as device:
        assert device == 0
    assert waited == [1]
