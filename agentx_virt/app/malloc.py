"""glibc malloc settings for the daemon process."""

from __future__ import annotations

import ctypes
import os

M_ARENA_MAX = -8        # mallopt parameter number, from glibc's <malloc.h>
DAEMON_ARENAS = 2


def limit_arenas(count: int = DAEMON_ARENAS) -> bool:
    """Cap glibc's malloc arenas at ``count``; call it before the daemon starts threads.

    glibc gives threads that allocate at the same time arenas of their own, up to 8 per
    CPU, and memory freed in one arena is reused only by that arena.  The daemon's
    threads (readers, workers, libvirt's event loop, the AgentX session) spend their
    time waiting on libvirt or snmpd, so sharing two arenas costs them little.  Measured
    as ``bench/poll_cost.py`` does, at 1,001 remote test-driver domains after 40 polls:
    46.8-47.7 MiB resident in five runs with the cap, 47.6 MiB in two without it: the
    runs spread more than the cap moves them.

    Returns False, changing nothing, when MALLOC_ARENA_MAX is set (glibc has read it
    already, and the user's choice stands) or the C library has no ``mallopt`` (not glibc).
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_ARENA_MAX, count))
