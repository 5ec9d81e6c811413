"""Which domains the agent watches: the ``[poll] include`` / ``exclude`` patterns.

One function for the poller (rows and indexes) and the notifier (event traps), so
an excluded domain gets no index, no row and no trap, whichever path sees it first.
"""

from __future__ import annotations

import fnmatch


def selected(name: str, uuid: str, include: tuple[str, ...], exclude: tuple[str, ...]) -> bool:
    """Whether the include/exclude patterns (fnmatch, on name or UUID) keep this domain."""
    def matches(patterns: tuple[str, ...]) -> bool:
        return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(uuid, p.lower())
                   for p in patterns)
    return (not include or matches(include)) and not matches(exclude)
