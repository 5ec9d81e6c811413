"""Names and severities for libvirt's domain state codes (libvirt-domain.h).

libvirt numbers a domain's state (virDomainState) and, per state, the reason
for it (virDomainRunningReason, virDomainPausedReason, ...).  The MIB carries
the numbers; these tables give the reason's name and the state's severity.
"""

from __future__ import annotations

# virDomainState value -> the name the MIB's LvxDomainRunState gives it.
# The virDomainState values of a domain that is up (its QEMU process runs): running,
# blocked, paused, shutdown (shutting down) and pmsuspended.
ACTIVE_STATES = frozenset({1, 2, 3, 4, 7})

STATE_NAMES = {
    0: "nostate", 1: "running", 2: "blocked", 3: "paused", 4: "shutdown",
    5: "shutoff", 6: "crashed", 7: "pmsuspended",
}

# Severity per state, as LvxSeverity names it.
STATE_SEVERITY = {
    0: "okay", 1: "okay", 4: "okay", 5: "okay",
    2: "warning", 3: "warning", 7: "warning",
    6: "failure",
}

# Per state, the reason codes' names (the suffix of libvirt's constant, lower case).
STATE_REASONS: dict[int, tuple[str, ...]] = {
    0: ("unknown",),
    1: ("unknown", "booted", "migrated", "restored", "from_snapshot", "unpaused",
        "migration_canceled", "save_canceled", "wakeup", "crashed", "postcopy",
        "postcopy_failed"),
    2: ("unknown",),
    3: ("unknown", "user", "migration", "save", "dump", "ioerror", "watchdog",
        "from_snapshot", "shutting_down", "snapshot", "crashed", "starting_up",
        "postcopy", "postcopy_failed", "api_error"),
    4: ("unknown", "user"),
    5: ("unknown", "shutdown", "destroyed", "crashed", "migrated", "saved", "failed",
        "from_snapshot", "daemon"),
    6: ("unknown", "panicked"),
    7: ("unknown",),
}


def reason_name(state: int, reason: int) -> str:
    """The reason's name, or ``reason N`` for a code this table does not know."""
    names = STATE_REASONS.get(state, ())
    return names[reason] if 0 <= reason < len(names) else f"reason {reason}"


def severity(state: int) -> str:
    """okay, warning or failure; an unknown state is a failure to look at."""
    return STATE_SEVERITY.get(state, "failure")


# virDomainEventType -> the state it leaves the domain in, and per event detail the
# reason code (of that state's reason enum) it corresponds to.
EVENT_DEFINED, EVENT_UNDEFINED = 0, 1
EVENT_STATES: dict[int, tuple[int, dict[int, int]]] = {
    2: (1, {0: 1, 1: 2, 2: 3, 3: 4, 4: 8}),                 # started -> running
    3: (3, {0: 1, 1: 2, 2: 5, 3: 6, 4: 0, 5: 7, 6: 14, 7: 12, 8: 13}),   # suspended -> paused
    4: (1, {0: 5, 1: 2, 2: 4, 3: 10, 4: 11}),                # resumed -> running
    5: (5, {0: 1, 1: 2, 2: 3, 3: 4, 4: 5, 5: 6, 6: 7}),      # stopped -> shutoff
    6: (4, {0: 1, 1: 1, 2: 1}),                              # shutdown -> shutdown (user)
    7: (7, {0: 0, 1: 0}),                                    # pmsuspended
    8: (6, {0: 1, 1: 1}),                                    # crashed -> panicked
}
DEFINED_DETAILS = ("added", "updated", "renamed", "from_snapshot")
UNDEFINED_DETAILS = ("removed", "renamed")
IO_ERROR_ACTIONS = ("none", "pause", "report")


def event_state(event: int, detail: int) -> tuple[int, int] | None:
    """(state, reason) a lifecycle event leaves the domain in; None for define/undefine."""
    found = EVENT_STATES.get(event)
    if found is None:
        return None
    state, reasons = found
    return state, reasons.get(detail, 0)


def detail_name(names: tuple[str, ...], detail: int) -> str:
    return names[detail] if 0 <= detail < len(names) else f"detail {detail}"
