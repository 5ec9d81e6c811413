"""The SNMP sink: each Snapshot becomes the served OID table, swapped in whole.

The domain indexes come from the agent's registry (each on disk before it is
served) and the agent's own counters are merged in at publish time.

The first table waits for every domain's first poll: until then the agent's
subtrees are served empty rather than with rows that hold only a name and a
``notPolled`` status.  The wait ends early when libvirt lists no domain (its
status scalars are served at once) and is bounded (``first_wait_s`` after the first
snapshot that lists domains): a domain that never answers is then served with its
poll status.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Callable, Optional

from agentx_virt.agentx.store import ServedStore
from agentx_virt.mib.build import build_tables
from agentx_virt.mib.model import Mib
from agentx_virt.mib.spec import AgentStatus, MibSpec
from agentx_virt.model.alarm import ActiveAlarm
from agentx_virt.model.snapshot import PollStatus, Snapshot, uuid_key

log = logging.getLogger(__name__)


class SnmpSink:
    """Turns each Snapshot into the served table and swaps it in; remembers what it has
    reported."""

    def __init__(self, store: ServedStore, views: Sequence[tuple[MibSpec, Mib]],
                 indexes: Callable[[Snapshot], Mapping[str, int]],
                 status: Callable[[], AgentStatus] = AgentStatus,
                 first_wait_s: float = 20.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``views`` are the MIBs served, each a spec and its compiled module, all in one
        table; ``indexes`` gives the domain index of a snapshot's domains, each on disk
        before it is served (the agent's DomainIndexRegistry)."""
        self.store = store
        self.views = tuple(views)
        self._indexes = indexes
        self._status = status
        self.all_polled = threading.Event()   # set once every domain has been polled
        self._reported: set[tuple[str, str]] = set()
        self._first_wait_s = first_wait_s
        self._clock = clock
        self._waiting_since: Optional[float] = None   # the first snapshot that lists domains
        self.serving = False                       # the first table has been swapped in
        self.last_snapshot: Optional[Snapshot] = None   # the one the table was built from

    def publish(self, snapshot: Snapshot) -> None:
        polled = bool(snapshot.domains) and all(d.poll_status != PollStatus.NOT_POLLED
                                                for d in snapshot.domains)
        if not self.serving and snapshot.domains and not polled:
            now = self._clock()
            if self._waiting_since is None:
                self._waiting_since = now
            if now - self._waiting_since < self._first_wait_s:
                return            # the first table waits for every domain's first poll
            log.warning("serving the first table with %d of %d domains not polled yet "
                        "after %g s (poll status notPolled)", sum(
                            1 for d in snapshot.domains
                            if d.poll_status == PollStatus.NOT_POLLED),
                        len(snapshot.domains), self._first_wait_s)
        status = self._status()
        if status.alarms:
            snapshot = with_alarms(snapshot, status.alarms)
        built = build_tables(snapshot, self._indexes(snapshot), self.views, status)
        self.store.swap(built.table)
        self.serving = True
        self.last_snapshot = snapshot
        if polled:
            self.all_polled.set()
        for rejected in built.rejected:
            key = (rejected.object, rejected.reason)
            if key not in self._reported:
                self._reported.add(key)
                log.warning("value left out of the table (reported once per object and "
                            "reason): %s", rejected)


def with_alarms(snapshot: Snapshot, alarms: Mapping[str, tuple[ActiveAlarm, ...]]) -> Snapshot:
    """``snapshot`` with each domain's active alarms in its row (lvxAlarmTable)."""
    return dataclasses.replace(snapshot, domains=tuple(
        dataclasses.replace(d, alarms=alarms[key]) if (key := uuid_key(d.uuid)) in alarms
        else d for d in snapshot.domains))
