"""When this host booted and when each local QEMU process started, from ``/proc``.

Only meaningful when libvirt runs on this host (``Connection.local``): the host's
boot is when its KVM hypervisor was last initialised, and a QEMU process starts
when its domain does.  A QEMU process names its domain's UUID on its command line
(``-uuid <uuid>``); a domain whose process cannot be found (another driver, another
pid namespace) has no known start time.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

log = logging.getLogger(__name__)

_PROC = Path("/proc")
_RESCAN_S = 10.0          # a lookup that misses rescans /proc at most this often


def boot_time(proc: Path = _PROC) -> Optional[datetime]:
    """When this host booted (``btime`` of /proc/stat), or None if it cannot be read."""
    try:
        for line in (proc / "stat").read_text().splitlines():
            if line.startswith("btime "):
                return datetime.fromtimestamp(int(line.split()[1]), timezone.utc)
    except (OSError, ValueError, IndexError) as exc:
        log.warning("cannot read the host's boot time from %s/stat: %s", proc, exc)
    return None


def _uuid_of(cmdline: bytes) -> Optional[str]:
    """The ``-uuid`` argument of a NUL-separated command line, lower case."""
    args = cmdline.split(b"\0")
    for position, arg in enumerate(args[:-1]):
        if arg == b"-uuid":
            return args[position + 1].decode("ascii", "replace").lower()
    return None


def _start_ticks(stat: str) -> int:
    """Field 22 of /proc/PID/stat (clock ticks after boot); the command name, field 2,
    is in parentheses and may hold spaces."""
    return int(stat[stat.rindex(")") + 2:].split()[19])


class ProcessStarts:
    """The start time of each local QEMU process, by its domain's UUID (lower case).

    Thread-safe: the reader's workers look domains up concurrently; /proc is scanned
    again only when a lookup misses and the last scan is ``_RESCAN_S`` old.
    """

    def __init__(self, proc: Path = _PROC) -> None:
        self._proc = proc
        self._lock = threading.Lock()
        self._starts: dict[str, datetime] = {}
        self._scanned_at = float("-inf")
        self._tick_s = 1.0 / os.sysconf("SC_CLK_TCK")

    def lookup(self, uuid: str) -> Optional[datetime]:
        key = uuid.lower()
        with self._lock:
            found = self._starts.get(key)
            if found is None and time.monotonic() - self._scanned_at >= _RESCAN_S:
                self._starts = self._scan()
                self._scanned_at = time.monotonic()
                found = self._starts.get(key)
            return found

    def _scan(self) -> dict[str, datetime]:
        booted = boot_time(self._proc)
        starts: dict[str, datetime] = {}
        if booted is None:
            return starts
        try:
            pids = [entry for entry in os.listdir(self._proc) if entry.isdigit()]
        except OSError as exc:
            log.warning("cannot list %s to find QEMU processes: %s", self._proc, exc)
            return starts
        for pid in pids:
            try:
                uuid = _uuid_of((self._proc / pid / "cmdline").read_bytes())
                if uuid is None:
                    continue
                ticks = _start_ticks((self._proc / pid / "stat").read_text())
            except (OSError, ValueError, IndexError):
                continue          # gone meanwhile, or not ours to read
            starts[uuid] = datetime.fromtimestamp(booted.timestamp() + ticks * self._tick_s,
                                                  timezone.utc)
        return starts


_STARTS = ProcessStarts()


def process_start(uuid: str) -> Optional[datetime]:
    """When the local QEMU process of domain ``uuid`` started (one table for the agent:
    the processes are the host's)."""
    return _STARTS.lookup(uuid)
