"""LIBVIRT-EXT-MIB notifications onto the trap queue, if their kind and family are on."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Callable, Optional

from agentx_virt.agentx.traps import TrapQueue
from agentx_virt.mib.convert import Reject
from agentx_virt.notify.builder import TrapBuilder
from agentx_virt.notify.settings import TrapSettings

log = logging.getLogger(__name__)

EXT = "LIBVIRT-EXT-MIB"


class TrapSender:
    """``settings`` gives the settings now in force (a reload replaces them)."""

    def __init__(self, builder: TrapBuilder, traps: TrapQueue, index_of: Callable[[str], int],
                 settings: Callable[[], TrapSettings]) -> None:
        self._builder = builder
        self._traps = traps
        self._index_of = index_of
        self._settings = settings
        self.failed = 0                  # notifications that could not be built

    def _enabled(self, kind: str) -> bool:
        settings = self._settings()
        return kind in settings.kinds and EXT in settings.families

    def host(self, kind: str, notification: str, values: dict[str, object]) -> None:
        """A notification whose objects are scalars (instance 0)."""
        if not self._enabled(kind):
            return
        try:
            trap = self._builder.host_trap(notification, values)
        except (Reject, KeyError) as exc:
            self.failed += 1
            log.error("cannot build %s: %s", notification, exc)
            return
        self._traps.put(trap)

    def domain(self, kind: str, notification: str, uuid: str, name: str,
               values: dict[str, object], slots: Optional[dict[str, str]] = None,
               extra: Sequence[str] = ()) -> None:
        """A notification about one domain (its objects' instance is its index)."""
        if not self._enabled(kind):
            return
        index = self._index_of(uuid)
        try:
            trap = self._builder.domain_trap(notification, index, {
                "lvxDomainName": name, "lvxDomainUuid": uuid, **values}, slots, extra)
        except (Reject, KeyError) as exc:
            self.failed += 1
            log.error("cannot build %s for %s: %s", notification, name, exc)
            return
        self._traps.put(trap)
