"""A reader instance: polls its own domains on its own timer and its own libvirt connections.

Each reader has a control connection, which tells at the start of a cycle whether
libvirt answers, and per worker thread a monitor connection for the domain's calls:
``controlInfo`` first (libvirtd answers it at once even while the domain's monitor
is stuck), then the statistics calls that can block.  The check is left out when
the domain's bulk record of this cycle holds statistics only its monitor gives.

A stuck call must not share a connection with healthy ones: libvirtd serves 5
requests at a time per connection, and measured here, a healthy call on the same
connection as a stuck one waited 5 s (the keepalive interval) for its reply.  A
worker makes one call at a time, and the worker whose call is abandoned keeps its
connection to itself; that connection is retired, and closed by the worker when
the call finally returns.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, NamedTuple, Optional

import libvirt

from agentx_virt.app.config import Config
from agentx_virt.collector.calls import CallMemo
from agentx_virt.collector.connection import Connection, ConnectionFactory
from agentx_virt.collector.errors import (
    CollectorError,
    DomainGone,
    LibvirtUnavailable,
    NotAvailable,
)
from agentx_virt.collector.guard import Guard, Task
from agentx_virt.collector.outage import REMINDER_S
from agentx_virt.collector.prefetch import Prefetcher
from agentx_virt.collector.rates import fresh_stats
from agentx_virt.collector.refs import DomainRef, ReaderResult
from agentx_virt.collector.sample import (
    Prefetched,
    Sample,
    monitor_answered,
    sample_domain,
)
from agentx_virt.collector.uptime import process_start
from agentx_virt.model.libvirt_names import ACTIVE_STATES
from agentx_virt.model.record import slotted
from agentx_virt.model.snapshot import DomainStats, HostInfo, PollStatus, StatGroup
from agentx_virt.ratelog import RateLimitedLog

log = logging.getLogger(__name__)

CONTROL_OCCUPIED = getattr(libvirt, "VIR_DOMAIN_CONTROL_OCCUPIED", 2)
# Hypervisors whose domains have no monitor or job for a call to be stuck on: libvirt's
# test driver answers every call at once, so no controlInfo is asked of it.
NO_MONITOR = frozenset({"TEST"})
_GONE = object()       # an outcome: the domain is gone, its row and history with it


class _Stuck(CollectorError):
    """controlInfo says the domain's monitor has been occupied too long."""


class _Polled(NamedTuple):
    stats: DomainStats
    taken_ns: int                 # when its CPU time was read
    problems: tuple[str, ...]     # failures worth a log line


@slotted
@dataclass
class _History:
    stats: DomainStats            # the last good stats, as published
    good_at: float                # monotonic time of the last good sample
    taken_ns: int                 # when its CPU time was read


