"""What the notifier is told to send: kinds, repetition, stall and threshold rules."""

from __future__ import annotations

from dataclasses import dataclass

# Kinds of notification [traps] enable can name (each maps to MIB notifications).
TRAP_KINDS = ("state", "define", "io_error", "job", "poll", "threshold", "libvirt")


@dataclass(frozen=True)
class Threshold:
    """Crossed when ``metric`` rises above ``rising``; cleared at or below ``falling``."""

    metric: str          # a domain table gauge, e.g. from libvirt_ext.THRESHOLD_METRICS
    rising: int
    falling: int


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
