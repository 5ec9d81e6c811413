"""Where Snapshots go: a one-method sink protocol and the fan-out the daemon hands them to.

The collector knows only ``FanOut.publish``; each exposition (the SNMP table, the
notifier, later others) is a sink.  A sink that raises is logged and the others
still get the snapshot.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from agentx_virt.model.snapshot import Snapshot

log = logging.getLogger(__name__)


class Sink(Protocol):
    def publish(self, snapshot: Snapshot) -> None:
        """Take a new Snapshot (called from the collector's threads, one at a time)."""


class FanOut:
    """Hands every Snapshot to each sink, in order."""

    def __init__(self, sinks: Sequence[Sink]) -> None:
        self.sinks = tuple(sinks)
        self._failing: set[tuple[int, type]] = set()   # (sink, exception) already logged

    def publish(self, snapshot: Snapshot) -> None:
        for number, sink in enumerate(self.sinks):
            try:
                sink.publish(snapshot)
            except Exception as exc:  # a bug in one exposition must not starve the others
                key = (number, type(exc))
                if key not in self._failing:
                    self._failing.add(key)
                    log.exception("sink %s failed on a snapshot (logged once per sink and "
                                  "error type; the other sinks got it)", type(sink).__name__)
