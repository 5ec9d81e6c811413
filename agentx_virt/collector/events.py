"""libvirt domain events → a queue of small frozen records.

The callbacks run on libvirt's event-loop thread and only put records on a
bounded queue; a record that does not fit is counted and logged, never silently
lost.  The watcher owns one libvirt connection for events; when it closes
(libvirtd restarted) the watcher reopens it with capped backoff and puts a
``Reconnected`` record on the queue so the notifier can look for changes it
missed.

Events that change what a domain's XML says (a device added or removed, metadata
set, the domain defined or started) are also handed to ``on_layout_change`` with
the domain's UUID, and a reconnection with None (anything may have changed); the
poller only notes them, and reads those domains' XML at its next cycle.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable, Optional

import libvirt

from agentx_virt.collector.connection import Connection, ConnectionFactory
from agentx_virt.collector.errors import CollectorError
from agentx_virt.model.events import (
    Event,
    EventsLost,
    IoError,
    JobCompleted,
    Lifecycle,
    Reconnected,
)

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 0.2
BACKOFF_MAX_S = 5.0


_LAYOUT_LIFECYCLE = frozenset({libvirt.VIR_DOMAIN_EVENT_DEFINED,
                               libvirt.VIR_DOMAIN_EVENT_STARTED})
_LAYOUT_EVENTS = ("VIR_DOMAIN_EVENT_ID_DEVICE_ADDED", "VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED",
                  "VIR_DOMAIN_EVENT_ID_METADATA_CHANGE")


class EventWatcher:
    """Keeps a libvirt connection registered for lifecycle, I/O error, job and device
    events."""

    def __init__(self, uri: str, sink: queue.Queue[Any], on_overflow: Any = None,
                 on_layout_change: Optional[Callable[[Optional[str]], None]] = None,
                 connect: ConnectionFactory = Connection) -> None:
        self.uri = uri
        self._connect = connect
        self.sink = sink
        self.dropped = 0
        self._on_overflow = on_overflow
        # Runs on libvirt's event-loop thread: must only note the UUID and return.
        self.on_layout_change = on_layout_change
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._conn: Optional[Connection] = None
        self._callbacks: list[int] = []
        self._thread = threading.Thread(target=self._run, name="libvirt-event-watcher",
                                        daemon=True)

    # --------------------------------------------------- callbacks (libvirt's thread)

    def _put(self, record: Event) -> None:
        try:
            self.sink.put_nowait(record)
        except queue.Full:
            self.dropped += 1
            if self._on_overflow is not None:
                self._on_overflow(record)

    def _lifecycle(self, _conn: Any, dom: Any, event: int, detail: int, _opaque: Any) -> None:
        uuid = dom.UUIDString()
        self._put(Lifecycle(uuid, dom.name(), int(event), int(detail)))
        if event in _LAYOUT_LIFECYCLE:      # new config, or devices named at start
            self._layout_changed(uuid)

    def _device(self, _conn: Any, dom: Any, *_rest: Any) -> None:
        self._layout_changed(dom.UUIDString())

    def _layout_changed(self, uuid: Optional[str]) -> None:
        if self.on_layout_change is not None:
            self.on_layout_change(uuid)

    def _io_error(self, _conn: Any, dom: Any, source: str, alias: str, action: int,
                  reason: str, _opaque: Any) -> None:
        self._put(IoError(dom.UUIDString(), dom.name(), str(source), str(alias), int(action),
                          str(reason)))

    def _job_completed(self, _conn: Any, dom: Any, stats: Any, _opaque: Any) -> None:
        self._put(JobCompleted(dom.UUIDString(), dom.name(), tuple(sorted(dict(stats).items()))))

    def _closed(self, _conn: Connection, reason: str) -> None:
        self._lost.set()

    # --------------------------------------------------- the watcher's thread

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._lost.set()
        self._thread.join(timeout)
        self._close()

    def _register(self) -> None:
        conn = self._connect(self.uri, "events", on_close=self._closed)
        try:
            virconn = conn.conn
            self._callbacks = [
                virconn.domainEventRegisterAny(
                    None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._lifecycle, None),
                virconn.domainEventRegisterAny(
                    None, libvirt.VIR_DOMAIN_EVENT_ID_IO_ERROR_REASON, self._io_error, None),
            ]
            job_event = getattr(libvirt, "VIR_DOMAIN_EVENT_ID_JOB_COMPLETED", None)
            if job_event is not None:
                self._callbacks.append(virconn.domainEventRegisterAny(
                    None, job_event, self._job_completed, None))
            for name in _LAYOUT_EVENTS:
                event_id = getattr(libvirt, name, None)
                if event_id is not None:
                    self._callbacks.append(virconn.domainEventRegisterAny(
                        None, event_id, self._device, None))
        except libvirt.libvirtError as exc:
            conn.close()
            raise CollectorError(f"cannot register for libvirt events at {self.uri}: "
                                 f"{exc.get_error_message() or exc}") from None
        self._conn = conn

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        for callback in self._callbacks:
            try:
                conn.conn.domainEventDeregisterAny(callback)
            except libvirt.libvirtError:
                pass
        self._callbacks = []
        conn.close()

    def _run(self) -> None:
        delay = BACKOFF_FIRST_S
        first = True
        while not self._stop.is_set():
            try:
                self._register()
            except CollectorError as exc:
                # Only the first start warns: an outage later is the partitioner's warning.
                if first:
                    log.warning("%s; retrying", exc)
                else:
                    log.debug("libvirt events: %s; retrying", exc)
                first = False
                self._stop.wait(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)
                continue
            if not first:
                log.info("listening to libvirt events again")
                self._put(Reconnected())
                self._layout_changed(None)      # changes while no events came
            first = False
            delay = BACKOFF_FIRST_S
            self._lost.clear()
            while not self._stop.is_set():
                if self._lost.wait(1.0):
                    break
                if self._conn is not None and not self._conn.alive:
                    break
            if self._stop.is_set():
                return
            time.sleep(0)
            log.info("lost the libvirt event connection to %s; reconnecting", self.uri)
            self._close()
            self._put(EventsLost())
