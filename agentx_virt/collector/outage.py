"""One WARNING per libvirt outage, a reminder every few minutes, one INFO when it ends.

The partitioner reports the host-level outage through ``OutageLog``; the readers
and the event watcher, which meet the same outage on their own connections, log
it at INFO and DEBUG, so an operator reads one warning per outage instead of one
line per poll.  The clock is injected for tests.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Optional

REMINDER_S = 300.0


class OutageLog:
    """Logs the start, reminders and end of one kind of outage on ``logger``."""

    def __init__(self, logger: logging.Logger, what: str, reminder_s: float = REMINDER_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log = logger
        self._what = what
        self._reminder_s = reminder_s
        self._clock = clock
        self._since: Optional[float] = None      # when the outage began
        self._reminded = 0.0

    def failed(self, reason: object, retry_s: Optional[float]) -> None:
        """One more failed attempt: a WARNING at the first, a reminder now and then;
        ``retry_s`` None: no attempt follows (a one-shot command)."""
        now = self._clock()
        if self._since is None:
            self._since = self._reminded = now
            if retry_s is None:
                self._log.warning("%s unavailable: %s", self._what, reason)
                return
            self._log.warning("%s unavailable: %s; retrying every %g s (reminder every "
                              "%g s until it is back)", self._what, reason, retry_s,
                              self._reminder_s)
        elif now - self._reminded >= self._reminder_s:
            self._reminded = now
            self._log.warning("%s still unavailable after %.0f s: %s", self._what,
                              now - self._since, reason)

    def recovered(self) -> None:
        """It works again: one INFO line when there was an outage."""
        if self._since is not None:
            self._log.info("%s is back after %.1f s", self._what, self._clock() - self._since)
            self._since = None