class Reader:
    def __init__(self, number: int, config: Config, assignment: Callable[[], list[DomainRef]],
                 host: Callable[[], HostInfo],
                 publish: Callable[[ReaderResult], None],
                 connect: ConnectionFactory = Connection) -> None:
        self._connect = connect
        self.number = number
        self.config = config
        self.name = f"reader-{number}"
        self._assignment = assignment
        self._host = host             # the partitioner's view of the host (CPUs, driver)
        self._publish = publish
        self._stop = threading.Event()
        self._wake = threading.Event()           # stop, or a new interval to wait for
        self.busy_since: Optional[float] = None  # monotonic start of the cycle running
        self._control: Optional[Connection] = None
        self._local = threading.local()          # .conn: this worker's monitor connection
        self._monitors: set[Connection] = set()  # every open monitor connection
        self._retired: set[Connection] = set()   # those with a stuck call
        self._lock = threading.Lock()
        self._memo = CallMemo()
        self._down = False                       # libvirt unreachable at the last poll
        self._history: dict[str, _History] = {}
        self._timed_out: set[str] = set()        # UUIDs not answered in the last cycle
        self._busy_log = RateLimitedLog(log, REMINDER_S)   # cycles that skip domains
        self.guard = Guard(self.name, config.workers, config.workers + 64,
                           on_abandoned=self._retire_monitor,
                           on_abandoned_done=self._abandoned_done)
        self._prefetcher = Prefetcher(self.name, self.guard, config.domain_timeout_s,
                                      config.wants, self._monitor_for)
        self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def reconfigure(self, config: Config) -> None:
        """A reload's interval (the wait under way is measured again), domain timeout and
        statistics groups (any thread); another URI or worker count needs a new reader."""
        self._prefetcher = Prefetcher(self.name, self.guard, config.domain_timeout_s,
                                      config.wants, self._monitor_for)
        self.config = config
        self._wake.set()

    def adopt(self, history: Mapping[str, object],
              mine: Callable[[DomainStats], bool]) -> None:
        """Take the last good samples of the readers this one replaces (before ``start``),
        of the domains ``mine`` says it polls: rates such as cpu_util go on from them."""
        self._history.update((uuid, h) for uuid, h in history.items()
                             if isinstance(h, _History) and mine(h.stats))

    @property
    def history(self) -> Mapping[str, object]:
        """The last good sample of each domain, for the readers that replace this one."""
        return dict(self._history)

    def join(self, timeout: float) -> None:
        """Wait for the thread (if started), then release workers and connections."""
        if self.thread.is_alive():
            self.thread.join(timeout)
        self.guard.stop()
        with self._lock:
            monitors = list(self._monitors - self._retired)
            self._monitors.clear()
        for conn in [self._control, *monitors]:
            if conn is not None:
                conn.close()

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set():
            self.busy_since = time.monotonic()
            try:
                self.poll_once()
            except Exception:
                log.exception("%s: poll cycle failed", self.name)
            self.busy_since = None
            start = self._next_start(start)

    def _next_start(self, start: float) -> float:
        """Wait for the next cycle: ``start`` plus the interval, or, after a slow cycle,
        an interval from now (never pile up).  A reload that changes the interval ends
        the wait, which is then measured from ``start`` with the new interval."""
        interval = self.config.interval_s
        due = start + interval
        if due < time.monotonic():
            due = time.monotonic() + interval
        while not self._stop.is_set():
            remaining = due - time.monotonic()
            if remaining <= 0:
                break
            if self._wake.wait(remaining):
                self._wake.clear()
                if self.config.interval_s != interval:
                    interval = self.config.interval_s
                    due = max(start + interval, time.monotonic())
        return due

    # ------------------------------------------------------------ connections

    def _control_connection(self) -> Connection:
        if self._control is not None and self._control.alive:
            return self._control
        if self._control is not None:
            log.info("%s: libvirt control connection lost; reopening", self.name)
            self._control.close()
            self._control = None
        self._control = self._connect(self.config.uri, f"{self.name}-control")
        return self._control

    def _monitor_connection(self) -> Connection:
        """This worker thread's own monitor connection (runs on the worker)."""
        conn: Optional[Connection] = getattr(self._local, "conn", None)
        if conn is not None:
            with self._lock:
                usable = conn not in self._retired and conn in self._monitors
            if usable and conn.alive:
                return conn
            if usable:
                log.info("%s: libvirt connection lost; reopening", self.name)
                with self._lock:
                    self._monitors.discard(conn)
                conn.close()
        # Read-only: the guest agents' calls, the only ones that need more, have their
        # own connections (guest.py).
        conn = self._connect(self.config.uri, f"{threading.current_thread().name}")
        self._local.conn = conn
        with self._lock:
            self._monitors.add(conn)
        return conn

    def _monitor_for(self, task: Task) -> Connection:
        """This worker's monitor connection, recorded as the task's, so that abandoning
        the task retires the connection (runs on the worker)."""
        monitor = self._monitor_connection()
        task.context = monitor
        return monitor

    def _retire_monitor(self, task: Task) -> None:
        """The task's call is stuck: no new call goes to its connection."""
        conn = task.context
        if isinstance(conn, Connection):
            with self._lock:
                self._retired.add(conn)

    def _abandoned_done(self, task: Task) -> None:
        """The stuck call returned (on its worker): close the retired connection."""
        conn = task.context
        if not isinstance(conn, Connection):
            return
        with self._lock:
            self._retired.discard(conn)
            self._monitors.discard(conn)
        conn.close()

    # ------------------------------------------------------------ one cycle

    def poll_once(self) -> ReaderResult:
        self._memo.cycle += 1
        started_wall = datetime.now(timezone.utc)
        started = time.monotonic()
        refs = self._assignment()
        try:
            self._control_connection()
        except LibvirtUnavailable as exc:
            if not self._down:      # the partitioner warns of the outage; here it is news
                log.info("%s: %s; domains keep their last values (poll status error) "
                         "until libvirt is back", self.name, exc)
                self._down = True
            return self._emit(started_wall, started, refs, {}, PollStatus.ERROR)
        if self._down:
            log.info("%s: libvirt is back", self.name)
            self._down = False
        cycle_end = started + self.config.interval_s * 0.9
        # Domains not answered in the last cycle, or with a call still running, are left
        # out of the bulk calls: each is asked alone.
        prefetched = self._prefetcher.fetch(
            [ref for ref in refs if ref.uuid not in self._timed_out
             and self.guard.in_flight(ref.uuid) is None], cycle_end)
        tasks: list[Task] = []
        for ref in self._least_recent_first(refs):
            task = Task(ref.uuid, lambda: None, label=f"domain {ref.name}")
            task.function = self._sampler(ref, task, started_wall, prefetched.get(ref.uuid))
            if self.guard.submit(task):
                tasks.append(task)
        del prefetched
        self.guard.wait(tasks, self.config.domain_timeout_s, cycle_end)
        outcomes: dict[str, object] = {}
        skipped = 0
        for task in tasks:
            if task.abandoned:          # its own call is stuck (the guard logged which)
                outcomes[task.key] = PollStatus.TIMED_OUT
            elif task.cancelled:        # no worker reached it in time: busy, not hung
                outcomes[task.key] = PollStatus.SKIPPED
                skipped += 1
            elif isinstance(task.error, _Stuck):
                if task.key not in self._timed_out:
                    log.warning("%s: %s; its statistics wait (poll status timedOut)",
                                self.name, task.error)
                outcomes[task.key] = PollStatus.TIMED_OUT
            elif isinstance(task.error, DomainGone):
                outcomes[task.key] = _GONE
            elif isinstance(task.error, LibvirtUnavailable):
                log.debug("%s: %s", self.name, task.error)   # the outage is warned of once
                outcomes[task.key] = PollStatus.ERROR
            elif task.error is not None:
                log.warning("%s: polling %s failed: %s", self.name, task.key, task.error)
                outcomes[task.key] = PollStatus.ERROR
            else:
                outcomes[task.key] = task.result
        self._report_skipped(skipped, len(refs))
        return self._emit(started_wall, started, refs, outcomes, PollStatus.TIMED_OUT)

    def _least_recent_first(self, refs: list[DomainRef]) -> list[DomainRef]:
        """``refs`` with those never polled first, then by the age of their last good
        sample: when a cycle cannot reach every domain, those it skipped come first in
        the next, so each is reached within a few cycles, not the same ones never."""
        history = self._history
        never = float("-inf")
        return sorted(refs, key=lambda ref: history[ref.uuid].good_at
                      if ref.uuid in history else never)

    def _report_skipped(self, skipped: int, total: int) -> None:
        """A WARNING when a cycle ends before every domain is reached; then, however often
        it comes and goes, one line every REMINDER_S with how many cycles did so."""
        if skipped:
            self._busy_log.warning(
                "cycles that ended before every domain was reached",
                "%s: the cycle ended before %d of %d domains were reached; they keep their "
                "last values (poll status skipped). The host or the agent is busy: a longer "
                "interval or more workers helps", self.name, skipped, total)
        self._busy_log.flush()

    def _sampler(self, ref: DomainRef, task: Task, wall: datetime,
                 prefetched: Optional[Prefetched]) -> Callable[[], _Polled]:
        def sample() -> _Polled:
            monitor = self._monitor_for(task)
            dom = monitor.domain(ref.uuid)
            last = self._history.get(ref.uuid)
            # A domain that was shut off at its last poll has no monitor to be stuck on,
            # unless it was started since: then a hang costs one abandoned call.  One
            # whose monitor filled its bulk record in this cycle is not asked either.
            if ((last is None or last.stats.state in ACTIVE_STATES)
                    and not monitor_answered(prefetched)
                    and self._host().hypervisor_type not in NO_MONITOR):
                self._check_control(monitor, dom, ref.name)
            # The record is made here on the worker, so a cycle holds each domain's
            # statistics once (not also the field values until every domain is done).
            return self._fresh(ref, sample_domain(monitor, dom, ref.uuid, ref.name, ref.layout,
                                                  self.config.wants, self._memo,
                                                  self._host().hypervisor_type, prefetched),
                               wall)
        return sample

    def _check_control(self, conn: Connection, dom: libvirt.virDomain, name: str) -> None:
        """Raise _Stuck when the domain's monitor has been occupied past the deadline."""
        try:
            state, _details, state_ms = conn.call(f"controlInfo of {name}", dom.controlInfo, 0)
        except NotAvailable:
            return  # not running: there is no monitor to be stuck
        if state == CONTROL_OCCUPIED and state_ms >= self.config.domain_timeout_s * 1000:
            raise _Stuck(f"{name}: monitor occupied for {state_ms} ms")

    def _emit(self, started_wall: datetime, started: float, refs: list[DomainRef],
              outcomes: Mapping[str, object], default: PollStatus) -> ReaderResult:
        now = time.monotonic()
        domains: dict[str, DomainStats] = {}
        for ref in refs:
            outcome = outcomes.get(ref.uuid, default)
            if outcome is _GONE:
                self._history.pop(ref.uuid, None)
                self._memo.forget(ref.uuid)
                with self._lock:
                    connections = [self._control, *self._monitors]
                for conn in connections:
                    if conn is not None:
                        conn.forget(ref.uuid)
                continue
            if isinstance(outcome, _Polled):
                for problem in outcome.problems:
                    log.warning("%s: %s", self.name, problem)
                self._history[ref.uuid] = _History(outcome.stats, now, outcome.taken_ns)
                domains[ref.uuid] = outcome.stats
                continue
            domains[ref.uuid] = self._stale(
                ref, outcome if isinstance(outcome, PollStatus) else default, now)
        self._timed_out = {uuid for uuid, d in domains.items()
                           if d.poll_status == PollStatus.TIMED_OUT}
        result = ReaderResult(self.number, started_wall, int((now - started) * 1000), domains)
        self._publish(result)
        return result

    def _fresh(self, ref: DomainRef, sample: Sample, wall: datetime) -> _Polled:
        """The domain's record from a sample and its last good one (runs on a worker: only
        the reader thread writes the history, while no task for the domain runs)."""
        previous = self._history.get(ref.uuid)
        fresh = fresh_stats(ref, self.number, sample, wall,
                            None if previous is None else (previous.stats, previous.taken_ns),
                            self._host(), self.config.wants(StatGroup.CPU_UTIL), process_start)
        return _Polled(fresh, sample.taken_ns, sample.problems)

    def _stale(self, ref: DomainRef, status: PollStatus, now: float) -> DomainStats:
        previous = self._history.get(ref.uuid)
        if previous is None:
            # Left out of a busy cycle before its first poll: still not polled (the first
            # table waits for every domain's first poll).
            if status == PollStatus.SKIPPED:
                status = PollStatus.NOT_POLLED
            return DomainStats(**ref.described(), reader=self.number, poll_status=status)
        return dataclasses.replace(previous.stats, poll_status=status,
                                   data_age_s=int(now - previous.good_at))
