"""The guest agents: each running domain's qemu-ga asked on its own thread, guard and
connections, on a slower period than the statistics.

Agent calls are the only ones that need a read-write connection (libvirt refuses
them on a read-only one), so only this part opens read-write connections; every
reader stays read-only.  Each domain is asked ``guestInfo`` (users, OS, timezone,
hostname, file systems with their sizes, interfaces with their addresses) and
``getTime``; the agent's own response timeout is set first, so a slow agent fails the
call instead of holding the domain's job, which every statistics call on it would
wait for.  Calls run under a guard (``guard.py``): an agent that hangs costs its own
worker, never another domain or the statistics.  A failed ask keeps the last answer
(served with its age) and says why in the status; a status change is logged once.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from agentx_virt.collector.connection import Connection, ConnectionFactory
from agentx_virt.collector.errors import CollectorError, DomainGone, LibvirtUnavailable
from agentx_virt.collector.guard import Guard, Task
from agentx_virt.collector.records import as_int
from agentx_virt.collector.refs import DomainRef
from agentx_virt.model.guest import GuestAddress, GuestFilesystem, GuestInfo

log = logging.getLogger(__name__)

# Seconds the agent may take (libvirt fails the call after about twice this).
AGENT_TIMEOUT_S = 2
WORKERS = 2
MIN_PERIOD_S = 3.0
_ADDRESS_TYPES = {"ipv4": "ipv4", "ipv6": "ipv6"}


def status_of(error: str) -> str:
    """lvxGuestAgentStatus for a failed call, from libvirt's message."""
    text = error.lower()
    if "not connected" in text:
        return "notConnected"
    if "not configured" in text:
        return "notConfigured"
    if "read only" in text or "read-only" in text or "access denied" in text:
        return "denied"
    if "not responding" in text or "timeout" in text or "timed out" in text:
        return "unresponsive"
    return "failed"


def parse_guest_info(info: Mapping[str, Any]) -> dict[str, Any]:
    """The GuestInfo fields in ``guestInfo``'s typed parameters."""
    def text(key: str) -> Optional[str]:
        value = info.get(key)
        return None if value is None else str(value)

    filesystems = []
    for n in range(as_int(info.get("fs.count")) or 0):
        fs = f"fs.{n}."
        if f"{fs}mountpoint" not in info:
            continue
        disks = tuple(str(info[f"{fs}disk.{k}.alias"])
                      for k in range(as_int(info.get(f"{fs}disk.count")) or 0)
                      if f"{fs}disk.{k}.alias" in info)
        filesystems.append(GuestFilesystem(
            str(info[f"{fs}mountpoint"]), text(f"{fs}name"), text(f"{fs}fstype"), disks,
            as_int(info.get(f"{fs}total-bytes")), as_int(info.get(f"{fs}used-bytes"))))
    addresses = []
    for n in range(as_int(info.get("if.count")) or 0):
        nic = f"if.{n}."
        for k in range(as_int(info.get(f"{nic}addr.count")) or 0):
            family = _ADDRESS_TYPES.get(str(info.get(f"{nic}addr.{k}.type")))
            address = info.get(f"{nic}addr.{k}.addr")
            if family is None or address is None:
                continue
            addresses.append(GuestAddress(str(info.get(f"{nic}name", "")), text(f"{nic}hwaddr"),
                                          family, str(address),
                                          as_int(info.get(f"{nic}addr.{k}.prefix"))))
    return {"hostname": text("hostname"), "os_id": text("os.id"),
            "os_name": text("os.name"), "os_version": text("os.version"),
            "kernel_release": text("os.kernel-release"), "timezone": text("timezone.name"),
            "timezone_offset_s": as_int(info.get("timezone.offset")),
            "users": as_int(info.get("user.count")), "addresses": tuple(addresses),
            "filesystems": tuple(filesystems)}


