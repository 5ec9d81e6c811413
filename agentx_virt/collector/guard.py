"""Hang isolation: per-domain tasks on a bounded worker pool, with deadlines.

A blocked libvirt call cannot be cancelled, so a task past its deadline is
abandoned: its worker stays blocked until libvirt returns, and a replacement
worker is started so the healthy domains keep ``workers`` threads.  A domain
whose task is still running gets no second task.  Threads are bounded: at most
``workers`` plus one per abandoned task, and never more than ``max_threads``;
a worker whose abandoned call finally returns exits if it is surplus.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable, Optional

log = logging.getLogger(__name__)


class Task:
    """One domain's work in one cycle."""

    def __init__(self, key: str, function: Callable[[], Any], context: object = None,
                 label: Optional[str] = None) -> None:
        self.key = key
        self.label = label or key         # for log lines, e.g. the domain's name
        self.function = function
        self.context = context            # e.g. the connection the task uses
        self.started: Optional[float] = None
        self.done = threading.Event()
        self.result: Any = None
        self.error: Optional[BaseException] = None
        self.cancelled = False
        self.abandoned = False

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
        self._queue: queue.Queue[Optional[Task]] = queue.Queue()
        self._lock = threading.Lock()
        self._threads = 0
        self._abandoned = 0
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
        with self._lock:
            if self._stopping:
                return False
            running = self._in_flight.get(task.key)
            if running is not None:
                return False
            self._in_flight[task.key] = task
            self._ensure_workers()
        self._queue.put(task)
        return True

    def wait(self, tasks: list[Task], deadline_s: float, cycle_end: float) -> None:
        """Wait for ``tasks``: each may run ``deadline_s`` from its start; tasks not started
        by ``cycle_end`` (monotonic) are cancelled; tasks past their deadline abandoned."""
        pending = list(tasks)
        while pending:
            now = time.monotonic()
            still = []
            for task in pending:
                if task.done.is_set():
                    continue
                if task.started is None:
                    if now >= cycle_end:
                        self._cancel(task)
                        continue
                elif now - task.started >= deadline_s:
                    self._abandon(task)
                    continue
                still.append(task)
            pending = still
            if pending:
                waits = [deadline_s - t.running_s if t.started is not None else cycle_end - now
                         for t in pending]
                pending[0].done.wait(max(0.001, min(0.05, *waits)))

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
            count = self._threads
        for _ in range(count):
            self._queue.put(None)

    # ------------------------------------------------------------ internals

    def _ensure_workers(self) -> None:
        # Called with the lock held: keep `workers` threads free of abandoned calls.
        while self._threads - self._abandoned < self.workers and \
                self._threads < self.max_threads:
            self._serial += 1
            self._threads += 1
            threading.Thread(target=self._work, name=f"{self.name}-worker-{self._serial}",
                             daemon=True).start()

    def _cancel(self, task: Task) -> None:
        with self._lock:
            if task.started is not None:
                return
            task.cancelled = True
            if self._in_flight.get(task.key) is task:
                del self._in_flight[task.key]
        task.done.set()

    def _abandon(self, task: Task) -> None:
        with self._lock:
            if task.done.is_set() or task.abandoned:
                return
            task.abandoned = True
            self._abandoned += 1
            if self._on_abandoned is not None:
                self._on_abandoned(task)
            self._ensure_workers()
            threads = self._threads
        log.warning("%s: %s has not answered for %.1f s; its call is abandoned until libvirt "
                    "returns (%d worker threads)", self.name, task.label, task.running_s, threads)

    def _work(self) -> None:
        while True:
            task = self._queue.get()
            if task is None:
                with self._lock:
                    self._threads -= 1
                return
            with self._lock:
                if task.cancelled:
                    continue
                task.started = time.monotonic()
            try:
                task.result = task.function()
            except BaseException as exc:  # noqa: BLE001 - handed to the reader with the task
                task.error = exc
            with self._lock:
                if self._in_flight.get(task.key) is task:
                    del self._in_flight[task.key]
                was_abandoned = task.abandoned
                surplus = False
                if was_abandoned:
                    self._abandoned -= 1
                    surplus = self._threads - self._abandoned > self.workers
                    if surplus:
                        self._threads -= 1
            task.done.set()
            if was_abandoned:
                log.info("%s: %s answered again after %.1f s", self.name, task.label,
                         task.running_s)
                if self._on_abandoned_done is not None:
                    self._on_abandoned_done(task)
                if surplus:
                    return
