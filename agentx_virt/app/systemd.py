"""systemd's notification protocol (sd_notify(3)), without libsystemd: one datagram of
``KEY=VALUE`` lines to the unix socket named by $NOTIFY_SOCKET.

Without $NOTIFY_SOCKET (not started by systemd with Type=notify) every call does
nothing.  A send that fails is logged once and never stops the agent.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping
from typing import Optional

log = logging.getLogger(__name__)


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds, as RELOADING=1 wants it beside MONOTONIC_USEC."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class Systemd:
    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        address = environ.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):            # an abstract socket
            address = "\0" + address[1:]
        self._address: Optional[str] = address if address[:1] in ("/", "\0") else None
        if address and self._address is None:
            log.warning("NOTIFY_SOCKET=%r is not a unix socket path; not notifying systemd",
                        address)
        self._socket: Optional[socket.socket] = None
        self._failed = False
        # WatchdogSec=: systemd expects WATCHDOG=1 more often than this; the agent sends it
        # at half the period.  Only for this process (WATCHDOG_PID, when set, is ours).
        usec = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        self.watchdog_s: Optional[float] = (int(usec) / 1e6 if usec.isdigit() and
                                            int(usec) > 0 and mine else None)
        self._watchdog_sent = float("-inf")
        self._status = ""

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, **fields: object) -> bool:
        """Send the fields (READY=1 is ``notify(READY=1)``); False if not sent."""
        if self._address is None:
            return False
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM |
                                             socket.SOCK_CLOEXEC)
                # Never wait for systemd: a reader that falls behind costs a message,
                # not the main thread (a unix datagram queue holds 10 by default).
                self._socket.setblocking(False)
            self._socket.sendto(message, self._address)
        except BlockingIOError:
            return False
        except OSError as exc:
            if not self._failed:
                log.warning("cannot notify systemd at NOTIFY_SOCKET %r: %s",
                            self._address.replace("\0", "@"), exc)
                self._failed = True
            return False
        return True

    def status(self, text: str) -> None:
        """STATUS=text, when it differs from the last one sent."""
        if text != self._status and self.notify(STATUS=text):
            self._status = text

    def watchdog(self, healthy: bool, now: float) -> None:
        """WATCHDOG=1 when half the watchdog period has passed and the agent is healthy;
        an unhealthy agent sends nothing, so systemd restarts it when the period ends."""
        if self.watchdog_s is None or now - self._watchdog_sent < self.watchdog_s / 2:
            return
        if not healthy:
            return
        if self.notify(WATCHDOG=1):
            self._watchdog_sent = now

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
