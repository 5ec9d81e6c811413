"""Hang isolation: per-domain tasks on a bounded worker pool, with deadlines.

A blocked libvirt call cannot be cancelled, so a task past its deadline is
abandoned: its worker stays blocked until libvirt returns, and a replacement
worker is started so the healthy domains keep ``workers`` threads.  A domain
whose task is still running gets no second task.  Threads are bounded: at most
``workers`` plus one per abandoned task, and never more than ``max_threads``;
a worker whose abandoned call finally returns exits if it is surplus.

A task is abandoned only when one libvirt call of its own has run past the
deadline (``Task.call_started``, set by ``Connection.call`` on the worker): a
task that waited for its worker, or whose Python work is slowed by a busy
process (walks being served, a long cycle), is not stuck.  A task that runs
``RUNAWAY_FACTOR`` deadlines in all without being in a call is abandoned too, so
a call made outside ``Connection.call`` cannot wedge a reader.

Each domain always goes to the same one of ``workers`` slots (its key's hash),
and a slot's tasks run on that slot's thread: a worker's own libvirt connection
then looks up and keeps only its slot's domains, instead of every worker
connection keeping every domain.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable, Optional

log = logging.getLogger(__name__)

RUNAWAY_FACTOR = 4
_running = threading.local()      # .task: the task this worker thread runs


def current_task() -> Optional[Task]:
    """The task the calling worker thread runs (None off the guard's workers)."""
    task: Optional[Task] = getattr(_running, "task", None)
    return task


def _done() -> None:
    """What a task's function becomes once it has run."""


class _Waiter:
    """How many of one ``Guard.wait``'s tasks are not settled yet."""

    def __init__(self) -> None:
        self.open = 0


class Task:
    """One domain's work in one cycle."""

    def __init__(self, key: str, function: Callable[[], Any], context: object = None,
                 label: Optional[str] = None, slot: Optional[int] = None) -> None:
        self.key = key
        self.slot = slot                  # the worker slot; None: by the key's hash
        self.label = label or key         # for log lines, e.g. the domain's name
        self.function = function
        self.context = context            # e.g. the connection the task uses
        self.started: Optional[float] = None
        self.call_started: Optional[float] = None    # the libvirt call in flight, if any
        self.call_what = ""                          # ...and what it is, for log lines
        self.result: Any = None
        self.error: Optional[BaseException] = None
        self.cancelled = False
        self.abandoned = False
        self.settled = False              # returned, cancelled or abandoned: no more waiting
        self._waiter: Optional[_Waiter] = None

    @property
    def running_s(self) -> float:
        return 0.0 if self.started is None else time.monotonic() - self.started


class Guard:
    """Runs tasks keyed by domain; see the module docstring."""

    def __init__(self, name: str, workers: int, max_threads: int,
                 on_abandoned: Optional[Callable[[Task], None]] = None,
                 on_abandoned_done: Optional[Callable[[Task], None]] = None) -> None:
        if workers < 1 or max_threads < workers:
            raise ValueError(f"need 1 <= workers <= max_threads, got {workers}, {max_threads}")
        self.name = name
        self.workers = workers
        self.max_threads = max_threads
        # on_abandoned runs under the guard's lock, so it always precedes on_abandoned_done
        # for the same task; it must not call back into the guard.
        self._on_abandoned = on_abandoned
        self._on_abandoned_done = on_abandoned_done
        # SimpleQueue: put and get in C, without queue.Queue's Python-level conditions.
        self._queues: list[queue.SimpleQueue[Optional[Task]]] = [queue.SimpleQueue()
                                                                 for _ in range(workers)]
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)   # a waited-for task settled
        self._threads = 0
        self._abandoned = 0
        self._slot_threads = [0] * workers       # threads per slot, abandoned ones included
        self._slot_abandoned = [0] * workers
        self._in_flight: dict[str, Task] = {}
        self._serial = 0
        self._stopping = False

    # ------------------------------------------------------------ public

    def in_flight(self, key: str) -> Optional[Task]:
        """The task still running for ``key`` (an abandoned one), if any."""
        with self._lock:
            return self._in_flight.get(key)

    def submit(self, task: Task) -> bool:
        """Queue ``task``; False (nothing queued) when its key still has a task running."""
        slot = self.slot(task.key) if task.slot is None else task.slot
        if not 0 <= slot < self.workers:
            raise ValueError(f"task {task.label}: slot {slot} is not one of 0..{self.workers - 1}")
        with self._lock:
            if self._stopping:
                return False
            running = self._in_flight.get(task.key)
            if running is not None:
                return False
            self._in_flight[task.key] = task
            task.slot = slot
            self._ensure_workers()
        self._queues[slot].put(task)
        return True

    def wait(self, tasks: list[Task], deadline_s: float, cycle_end: float) -> None:
        """Wait for ``tasks``: each may run ``deadline_s`` from its start; tasks not started
        by ``cycle_end`` (monotonic) are cancelled; tasks past their deadline abandoned.

        Sleeps until every task has settled or a deadline may have passed; only then
        are the tasks looked at, so a cycle of many quick tasks costs no scanning.
        """
        waiter = _Waiter()
        with self._lock:
            for task in tasks:
                if not task.settled:
                    task._waiter = waiter
                    waiter.open += 1
        check_at = time.monotonic()
        while True:
            with self._lock:
                while waiter.open and time.monotonic() < check_at:
                    self._settled.wait(check_at - time.monotonic())
                if not waiter.open:
                    return
            now = time.monotonic()
            # Any task that starts from now on has its deadline after now + deadline_s.
            check_at = now + deadline_s
            for task in tasks:
                if task.settled:
                    continue
                started = task.started
                if started is None:
                    if now >= cycle_end:
                        self._cancel(task)
                    else:
                        check_at = min(check_at, cycle_end)
                else:
                    call_started = task.call_started
                    if call_started is not None and now - call_started >= deadline_s:
                        self._abandon(task)
                    elif now - started >= RUNAWAY_FACTOR * deadline_s:
                        self._abandon(task)
                    elif call_started is not None:
                        check_at = min(check_at, call_started + deadline_s)
                    else:
                        # Between calls: a call it starts after now is seen at the next
                        # look, by now + deadline_s at the latest, still within its
                        # own deadline.
                        check_at = min(check_at, started + RUNAWAY_FACTOR * deadline_s)

    @property
    def threads(self) -> int:
        with self._lock:
            return self._threads

    @property
    def abandoned(self) -> int:
        with self._lock:
            return self._abandoned

    def stop(self) -> None:
        """Let idle workers exit; workers blocked in libvirt exit when their call returns."""
        with self._lock:
            self._stopping = True
            counts = list(self._slot_threads)
        for slot, count in enumerate(counts):
            for _ in range(count):
                self._queues[slot].put(None)

    # ------------------------------------------------------------ internals

    def slot(self, key: str) -> int:
        """The worker slot a task with this key goes to (unless it names one)."""
        return hash(key) % self.workers

    def _ensure_workers(self) -> None:
        # Called with the lock held: keep one thread free of abandoned calls per slot.
        for slot in range(self.workers):
            if self._slot_threads[slot] - self._slot_abandoned[slot] >= 1 or \
                    self._threads >= self.max_threads:
                continue
            self._serial += 1
            self._threads += 1
            self._slot_threads[slot] += 1
            threading.Thread(target=self._work, args=(slot,),
                             name=f"{self.name}-worker-{self._serial}", daemon=True).start()

    def _cancel(self, task: Task) -> None:
        with self._lock:
            if task.started is not None:
                return
            task.cancelled = True
            if self._in_flight.get(task.key) is task:
                del self._in_flight[task.key]
            self._settle(task)

    def _abandon(self, task: Task) -> None:
        with self._lock:
            if task.settled:
                return
            task.abandoned = True
            self._settle(task)
            self._abandoned += 1
            assert task.slot is not None        # set by submit
            self._slot_abandoned[task.slot] += 1
            if self._on_abandoned is not None:
                self._on_abandoned(task)
            self._ensure_workers()
            threads = self._threads
        call_started = task.call_started
        if call_started is not None:
            log.warning("%s: %s: %s has not answered for %.1f s; abandoned until libvirt "
                        "returns (%d worker threads)", self.name, task.label, task.call_what,
                        time.monotonic() - call_started, threads)
        else:
            log.warning("%s: %s ran for %.1f s outside any libvirt call; abandoned (%d worker "
                        "threads)", self.name, task.label, task.running_s, threads)

    def _settle(self, task: Task) -> None:
        # Called with the lock held.
        if task.settled:
            return
        task.settled = True
        waiter = task._waiter
        if waiter is not None:
            waiter.open -= 1
            if not waiter.open:
                self._settled.notify_all()

    def _work(self, slot: int) -> None:
        while True:
            task = self._queues[slot].get()
            if task is None:
                with self._lock:
                    self._threads -= 1
                    self._slot_threads[slot] -= 1
                return
            stay = self._run(task, slot)
            del task        # not held while waiting for the next one
            if not stay:
                return

    def _run(self, task: Task, slot: int) -> bool:
        """Run one task on this worker; False when the worker is surplus and must exit."""
        with self._lock:
            if task.cancelled:
                return True
            task.started = time.monotonic()
        _running.task = task
        try:
            task.result = task.function()
        except BaseException as exc:  # noqa: BLE001 - handed to the reader with the task
            task.error = exc
        finally:
            _running.task = None
        # The work often captures its own task (to set its context): release it, so
        # the task and its result are freed when the caller drops them instead of
        # waiting for a cyclic garbage collection (measured: three cycles' worth
        # of domain statistics held at once).
        task.function = _done
        with self._lock:
            if self._in_flight.get(task.key) is task:
                del self._in_flight[task.key]
            was_abandoned = task.abandoned
            surplus = False
            if was_abandoned:
                self._abandoned -= 1
                self._slot_abandoned[slot] -= 1
                # Surplus when its slot got a replacement meanwhile.
                surplus = self._slot_threads[slot] - self._slot_abandoned[slot] > 1
                if surplus:
                    self._threads -= 1
                    self._slot_threads[slot] -= 1
            self._settle(task)
        if was_abandoned:
            log.info("%s: %s answered again after %.1f s", self.name, task.label,
                     task.running_s)
            if self._on_abandoned_done is not None:
                self._on_abandoned_done(task)
        return not surplus
