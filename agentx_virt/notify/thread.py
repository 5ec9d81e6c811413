"""The notifier's thread: records off one queue, in arrival order, into the rules.

libvirt's event-loop thread and the poller only put records on the queue; this
thread alone hands them to ``Notifier.handle`` and calls ``Notifier.tick`` when a
held-down state falls due, so the traps of one domain leave in the order libvirt
reported the changes.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agentx_virt.mib.model import Mib
from agentx_virt.model.snapshot import Snapshot
from agentx_virt.notify.rules import Notifier, SnapshotSeen
from agentx_virt.notify.settings import TrapSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reconfigure:
    """A reload's trap settings, applied on the notifier thread in turn with the records
    queued before it."""

    settings: TrapSettings
    family_mibs: Mapping[str, Mib]


class NotifierThread:
    def __init__(self, notifier: Notifier, events: queue.Queue[Any]) -> None:
        self.notifier = notifier
        self.events = events
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notifier", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def reconfigure(self, settings: TrapSettings, family_mibs: Mapping[str, Mib]) -> bool:
        """Queue a reload's settings behind the records waiting; False when the queue
        stayed full for 5 s (the old settings then stay)."""
        try:
            self.events.put(Reconfigure(settings, family_mibs), timeout=5.0)
        except queue.Full:
            return False
        return True

    def publish(self, snapshot: Snapshot) -> None:
        """A sink: called by the poller's threads for every new snapshot."""
        try:
            self.events.put_nowait(SnapshotSeen(snapshot))
        except queue.Full:
            pass   # the next snapshot will do; no trap is lost by skipping this one

    def _run(self) -> None:
        notifier = self.notifier
        while not self._stop.is_set():
            try:
                record = self.events.get(timeout=notifier.next_due())
            except queue.Empty:
                record = None
            try:
                if isinstance(record, Reconfigure):
                    notifier.reconfigure(record.settings, record.family_mibs)
                elif record is not None:
                    notifier.handle(record)
                notifier.tick()
            except Exception:  # one odd record (or a bug) must not stop notifications
                log.exception("notifier: failed to handle %r", record)
