"""A reader instance: polls its own domains on its own timer and its own libvirt connections.

Each reader has a control connection (domain lookups and ``controlInfo``, which
answer at once even while a domain's monitor is stuck) and a monitor connection
for the statistics calls that can block.  When a call on the monitor connection
is abandoned, that connection is retired and a fresh one takes the healthy
domains (libvirtd serves only 5 requests at a time per connection, so stuck
calls must not share one with healthy calls); the retired one is closed when its
stuck calls return.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Optional

import libvirt

from agentx_virt.collector.connection import Connection
from agentx_virt.collector.errors import (
    CollectorError,
    DomainGone,
    LibvirtUnavailable,
    NotAvailable,
)
from agentx_virt.collector.guard import Guard, Task
from agentx_virt.collector.layout import Layout
from agentx_virt.collector.sample import CallMemo, Sample, sample_domain
from agentx_virt.config import Config
from agentx_virt.snapshot import DomainStats

log = logging.getLogger(__name__)

CONTROL_OCCUPIED = getattr(libvirt, "VIR_DOMAIN_CONTROL_OCCUPIED", 2)


@dataclass(frozen=True)
class DomainRef:
    """A domain as the partitioner saw it: what a reader needs to poll it."""

    uuid: str
    name: str
    layout: Layout
    reader: int


@dataclass(frozen=True)
class ReaderResult:
    reader: int
    started: datetime
    duration_ms: int
    domains: Mapping[str, DomainStats]     # uuid -> stats (last good ones when stale)
    timed_out: int


class _Stuck(CollectorError):
    """controlInfo says the domain's monitor has been occupied too long."""


@dataclass
class _History:
    stats: DomainStats
    good_at: float                # monotonic time of the last good sample
    cpu_time_ns: Optional[int]
    taken_ns: int
    discontinuity: datetime


