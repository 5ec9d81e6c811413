"""The poller: partitions domains among readers and merges their results into Snapshots.

The partitioner, on its own thread and connection, lists the domains, applies the
include/exclude filters, reads each domain's XML for its devices and ovirtmap tag
(again after an event says it changed, and every ``LAYOUT_REFRESH_CYCLES`` cycles),
and hands each reader its domains: ``virt-K`` to reader K, the rest to reader 0.
Readers poll on their own timers; whenever one finishes a cycle the aggregator builds
a new Snapshot from every reader's latest result (and the guest agents' answers,
``guest.py``) and hands it on.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Callable, Optional

import libvirt

from agentx_virt.app.config import Config
from agentx_virt.collector.assignment import (
    AUTOSTART,
    PERSISTENT,
    listed_uuids,
    polled_by,
    polled_elsewhere,
    reader_for,
    wedged,
)
from agentx_virt.collector.connection import Connection, ConnectionFactory
from agentx_virt.collector.errors import CollectorError, LibvirtUnavailable
from agentx_virt.collector.guest import GuestAgents
from agentx_virt.collector.host import HostUse, describe
from agentx_virt.collector.layout import Layout, parse_layout
from agentx_virt.collector.outage import OutageLog
from agentx_virt.collector.publisher import LatestPublisher
from agentx_virt.collector.reader import Reader
from agentx_virt.collector.refs import DomainRef, ReaderResult
from agentx_virt.model.selection import selected
from agentx_virt.model.snapshot import (
    DomainStats,
    HostInfo,
    PollInfo,
    PollStatus,
    Snapshot,
    StatGroup,
    uuid_key,
)

log = logging.getLogger(__name__)

# Without an event for it, a change of the XML is seen within this many cycles.
LAYOUT_REFRESH_CYCLES = 30
RUNNING = 1           # virDomainState: a guest agent can answer














class Poller:
    """Readers, the partitioner and the aggregator; ``on_snapshot`` gets every new Snapshot."""

    def __init__(self, config: Config, on_snapshot: Callable[[Snapshot], None],
                 connect: ConnectionFactory = Connection) -> None:
        self.config = config
        self._connect = connect
        self._lock = threading.Lock()
        # Readers and the partitioner only ask for a publication: one thread builds the
        # latest snapshot and hands it on, so an older one never follows a newer one into
        # the served table or the notifier, and readers finishing together cost one build.
        self._publisher = LatestPublisher(self._snapshot, on_snapshot)
        self._stop = threading.Event()
        self._wake = threading.Event()      # a reload: partition again now
        self._reconnect = False             # a reload changed the URI
        # Replaced readers' last results, each served until its new reader polls it.
        self._carried: dict[str, DomainStats] = {}
        self._conn: Optional[Connection] = None
        self._host = HostInfo(False, config.uri)
        self._refs: dict[str, DomainRef] = {}
        self._by_reader: dict[int, list[DomainRef]] = {}
        # uuid (lower case, as libvirt's UUIDString gives it) -> (layout, cycle read)
        self._layouts: dict[str, tuple[Layout, int]] = {}
        self._changed_layouts: set[str] = set()     # UUIDs an event said changed (lower case)
        self._all_layouts_changed = False
        self._cycle = 0
        self._results: dict[int, ReaderResult] = {}
        self._tables_changed: Optional[datetime] = None
        self._outage = OutageLog(log, f"libvirt at {config.uri}")
        self._host_use = HostUse()
        self._retry_s: Optional[float] = config.interval_s
        self.readers = [Reader(k, config, self._assignment(k), self._host_info, self._publish,
                               connect) for k in range(config.instances)]
        self._thread = threading.Thread(target=self._run, name="partitioner", daemon=True)
        self.guests = self._guest_agents(config)

    def _guest_agents(self, config: Config) -> Optional[GuestAgents]:
        """The guest agents' poller, asked every 3 intervals, with fs_info or guest_agent."""
        if not (config.wants(StatGroup.FS_INFO) or config.wants(StatGroup.GUEST_AGENT)):
            return None
        return GuestAgents(config.uri, 3 * config.interval_s, self._running, self.republish,
                           self._connect)

    def _running(self) -> list[DomainRef]:
        """The domains whose last sample says running: those a guest agent can answer."""
        with self._lock:
            states = {uuid: d.state for result in self._results.values()
                      for uuid, d in result.domains.items()}
            return [ref for uuid, ref in self._refs.items() if states.get(uuid) == RUNNING]

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Partition once (so readers start with their domains), then start every thread."""
        self._publisher.start()
        self.partition_once()
        for reader in self.readers:
            reader.start()
        self._thread.start()
        if self.guests is not None:
            self.guests.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        for reader in self.readers:
            reader.stop()
        if self._thread.is_alive():
            self._thread.join(timeout)
        for reader in self.readers:
            reader.join(timeout)
        if self.guests is not None:
            self.guests.stop()
        self._publisher.stop(timeout)
        if self._conn is not None:
            self._conn.close()

    def poll_once(self, samples: int = 1, gap_s: float = 1.0) -> Snapshot:
        """One synchronous poll of everything (``agentx-virt dump``): ``samples`` polls
        ``gap_s`` apart, the last returned (from the second on, cpu_util has a value)."""
        self._retry_s = None          # one shot: failures are not retried
        self.partition_once()
        for sample in range(samples):
            if sample:
                time.sleep(gap_s)
            for reader in self.readers:
                reader.poll_once()
        if self.guests is not None:
            self.guests.ask_all(time.monotonic() + 10)
            self.guests.stop()
        snapshot = self._snapshot()
        for reader in self.readers:
            reader.join(1.0)
        if self._conn is not None:
            self._conn.close()
        return snapshot

    def reconfigure(self, config: Config) -> None:
        """A reload (main thread): settings to the readers, or new readers for another URI
        or reader/worker count (taking the old samples: no row reads notPolled)."""
        old, self.config = self.config, config
        new_uri = config.uri != old.uri
        if new_uri:
            self._outage = OutageLog(log, f"libvirt at {config.uri}")
            self._reconnect = True
        if new_uri or (config.instances, config.workers) != (old.instances, old.workers):
            self._replace_readers(config, keep_history=not new_uri)
        else:
            for reader in self.readers:
                reader.reconfigure(config)
        self._replace_guest_agents(old, config)
        if config.metadata != old.metadata:
            self.layout_changed(None)           # every domain's XML read again
        self._wake.set()

    def _replace_guest_agents(self, old: Config, config: Config) -> None:
        guests = self._guest_agents(config)
        if (guests is None, config.uri, config.interval_s) == (self.guests is None, old.uri,
                                                                old.interval_s):
            return
        if self.guests is not None:
            self.guests.stop()
            if guests is not None and config.uri == old.uri:
                guests.latest.update(self.guests.latest)
        self.guests = guests
        if guests is not None:
            guests.start()
        self.republish()

    def _replace_readers(self, config: Config, keep_history: bool) -> None:
        old = self.readers
        for reader in old:
            reader.stop()
        for reader in old:
            reader.join(max(1.0, config.domain_timeout_s))
        history: dict[str, object] = {}
        if keep_history:
            for reader in old:
                history.update(reader.history)
        with self._lock:
            for result in self._results.values():
                self._carried.update(result.domains)
            self._results.clear()
        self.readers = [Reader(k, config, self._assignment(k), self._host_info, self._publish,
                               self._connect) for k in range(config.instances)]
        for reader in self.readers:
            reader.adopt(history, polled_by(reader.number, config.instances))
            reader.start()
        log.info("reload: %d reader(s) of %d worker(s) replace %d", config.instances,
                 config.workers, len(old))

    def healthy(self, now: float) -> bool:
        """No reader wedged and the partitioner alive (systemd's watchdog asks)."""
        partitioner = self._thread.is_alive() or self._thread.ident is None
        return partitioner and not any(wedged(reader, now) for reader in self.readers)

    def republish(self) -> None:
        self._publisher.request()        # an alarm or a guest agent's answer changed

    def _run(self) -> None:
        while True:
            self._wake.wait(self.config.interval_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.partition_once()
            except Exception:
                log.exception("partitioner: cycle failed")

    # ------------------------------------------------------------ partitioning

    def _assignment(self, reader: int) -> Callable[[], list[DomainRef]]:
        def domains() -> list[DomainRef]:
            with self._lock:
                return list(self._by_reader.get(reader, ()))
        return domains

    def layout_changed(self, uuid: Optional[str]) -> None:
        """The XML of domain ``uuid`` (None: of any domain) may have changed; it is read
        again at the next partitioner cycle.  Safe on libvirt's event-loop thread: only
        notes it."""
        with self._lock:
            if uuid is None:
                self._all_layouts_changed = True
            else:
                self._changed_layouts.add(uuid_key(uuid))

    def _host_info(self) -> HostInfo:
        return self._host

    def _connection(self) -> Connection:
        if self._reconnect and self._conn is not None:
            log.info("reload: leaving libvirt at %s for %s", self._host.uri, self.config.uri)
            self._conn.close()
            self._conn = None
        self._reconnect = False
        if self._conn is not None and self._conn.alive:
            return self._conn
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        conn = self._connect(self.config.uri, "partitioner")
        self._host = describe(conn, self.config.uri)
        log.info("connected to libvirt at %s (%s %s, libvirt %s, %d host CPUs)",
                 self.config.uri, self._host.hypervisor_type, self._host.hypervisor_version,
                 self._host.libvirt_version, self._host.host_cpus)
        self._conn = conn
        return conn

    def partition_once(self) -> None:
        """Refresh the domain list and the readers' assignments; a new snapshot only when
        something it shows changed (the domains, their names, tags or readers, or whether
        libvirt answers): an unchanged list does not rebuild the table again."""
        self._cycle += 1
        was_connected = self._host.libvirt_connected
        try:
            conn = self._connection()
            listed = conn.call("listAllDomains", conn.conn.listAllDomains, 0)
        except (LibvirtUnavailable, CollectorError) as exc:
            self._outage.failed(exc, self._retry_s)
            self._host = dataclasses.replace(self._host, libvirt_connected=False,
                                             last_error=str(exc))
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if was_connected or self._cycle == 1:
                self._publish(None)
            return
        self._outage.recovered()
        if self.config.wants(StatGroup.HOST) or self.config.wants(StatGroup.STORAGE_POOLS):
            self._host = dataclasses.replace(self._host, **self._host_use.read(
                conn, self.config.wants))
        with self._lock:
            named, self._changed_layouts = self._changed_layouts, set()
            everything, self._all_layouts_changed = self._all_layouts_changed, False
        due = self._cycle - LAYOUT_REFRESH_CYCLES
        for uuid in list(self._layouts) if everything else named & self._layouts.keys():
            self._layouts[uuid] = (self._layouts[uuid][0], due)     # read again below
        found: dict[str, tuple[str, Layout]] = {}
        for dom in listed:
            try:
                uuid, name = dom.UUIDString(), dom.name()
            except libvirt.libvirtError:      # the domain vanished meanwhile
                continue
            if not selected(name, uuid, self.config.include, self.config.exclude):
                continue
            found[uuid] = (name, self._layout(conn, dom, uuid, name))
        persistent, autostart = (listed_uuids(conn, flag) for flag in (PERSISTENT, AUTOSTART))
        refs: dict[str, DomainRef] = {}
        for uuid, (name, layout) in found.items():
            ref = DomainRef(uuid, name, layout, reader_for(layout.tag, self.config.instances),
                            None if persistent is None else uuid in persistent,
                            None if autostart is None else uuid in autostart)
            known = self._refs.get(uuid)
            # An unchanged domain keeps its DomainRef, whose strings the statistics share.
            refs[uuid] = known if known == ref else ref
        by_reader: dict[int, list[DomainRef]] = {}
        for ref in refs.values():
            by_reader.setdefault(ref.reader, []).append(ref)
        for uuid in set(self._layouts) - set(refs):
            del self._layouts[uuid]
        with self._lock:
            changed = refs != self._refs
            if set(refs) != set(self._refs):
                self._tables_changed = datetime.now(timezone.utc)
            self._refs, self._by_reader = refs, by_reader
            self._carried = {u: d for u, d in self._carried.items() if u in refs}
        if changed or not was_connected or self._cycle == 1:
            self._publish(None)

    def _layout(self, conn: Connection, dom: object, uuid: str, name: str) -> Layout:
        cached = self._layouts.get(uuid)
        if cached is not None and self._cycle - cached[1] < LAYOUT_REFRESH_CYCLES:
            return cached[0]
        try:
            layout = parse_layout(conn.call(f"XMLDesc of {name}", dom.XMLDesc, 0),  # type: ignore[attr-defined]
                                  self.config.metadata)
        except CollectorError as exc:
            if cached is None:
                log.warning("cannot read the XML of domain %s (%s); polling it without "
                            "devices", name, exc)
            layout = cached[0] if cached is not None else Layout()
        if cached is not None and layout == cached[0]:
            layout = cached[0]        # keep the long-lived objects; the new copy is freed
        self._layouts[uuid] = (layout, self._cycle)
        return layout

    # ------------------------------------------------------------ aggregation

    def _publish(self, result: Optional[ReaderResult]) -> None:
        with self._lock:
            if result is not None:
                self._results[result.reader] = result
                if self._carried:     # a domain's own reader has it now
                    for uuid in result.domains:
                        self._carried.pop(uuid, None)
        self._publisher.request()

    def _snapshot(self) -> Snapshot:
        with self._lock:
            refs = dict(self._refs)
            results = dict(self._results)
            changed = self._tables_changed
            carried = dict(self._carried) if self._carried else {}
        guests = dict(self.guests.latest) if self.guests is not None else {}
        domains = []
        for uuid, ref in refs.items():
            latest: Mapping[str, DomainStats] = results[ref.reader].domains \
                if ref.reader in results else {}
            stats = latest.get(uuid) or carried.get(uuid) or polled_elsewhere(results, uuid) \
                or DomainStats(**ref.described(), reader=ref.reader,
                               poll_status=PollStatus.NOT_POLLED)
            guest = guests.get(uuid)
            domains.append(stats if guest is None else dataclasses.replace(
                stats, guest=guest, filesystems=guest.filesystems))
        domains.sort(key=lambda d: (d.name, d.uuid))
        starts = [r.started for r in results.values()]
        poll = PollInfo(
            interval_s=round(self.config.interval_s),
            last_poll_start=max(starts) if starts else None,
            last_poll_duration_ms=max((r.duration_ms for r in results.values()), default=None),
            timed_out_domains=sum(1 for d in domains if d.poll_status == PollStatus.TIMED_OUT),
            tables_last_change=changed)
        return Snapshot(self._host, poll, tuple(domains))