class GuestAgents:
    """``domains()`` gives the running domains to ask; ``latest`` holds each one's
    GuestInfo; ``on_change()`` is told after each round that changed anything."""

    def __init__(self, uri: str, period_s: float, domains: Callable[[], list[DomainRef]],
                 on_change: Callable[[], None], connect: ConnectionFactory = Connection,
                 wall: Callable[[], float] = time.time) -> None:
        self.uri = uri
        self.period_s = max(MIN_PERIOD_S, period_s)
        self._domains = domains
        self._on_change = on_change
        self._connect = connect
        self._wall = wall
        self.latest: dict[str, GuestInfo] = {}
        self._stop = threading.Event()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: set[Connection] = set()
        self._retired: set[Connection] = set()
        self._timeouts_set: set[tuple[int, str]] = set()   # (connection id, uuid)
        self.guard = Guard("guest-agent", WORKERS, WORKERS + 16,
                           on_abandoned=self._retire, on_abandoned_done=self._close_retired)
        self._thread = threading.Thread(target=self._run, name="guest-agent", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.guard.stop()
        with self._lock:
            connections = list(self._connections - self._retired)
            self._connections.clear()
        for conn in connections:
            conn.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.ask_all(started + self.period_s * 0.9)
            except Exception:
                log.exception("guest agents: round failed")
            self._stop.wait(max(0.0, started + self.period_s - time.monotonic()))

    def ask_all(self, round_end: float) -> None:
        """One round: every running domain's agent, each bounded by the guard."""
        refs = {ref.uuid: ref for ref in self._domains()}
        tasks = []
        for ref in refs.values():
            task = Task(ref.uuid, lambda: None, label=f"guest agent of {ref.name}")
            task.function = self._asker(ref, task)
            if self.guard.submit(task):
                tasks.append(task)
        self.guard.wait(tasks, AGENT_TIMEOUT_S * 2 + 1, round_end)
        asked = datetime.fromtimestamp(self._wall(), timezone.utc)
        changed = False
        changes: dict[str, list[str]] = {}
        for task in tasks:
            if task.cancelled:
                continue
            previous = self.latest.get(task.key)
            if task.abandoned:
                found = self._failed(previous, asked, "unresponsive",
                                     "the guest agent call did not return in time")
            elif isinstance(task.error, DomainGone):
                found = None
            elif isinstance(task.error, CollectorError):
                found = self._failed(previous, asked, status_of(str(task.error)),
                                     str(task.error))
            elif task.error is not None:
                found = self._failed(previous, asked, "failed", repr(task.error))
            else:
                found = GuestInfo("responding", asked, asked, **task.result)
            if found is not None and (previous is None or previous.status != found.status):
                changes.setdefault(found.status, []).append(refs[task.key].name)
            if found is None:
                self.latest.pop(task.key, None)
            else:
                self.latest[task.key] = found
            changed = changed or found != previous
        for uuid in set(self.latest) - set(refs):      # stopped or gone: no agent to ask
            del self.latest[uuid]
            changed = True
        self._report(changes)
        if changed:
            self._on_change()

    @staticmethod
    def _failed(previous: Optional[GuestInfo], asked: datetime, status: str,
                error: str) -> GuestInfo:
        """The last answer's values with the new status (values stay, served with age)."""
        if previous is None:
            return GuestInfo(status, asked, error=error)
        return dataclasses.replace(previous, status=status, asked_at=asked, error=error)

    @staticmethod
    def _report(changes: Mapping[str, list[str]]) -> None:
        """One line per status that domains moved to this round (not one per domain: a
        host of agent-less guests, or a read-only connection, is one line)."""
        for status, names in sorted(changes.items()):
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more"
                                            if len(names) > 5 else "")
            if status == "responding":
                log.info("guest agents answer: %s", shown)
            elif status in ("unresponsive", "failed"):
                log.warning("guest agents %s: %s; their last answers are served with "
                            "their age", status, shown)
            elif status == "denied":
                log.warning("libvirt refuses guest agent calls on this connection "
                            "(read-only?): status denied for %s", shown)
            else:
                log.info("guest agents %s: %s", status, shown)

    # ------------------------------------------------------------ on a worker

    def _asker(self, ref: DomainRef, task: Task) -> Callable[[], dict[str, Any]]:
        def ask() -> dict[str, Any]:
            conn = self._connection()
            task.context = conn
            dom = conn.domain(ref.uuid)
            if (id(conn), ref.uuid) not in self._timeouts_set:
                conn.call(f"agentSetResponseTimeout of {ref.name}",
                          dom.agentSetResponseTimeout, AGENT_TIMEOUT_S, 0)
                self._timeouts_set.add((id(conn), ref.uuid))
            found = parse_guest_info(conn.call(f"guestInfo of {ref.name}", dom.guestInfo, 0, 0))
            try:
                guest = conn.call(f"getTime of {ref.name}", dom.getTime, 0)
                host_ms = self._wall() * 1000
                found["clock_offset_ms"] = int(guest["seconds"] * 1000 +
                                               guest["nseconds"] / 1e6 - host_ms)
            except CollectorError:
                pass                       # an agent without guest-get-time: no offset
            return found
        return ask

    def _connection(self) -> Connection:
        conn: Optional[Connection] = getattr(self._local, "conn", None)
        with self._lock:
            usable = conn is not None and conn in self._connections \
                and conn not in self._retired
        if conn is not None and usable and conn.alive:
            return conn
        if conn is not None and usable:
            with self._lock:
                self._connections.discard(conn)
            conn.close()
        try:
            conn = self._connect(self.uri, "guest-agent", read_only=False)
        except LibvirtUnavailable as exc:
            # Not allowed to write (polkit, socket permissions): a read-only connection
            # gives the domains a "denied" status rather than none.
            log.warning("guest agents: %s; asking on a read-only connection, which libvirt "
                        "refuses for agent calls (status denied)", exc)
            conn = self._connect(self.uri, "guest-agent")
        self._local.conn = conn
        with self._lock:
            self._connections.add(conn)
        return conn

    def _retire(self, task: Task) -> None:
        if isinstance(task.context, Connection):
            with self._lock:
                self._retired.add(task.context)

    def _close_retired(self, task: Task) -> None:
        conn = task.context
        if isinstance(conn, Connection):
            with self._lock:
                self._retired.discard(conn)
                self._connections.discard(conn)
            conn.close()