class Reader:
    def __init__(self, number: int, config: Config, assignment: Callable[[], list[DomainRef]],
                 host_cpus: Callable[[], Optional[int]],
                 publish: Callable[[ReaderResult], None]) -> None:
        self.number = number
        self.config = config
        self.name = f"reader-{number}"
        self._assignment = assignment
        self._host_cpus = host_cpus
        self._publish = publish
        self._stop = threading.Event()
        self._control: Optional[Connection] = None
        self._monitor: Optional[Connection] = None
        self._retired: dict[int, tuple[Connection, int]] = {}   # id -> (conn, stuck tasks)
        self._lock = threading.Lock()
        self._memo = CallMemo()
        self._history: dict[str, _History] = {}
        self.touched: set[str] = set()   # UUIDs this reader made calls for (for tests)
        self.guard = Guard(self.name, config.workers, config.workers + 64,
                           on_abandoned=self._retire_monitor,
                           on_abandoned_done=self._abandoned_done)
        self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> None:
        """Wait for the thread (if started), then release workers and connections."""
        if self.thread.is_alive():
            self.thread.join(timeout)
        self.guard.stop()
        for conn in (self._control, self._monitor):
            if conn is not None:
                conn.close()

    def _run(self) -> None:
        next_start = time.monotonic()
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:
                log.exception("%s: poll cycle failed", self.name)
            next_start += self.config.interval_s
            now = time.monotonic()
            if next_start < now:          # a slow cycle: skip ahead, never pile up
                next_start = now + self.config.interval_s
            self._stop.wait(next_start - now)

    # ------------------------------------------------------------ connections

    def _connection(self, which: str) -> Connection:
        current = self._control if which == "control" else self._monitor
        if current is not None and current.alive:
            return current
        if current is not None:
            log.warning("%s: libvirt %s connection lost; reopening", self.name, which)
            current.close()
        read_only = not (which == "monitor" and self.config.wants("fs_info"))
        conn = Connection(self.config.uri, f"{self.name}-{which}", read_only=read_only)
        if which == "control":
            self._control = conn
        else:
            with self._lock:
                self._monitor = conn
        return conn

    def _retire_monitor(self, task: Task) -> None:
        """Stop giving new calls to the task's connection: a call on it is stuck."""
        conn = task.context
        if not isinstance(conn, Connection):
            return
        with self._lock:
            if self._monitor is conn:
                self._monitor = None   # the next cycle opens a fresh one
            _, stuck = self._retired.get(id(conn), (conn, 0))
            self._retired[id(conn)] = (conn, stuck + 1)
        log.warning("%s: retiring a libvirt connection with a stuck call; healthy domains "
                    "move to a new one", self.name)

    def _abandoned_done(self, task: Task) -> None:
        conn = task.context
        if not isinstance(conn, Connection):
            return
        with self._lock:
            entry = self._retired.get(id(conn))
            if entry is None:
                return
            if entry[1] > 1:
                self._retired[id(conn)] = (conn, entry[1] - 1)
                return
            del self._retired[id(conn)]
        conn.close()

    # ------------------------------------------------------------ one cycle

    def poll_once(self) -> ReaderResult:
        started_wall = datetime.now(timezone.utc)
        started = time.monotonic()
        refs = self._assignment()
        try:
            control = self._connection("control")
            monitor = self._connection("monitor")
        except LibvirtUnavailable as exc:
            log.warning("%s: %s", self.name, exc)
            return self._emit(started_wall, started, refs, {}, "error")
        tasks: list[Task] = []
        for ref in refs:
            task = Task(ref.uuid, self._sampler(control, monitor, ref), context=monitor,
                        label=f"domain {ref.name}")
            if self.guard.submit(task):
                tasks.append(task)
        cycle_end = started + self.config.interval_s * 0.9
        self.guard.wait(tasks, self.config.domain_timeout_s, cycle_end)
        outcomes: dict[str, object] = {}
        for task in tasks:
            if task.abandoned:
                outcomes[task.key] = "timedOut"
            elif task.cancelled:
                outcomes[task.key] = "timedOut"
            elif isinstance(task.error, _Stuck):
                outcomes[task.key] = "timedOut"
            elif isinstance(task.error, DomainGone):
                outcomes[task.key] = "gone"
            elif isinstance(task.error, LibvirtUnavailable):
                log.warning("%s: %s", self.name, task.error)
                outcomes[task.key] = "error"
            elif task.error is not None:
                log.warning("%s: polling %s failed: %s", self.name, task.key, task.error)
                outcomes[task.key] = "error"
            else:
                outcomes[task.key] = task.result
        return self._emit(started_wall, started, refs, outcomes, "timedOut")

    def _sampler(self, control: Connection, monitor: Connection,
                 ref: DomainRef) -> Callable[[], Sample]:
        def sample() -> Sample:
            self.touched.add(ref.uuid)
            ctl_dom = control.domain(ref.uuid)
            try:
                state, _details, state_ms = control.call(f"controlInfo of {ref.name}",
                                                         ctl_dom.controlInfo, 0)
            except NotAvailable:
                pass  # not running: there is no monitor to be stuck
            else:
                if state == CONTROL_OCCUPIED and \
                        state_ms >= self.config.domain_timeout_s * 1000:
                    raise _Stuck(f"{ref.name}: monitor occupied for {state_ms} ms")
            dom = monitor.domain(ref.uuid)
            return sample_domain(monitor, dom, ref.name, ref.layout, self.config.wants,
                                 self._memo)
        return sample

    def _emit(self, started_wall: datetime, started: float, refs: list[DomainRef],
              outcomes: Mapping[str, object], default: str) -> ReaderResult:
        now = time.monotonic()
        domains: dict[str, DomainStats] = {}
        timed_out = 0
        for ref in refs:
            outcome = outcomes.get(ref.uuid, default)
            if outcome == "gone":
                self._history.pop(ref.uuid, None)
                for conn in (self._control, self._monitor):
                    if conn is not None:
                        conn.forget(ref.uuid)
                continue
            if isinstance(outcome, Sample):
                for problem in outcome.problems:
                    log.warning("%s: %s", self.name, problem)
                domains[ref.uuid] = self._fresh(ref, outcome, now, started_wall)
                continue
            status = str(outcome)
            if status == "timedOut":
                timed_out += 1
            domains[ref.uuid] = self._stale(ref, status, now)
        result = ReaderResult(self.number, started_wall, int((now - started) * 1000),
                              domains, timed_out)
        self._publish(result)
        return result

    def _fresh(self, ref: DomainRef, sample: Sample, now: float,
               wall: datetime) -> DomainStats:
        stats = sample.stats
        previous = self._history.get(ref.uuid)
        cpu = stats.cpu_time_total_ns
        util_vcpus = util_host = None
        discontinuity = previous.discontinuity if previous is not None else wall
        if previous is not None and cpu is not None and previous.cpu_time_ns is not None:
            if cpu < previous.cpu_time_ns or (previous.stats.state not in (1, 2, 3, 4, 7)
                                              and stats.state == 1):
                discontinuity = wall       # restarted or migrated in: counters start over
            elif self.config.wants("cpu_util"):
                elapsed_ns = sample.taken_ns - previous.taken_ns
                used_ns = cpu - previous.cpu_time_ns
                if elapsed_ns > 0:
                    vcpus = stats.vcpus_current or len(stats.vcpus) or None
                    host_cpus = self._host_cpus()
                    if vcpus:
                        util_vcpus = min(10000, round(used_ns * 10000 / (elapsed_ns * vcpus)))
                    if host_cpus:
                        util_host = min(10000,
                                        round(used_ns * 10000 / (elapsed_ns * host_cpus)))
        fresh = dataclasses.replace(
            stats, name=ref.name, reader=self.number, partition_tag=ref.layout.tag or "",
            poll_status="ok", data_age_s=0, cpu_util_vcpus=util_vcpus,
            cpu_util_host=util_host, discontinuity_time=discontinuity)
        self._history[ref.uuid] = _History(fresh, now, cpu, sample.taken_ns, discontinuity)
        return fresh

    def _stale(self, ref: DomainRef, status: str, now: float) -> DomainStats:
        previous = self._history.get(ref.uuid)
        if previous is None:
            return DomainStats(index=0, uuid=ref.uuid, name=ref.name, reader=self.number,
                               partition_tag=ref.layout.tag or "", poll_status=status)
        return dataclasses.replace(previous.stats, poll_status=status,
                                   data_age_s=int(now - previous.good_at))
