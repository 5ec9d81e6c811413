"""The SNMP sink: each Snapshot becomes the served OID table, swapped in whole.

The domain indexes come from the agent's registry (each on disk before it is
served) and the agent's own counters are merged in at publish time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Callable

from agentx_virt.agentx.store import ServedStore
from agentx_virt.mib.build import build_tables
from agentx_virt.mib.model import Mib
from agentx_virt.mib.spec import AgentStatus, MibSpec
from agentx_virt.model.snapshot import PollStatus, Snapshot

log = logging.getLogger(__name__)


class SnmpSink:
    """Turns each Snapshot into the served table and swaps it in; remembers what it has
    reported."""

    def __init__(self, store: ServedStore, views: Sequence[tuple[MibSpec, Mib]],
                 indexes: Callable[[Snapshot], Mapping[str, int]],
                 status: Callable[[], AgentStatus] = AgentStatus) -> None:
        """``views`` are the MIBs served, each a spec and its compiled module, all in one
        table; ``indexes`` gives the domain index of a snapshot's domains, each on disk
        before it is served (the agent's DomainIndexRegistry)."""
        self.store = store
        self.views = tuple(views)
        self._indexes = indexes
        self._status = status
        self.all_polled = threading.Event()   # set once every domain has been polled
        self._reported: set[tuple[str, str]] = set()

    def publish(self, snapshot: Snapshot) -> None:
        built = build_tables(snapshot, self._indexes(snapshot), self.views, self._status())
        self.store.swap(built.table)
        if snapshot.domains and all(d.poll_status != PollStatus.NOT_POLLED
                                    for d in snapshot.domains):
            self.all_polled.set()
        for rejected in built.rejected:
            key = (rejected.object, rejected.reason)
            if key not in self._reported:
                self._reported.add(key)
                log.warning("value left out of the table (reported once per object and "
                            "reason): %s", rejected)
