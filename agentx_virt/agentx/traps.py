"""Outgoing notifications: a bounded, thread-safe queue whose losses are counted and logged.

Any thread may ``put``; only the AgentX session thread takes traps out and
sends them, so the socket has exactly one writer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Callable, Optional

from agentx_virt.agentx.constants import ValueType
from agentx_virt.agentx.pdu import VarBind
from agentx_virt.oid import OID, format_oid

log = logging.getLogger(__name__)

SNMP_TRAP_OID_0: OID = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
DROP_LOG_INTERVAL = 10.0  # seconds between "still dropping" summaries


@dataclass(frozen=True)
class Trap:
    """One notification: its OID (sent as snmpTrapOID.0) and the objects that follow."""

    trap_oid: OID
    varbinds: tuple[VarBind, ...] = ()

    def notify_varbinds(self) -> tuple[VarBind, ...]:
        """snmpTrapOID.0 first, then the objects (RFC 2741 §6.2.10)."""
        head = VarBind(SNMP_TRAP_OID_0, ValueType.OBJECT_IDENTIFIER, self.trap_oid)
        return (head,) + self.varbinds


@dataclass(frozen=True)
class TrapStats:
    """Counters since start: accepted into the queue, acknowledged by the master,
    refused by the master, and dropped because the queue was full."""

    queued: int
    sent: int
    refused: int
    dropped: int
    waiting: int


class TrapQueue:
    """FIFO of traps waiting for the session thread, bounded by ``capacity``.

    A trap that arrives when the queue is full is dropped and counted; the
    first drop is logged at once and later ones in a summary at most every
    ``DROP_LOG_INTERVAL`` seconds.
    """

    def __init__(self, capacity: int = 1000, clock: Callable[[], float] = time.monotonic) -> None:
        if capacity < 1:
            raise ValueError(f"trap queue capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._clock = clock
        self._lock = threading.Lock()
        self._items: deque[Trap] = deque()
        self._queued = self._sent = self._refused = self._dropped = 0
        self._unlogged_drops = 0
        self._last_drop_log = float("-inf")
        self._wake: Optional[Callable[[], None]] = None

    def set_waker(self, wake: Callable[[], None]) -> None:
        """Called after every successful ``put`` (the session wakes its loop)."""
        self._wake = wake

    def put(self, trap: Trap) -> bool:
        """Queue a trap; returns False (and counts a drop) when the queue is full."""
        with self._lock:
            if len(self._items) >= self.capacity:
                self._dropped += 1
                self._unlogged_drops += 1
                now = self._clock()
                if now - self._last_drop_log >= DROP_LOG_INTERVAL:
                    log.warning(
                        "trap queue full (%d waiting): dropped %d trap(s), latest %s; "
                        "%d dropped since start", len(self._items), self._unlogged_drops,
                        format_oid(trap.trap_oid), self._dropped)
                    self._unlogged_drops = 0
                    self._last_drop_log = now
                return False
            self._items.append(trap)
            self._queued += 1
        wake = self._wake
        if wake is not None:
            wake()
        return True

    def report_drops(self) -> None:
        """Log drops not yet logged once the summary interval has passed (session thread)."""
        if not self._unlogged_drops:
            return
        with self._lock:
            now = self._clock()
            if self._unlogged_drops and now - self._last_drop_log >= DROP_LOG_INTERVAL:
                log.warning("trap queue full: dropped %d more trap(s); %d dropped since start",
                            self._unlogged_drops, self._dropped)
                self._unlogged_drops = 0
                self._last_drop_log = now

    def pop(self) -> Optional[Trap]:
        """The oldest waiting trap, or None."""
        with self._lock:
            return self._items.popleft() if self._items else None

    def requeue(self, traps: Iterable[Trap]) -> None:
        """Put unacknowledged traps back at the front, oldest first (after a lost session)."""
        with self._lock:
            self._items.extendleft(reversed(list(traps)))

    def mark_sent(self) -> None:
        with self._lock:
            self._sent += 1

    def mark_refused(self) -> None:
        with self._lock:
            self._refused += 1

    @property
    def waiting(self) -> bool:
        """Whether any trap waits; lock-free (a deque's length is read atomically)."""
        return bool(self._items)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def stats(self) -> TrapStats:
        with self._lock:
            return TrapStats(self._queued, self._sent, self._refused, self._dropped,
                             len(self._items))
