"""Names and severities for libvirt's domain state codes (libvirt-domain.h).

libvirt numbers a domain's state (virDomainState) and, per state, the reason
for it (virDomainRunningReason, virDomainPausedReason, ...).  The MIB carries
the numbers; these tables give the reason's name and the state's severity.
"""

from __future__ import annotations

# virDomainState value -> the name the MIB's LvxDomainRunState gives it.
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
