"""What the partitioner hands a reader (``DomainRef``), what a reader hands back
(``ReaderResult``), and how a reader's domains are batched into bulk calls."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Optional, TypeVar

from agentx_virt.collector.layout import Layout
from agentx_virt.model.record import slotted
from agentx_virt.model.snapshot import DomainStats

T = TypeVar("T")


@slotted
@dataclass(frozen=True)
class DomainRef:
    """A domain as the partitioner saw it: what a reader needs to poll it."""

    uuid: str
    name: str
    layout: Layout
    reader: int
    persistent: Optional[bool] = None     # from the partitioner's domain lists
    autostart: Optional[bool] = None

    def described(self) -> dict[str, Any]:
        """The DomainStats fields the partitioner knows, whatever the poll gives."""
        return {"uuid": self.uuid, "name": self.name, "partition_tag": self.layout.tag or "",
                "os_id": self.layout.os_id, "metadata": self.layout.metadata,
                "persistent": self.persistent,
                "autostart": self.autostart}


@dataclass(frozen=True)
class ReaderResult:
    reader: int
    started: datetime
    duration_ms: int
    domains: Mapping[str, DomainStats]     # uuid -> stats (last good ones when stale)


def bulk_batches(domains: Sequence[T], slot_of: Callable[[T], int]) -> list[tuple[int, list[T]]]:
    """The bulk statistics calls for ``domains``: (worker slot, its domains), one per slot
    that holds several, so each runs on the connection that already knows its domains,
    and one more for all the domains alone in their slots, on the slot of the first of
    them (no other bulk call runs there). In the order the domains came."""
    by_slot: dict[int, list[T]] = {}
    for domain in domains:
        by_slot.setdefault(slot_of(domain), []).append(domain)
    batches = [(slot, group) for slot, group in by_slot.items() if len(group) > 1]
    alone = [group[0] for group in by_slot.values() if len(group) == 1]
    if alone:
        batches.append((slot_of(alone[0]), alone))
    return batches
