"""Hang isolation with real threads: a task that blocks does not hold up the others."""

from __future__ import annotations

import gc
import logging
import threading
import time
import weakref
from typing import Callable

import pytest

from agentx_virt.collector.connection import Connection
from agentx_virt.collector.guard import Guard, Task

from .conftest import wait_for


def test_a_blocked_task_is_abandoned_and_replaced_and_the_rest_finish() -> None:
    release = threading.Event()
    abandoned: list[str] = []
    finished_late: list[str] = []
    guard = Guard("t", workers=2, max_threads=4, on_abandoned=lambda t: abandoned.append(t.key),
                  on_abandoned_done=lambda t: finished_late.append(t.key))
    stuck = Task("stuck", lambda: release.wait(30))
    healthy = [Task(f"d{n}", lambda n=n: n * 2) for n in range(20)]  # type: ignore[misc]
    assert guard.submit(stuck)
    for task in healthy:
        assert guard.submit(task)
    guard.wait([stuck, *healthy], deadline_s=0.3, cycle_end=time.monotonic() + 5)
    assert [t.result for t in healthy] == [n * 2 for n in range(20)]
    assert stuck.abandoned and abandoned == ["stuck"]
    assert guard.threads == 3                 # 2 healthy workers + the one that is stuck
    # Its next task is refused while the first still runs: one call in flight per domain.
    assert not guard.submit(Task("stuck", lambda: None))
    assert guard.in_flight("stuck") is stuck
    release.set()
    wait_for(lambda: guard.threads <= 2 and bool(finished_late), timeout=5)
    assert guard.threads == 2                 # the surplus worker left: no thread leak
    assert finished_late == ["stuck"]
    assert guard.submit(Task("stuck", lambda: None))
    guard.stop()


def test_threads_stay_bounded_while_many_domains_hang() -> None:
    release = threading.Event()
    guard = Guard("t", workers=2, max_threads=5)
    tasks = [Task(f"h{n}", lambda: release.wait(30)) for n in range(10)]
    for task in tasks:
        guard.submit(task)
    guard.wait(tasks, deadline_s=0.2, cycle_end=time.monotonic() + 1)
    assert guard.threads <= 5
    assert all(t.abandoned or t.cancelled for t in tasks)
    release.set()
    guard.stop()


def test_tasks_not_started_by_the_end_of_the_cycle_are_cancelled() -> None:
    release = threading.Event()
    guard = Guard("t", workers=1, max_threads=1)
    blocker = Task("b", lambda: release.wait(30))
    waiting = Task("w", lambda: "never")
    guard.submit(blocker)
    guard.submit(waiting)
    guard.wait([blocker, waiting], deadline_s=1, cycle_end=time.monotonic() + 0.2)
    assert waiting.cancelled and waiting.result is None
    assert guard.in_flight("w") is None
    release.set()
    guard.stop()


def test_errors_come_back_with_the_task() -> None:
    guard = Guard("t", workers=1, max_threads=1)

    def fail() -> None:
        raise RuntimeError("boom")

    task = Task("e", fail)
    guard.submit(task)
    guard.wait([task], deadline_s=5, cycle_end=time.monotonic() + 5)
    assert isinstance(task.error, RuntimeError)
    guard.stop()


def test_a_finished_task_does_not_keep_its_work_alive_in_a_cycle() -> None:
    """A task whose function captures the task itself is freed by reference counting
    as soon as its caller drops it, without waiting for the cyclic collector."""

    class Result:
        pass

    def work_for(task: Task) -> Callable[[], Result]:
        def work() -> Result:
            task.context = "set by the work"
            return Result()
        return work

    guard = Guard("t", workers=1, max_threads=1)
    gc.disable()
    try:
        task = Task("d", lambda: None)
        task.function = work_for(task)
        assert guard.submit(task)
        guard.wait([task], deadline_s=5, cycle_end=time.monotonic() + 5)
        assert task.error is None and task.context == "set by the work"
        result = weakref.ref(task.result)
        del task
        wait_for(lambda: result() is None, timeout=2)   # the worker drops its own reference
    finally:
        gc.enable()
        guard.stop()


