"""What the notifier is told to send: kinds, repetition, stall and threshold rules."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Optional

# Kinds of notification [traps] enable can name (each maps to MIB notifications).
TRAP_KINDS = ("state", "define", "io_error", "job", "poll", "threshold", "libvirt", "config")


@dataclass(frozen=True)
class Threshold:
    """Crossed when ``metric`` has been above ``rising`` for ``for_polls`` polls in a row;
    cleared at or below ``falling`` (the hysteresis).  With no scope it applies to every
    domain; otherwise to those whose UUID, name (fnmatch patterns) or partition tag it
    lists, and of the rules for one metric that apply to a domain the most specific wins
    (``specificity``)."""

    metric: str          # one of model.alarm.ALARM_METRICS
    rising: int
    falling: int
    for_polls: int = 1
    severity: str = "warning"          # or "failure"
    uuids: tuple[str, ...] = ()        # lower case
    names: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    # Where it is configured (file:line), for traps and messages; not part of the rule.
    origin: str = field(default="", compare=False)

    def specificity(self, uuid: str, name: str, tag: str) -> Optional[int]:
        """How closely the rule names this domain: 4 by UUID, 3 by its exact name, 2 by
        a name pattern, 1 by tag, 0 unscoped; None when it does not apply."""
        if not (self.uuids or self.names or self.tags):
            return 0
        if uuid in self.uuids:
            return 4
        if name in self.names:
            return 3
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in self.names):
            return 2
        if tag and tag in self.tags:
            return 1
        return None


@dataclass(frozen=True)
class TrapSettings:
    kinds: frozenset[str] = frozenset(TRAP_KINDS)
    persistent: bool = False          # re-send every domain's state each poll interval
    hold_down_s: float = 0.0          # at most one state trap per domain per this long
    stall_cycles: int = 3
    interval_s: float = 10.0
    thresholds: tuple[Threshold, ...] = ()
    include: tuple[str, ...] = ()      # [poll] include / exclude: excluded domains get
    exclude: tuple[str, ...] = ()      # no trap (nor an index)
    # The MIBs whose notifications are sent ([mibs] notify): LIBVIRT-EXT-MIB's, and
    # LIBVIRT-MIB's libvirtGuestNotif for each state change.
    families: frozenset[str] = frozenset({"LIBVIRT-EXT-MIB"})
