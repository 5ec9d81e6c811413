"""What libvirt's domain events become: small frozen records, stamped when they arrive.

The event watcher (``collector/events.py``) makes them on libvirt's thread; the
notifier's rules read them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Union


@dataclass(frozen=True)
class Lifecycle:
    uuid: str
    name: str
    event: int            # virDomainEventType
    detail: int           # the event's detail enum
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class IoError:
    uuid: str
    name: str
    source: str
    alias: str
    action: int           # virDomainEventIOErrorAction
    reason: str
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class JobCompleted:
    uuid: str
    name: str
    stats: tuple[tuple[str, Any], ...]
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class EventsLost:
    """The event connection closed: changes from now on are not seen until Reconnected."""

    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Reconnected:
    """Events flow again; states may have changed while none were received."""

    at: float = field(default_factory=time.monotonic)


Event = Union[Lifecycle, IoError, JobCompleted, EventsLost, Reconnected]
