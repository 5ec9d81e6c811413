"""The latest Snapshot, built and handed on by one thread: readers that finish together
cost one rebuild, and none of them waits for it.

Readers and the partitioner only ``request`` a publication.  The publisher thread
builds a snapshot of everything known at that moment and delivers it; requests
that arrive meanwhile make one more build, not one each.  Because one thread
builds and delivers, an older snapshot never follows a newer one.  Until
``start``, a request builds and delivers at once on the caller's thread (one-shot
polls: ``agentx-virt dump``, tests).
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Optional

from agentx_virt.model.snapshot import Snapshot

log = logging.getLogger(__name__)


class LatestPublisher:
    def __init__(self, build: Callable[[], Snapshot], deliver: Callable[[Snapshot], None],
                 name: str = "publisher") -> None:
        self._build = build
        self._deliver = deliver
        self._wanted = threading.Event()
        self._stop = threading.Event()
        self._inline = threading.Lock()      # before start: one inline build at a time
        self._thread: Optional[threading.Thread] = None
        self._name = name

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wanted.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def request(self) -> None:
        """Ask for a new snapshot to be built and delivered (any thread)."""
        if self._thread is None:
            with self._inline:
                self._publish()
            return
        self._wanted.set()

    def _publish(self) -> None:
        self._deliver(self._build())

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            if self._stop.is_set():
                return
            self._wanted.clear()
            try:
                self._publish()
            except Exception:  # a failing build must not end publication
                log.exception("%s: building or handing on a snapshot failed", self._name)