def test_a_domain_always_runs_on_its_slots_thread() -> None:
    """So each worker's libvirt connection looks up and keeps only its slot's domains."""
    guard = Guard("t", workers=3, max_threads=6)
    seen: dict[str, set[str]] = {}

    def note(key: str) -> None:
        seen.setdefault(key, set()).add(threading.current_thread().name)

    for _ in range(3):
        tasks = [Task(f"d{n}", lambda n=n: note(f"d{n}")) for n in range(30)]  # type: ignore[misc]
        for task in tasks:
            assert guard.submit(task)
        guard.wait(tasks, deadline_s=5, cycle_end=time.monotonic() + 5)
    assert all(len(threads) == 1 for threads in seen.values())
    assert len(set().union(*seen.values())) == 3          # and the domains are spread
    guard.stop()


def test_a_stuck_slot_gets_a_replacement_thread_for_its_other_domains() -> None:
    release = threading.Event()
    guard = Guard("t", workers=2, max_threads=4)
    stuck = Task("stuck", lambda: release.wait(30))
    assert guard.submit(stuck)
    wait_for(lambda: stuck.started is not None, timeout=2)
    guard.wait([stuck], deadline_s=0.1, cycle_end=time.monotonic() + 1)
    assert stuck.abandoned
    # Keys that share the stuck task's slot still run, on the slot's new thread.
    same_slot = [k for k in (f"d{n}" for n in range(40))
                 if hash(k) % 2 == hash("stuck") % 2][:5]
    tasks = [Task(k, lambda: threading.current_thread().name) for k in same_slot]
    for task in tasks:
        assert guard.submit(task)
    guard.wait(tasks, deadline_s=2, cycle_end=time.monotonic() + 2)
    assert all(t.error is None and t.result for t in tasks)
    assert len({t.result for t in tasks}) == 1
    release.set()
    wait_for(lambda: guard.threads == 2, timeout=5)      # the surplus thread left
    guard.stop()


def test_a_slot_outside_the_workers_is_refused() -> None:
    guard = Guard("t", workers=2, max_threads=2)
    with pytest.raises(ValueError, match=r"slot 2 is not one of 0\.\.1"):
        guard.submit(Task("d", lambda: None, slot=2))
    assert guard.in_flight("d") is None and guard.threads == 0
    guard.stop()


def test_only_a_call_stuck_past_the_deadline_abandons_a_task(
        caplog: pytest.LogCaptureFixture) -> None:
    """Python work slowed past the deadline (a busy process) is not a stuck call; a
    libvirt call that does not return is, and the log names it."""
    conn = Connection("test:///default", "guard-test")
    release = threading.Event()
    guard = Guard("reader-9", 2, 4)

    def busy() -> str:
        until = time.monotonic() + 0.5        # 2.5 deadlines, under RUNAWAY_FACTOR of them
        while time.monotonic() < until:
            conn.call("getHostname", conn.conn.getHostname)
        return "done"

    slow = Task("slow", busy, label="domain slow")
    stuck = Task("stuck", lambda: conn.call("blockStats of stuck", release.wait, 30),
                 label="domain stuck")
    try:
        with caplog.at_level(logging.WARNING):
            guard.submit(slow)
            guard.submit(stuck)
            guard.wait([slow, stuck], deadline_s=0.2, cycle_end=time.monotonic() + 5)
        assert (slow.abandoned, slow.result) == (False, "done")
        assert stuck.abandoned
        (line,) = [r.getMessage() for r in caplog.records]
        assert "domain stuck: blockStats of stuck has not answered for" in line
    finally:
        release.set()
        guard.stop()
        conn.close()
