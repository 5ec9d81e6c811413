"""A reader's bulk statistics, in calls sized to fit the per-call deadline.

One call for many domains costs a fraction of one per domain (measured on 8 QEMU/TCG
domains: 0.22 against 0.47-0.53 ms of CPU per domain for controlInfo, bulk statistics
and the current job), but one call for every domain of a large host can outlast the
deadline, and a call past its deadline is abandoned whole (a libvirt call cannot be
cancelled).  So the domains of each worker slot are asked in chunks: the chunk size
follows the measured cost per domain so that one call takes about a quarter of the
deadline, and a chunk that outlasts it halves the next size.  The chunks of a slot run
one after the other on the connection that already knows its domains.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Callable, Optional, TypeVar

from agentx_virt.collector.connection import Connection
from agentx_virt.collector.errors import DomainGone
from agentx_virt.collector.guard import Guard, Task
from agentx_virt.collector.refs import DomainRef, bulk_batches
from agentx_virt.collector.sample import Prefetched, bulk_stats
from agentx_virt.model.snapshot import StatGroup

log = logging.getLogger(__name__)
T = TypeVar("T")

BULK_KEY = "bulk statistics"     # the guard's keys for calls that cover many domains
FIRST_CHUNK = 250                # domains per call before any call was measured
MOST_PER_CHUNK = 5000
BUDGET = 0.25                    # the share of the deadline one call is sized to take


def domains_text(count: int) -> str:
    return "1 domain" if count == 1 else f"{count} domains"


class ChunkSizer:
    """How many domains one bulk call may cover so that it fits ``deadline_s``.

    Pure: told what calls cost, it answers with a size.  The cost per domain is a
    moving average (each new call weighs a quarter), so one slow call does not undo
    what many measured.
    """

    def __init__(self, deadline_s: float, first: int = FIRST_CHUNK,
                 most: int = MOST_PER_CHUNK) -> None:
        self._deadline_s = deadline_s
        self._most = most
        self._size = min(first, most)
        self._per_domain_s: Optional[float] = None

    @property
    def size(self) -> int:
        return self._size

    def measured(self, domains: int, seconds: float) -> None:
        """A call for ``domains`` domains answered in ``seconds``."""
        if domains < 1:
            return
        cost = max(seconds, 1e-6) / domains
        self._per_domain_s = cost if self._per_domain_s is None \
            else 0.75 * self._per_domain_s + 0.25 * cost
        fit = int(BUDGET * self._deadline_s / self._per_domain_s)
        # Grow by at most double per call: a cheap small call says little of a big one.
        self._size = max(1, min(self._most, fit, 2 * max(self._size, domains)))

    def timed_out(self, domains: int) -> None:
        """A call for ``domains`` domains outlasted the deadline: half that, next time."""
        self._size = max(1, min(self._size, domains // 2))


def chunked(batches: Sequence[tuple[int, list[T]]], size: int) -> list[tuple[int, list[T]]]:
    """Each (slot, domains) batch cut into calls of at most ``size`` domains, in order."""
    return [(slot, group[start:start + size]) for slot, group in batches
            for start in range(0, len(group), size)]


class Prefetcher:
    """A reader's bulk calls for one cycle at a time (called from the reader's thread)."""

    def __init__(self, name: str, guard: Guard, deadline_s: float,
                 wants: Callable[[StatGroup], bool],
                 monitor_for: Callable[[Task], Connection]) -> None:
        self._name = name
        self._guard = guard
        self._deadline_s = deadline_s
        self._wants = wants
        self._monitor_for = monitor_for
        self.sizer = ChunkSizer(deadline_s)
        self._problem: Optional[str] = None       # the last failure of a bulk call

    def fetch(self, refs: list[DomainRef], cycle_end: float) -> dict[str, Prefetched]:
        """The bulk records of ``refs`` by UUID; a domain whose call failed, timed out or
        did not start before ``cycle_end`` is absent (its sampler asks it alone)."""
        batches = chunked(bulk_batches(refs, lambda ref: self._guard.slot(ref.uuid)),
                          self.sizer.size)
        tasks = []
        for number, (slot, wanted) in enumerate(batches):
            task = Task(f"{BULK_KEY} {slot}.{number}", lambda: None, slot=slot,
                        label=f"the bulk statistics of {domains_text(len(wanted))}")
            task.function = self._call(task, wanted)
            if self._guard.submit(task):
                tasks.append((task, len(wanted)))
        if not tasks:
            return {}
        self._guard.wait([task for task, _ in tasks], self._deadline_s, cycle_end)
        found: dict[str, Prefetched] = {}
        problems = []
        for task, count in tasks:
            if task.error is None and isinstance(task.result, tuple):
                records, seconds = task.result
                found.update(records)
                self.sizer.measured(count, seconds)
                continue
            if task.abandoned:
                self.sizer.timed_out(count)
            problems.append(str(task.error) if task.error is not None
                            else "no answer in time")
        self._report(problems)
        return found

    def _report(self, problems: list[str]) -> None:
        problem = "; ".join(sorted(set(problems))) or None
        if problem is not None and problem != self._problem:
            log.info("%s: a bulk statistics call failed (%s); its domains are asked one "
                     "by one; the next calls cover at most %s", self._name, problem,
                     domains_text(self.sizer.size))
        self._problem = problem

    def _call(self, task: Task, wanted: list[DomainRef]
              ) -> Callable[[], tuple[dict[str, Prefetched], float]]:
        def call() -> tuple[dict[str, Prefetched], float]:
            monitor = self._monitor_for(task)
            doms = []
            for ref in wanted:
                try:
                    doms.append(monitor.domain(ref.uuid))
                except DomainGone:
                    continue                # its own task reports it gone
            started = time.monotonic()
            records = bulk_stats(monitor, doms, self._wants) if doms else {}
            return records, time.monotonic() - started
        return call
