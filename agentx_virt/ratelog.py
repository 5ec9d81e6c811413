"""Log a recurring problem once per kind per period, with a count of the rest.

For peers that can send thousands of odd PDUs (a stray Response, a malformed
request): the first of each kind is logged at once, the others in that period
are counted and reported in one line when the period is over.  The clock is
injected for tests.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

PERIOD_S = 60.0


class RateLimitedLog:
    def __init__(self, logger: logging.Logger, period_s: float = PERIOD_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log = logger
        self._period_s = period_s
        self._clock = clock
        self._kinds: dict[str, list[float]] = {}     # kind -> [period start, suppressed]

    def warning(self, kind: str, message: str, *args: object) -> None:
        """Log ``message`` unless ``kind`` was logged less than a period ago (then count)."""
        now = self._clock()
        state = self._kinds.get(kind)
        if state is not None and now - state[0] < self._period_s:
            state[1] += 1
            return
        if state is not None:
            self._summary(kind, state, now)
        self._kinds[kind] = [now, 0]
        self._log.warning(message + " (more of these are counted: one line every %.0f s)",
                          *args, self._period_s)

    def flush(self) -> None:
        """Report the counts of periods that are over (call now and then)."""
        if not self._kinds:
            return
        now = self._clock()
        for kind, state in list(self._kinds.items()):
            if now - state[0] >= self._period_s:
                self._summary(kind, state, now)
                del self._kinds[kind]

    def _summary(self, kind: str, state: list[float], now: float) -> None:
        if state[1]:
            self._log.warning("%d more %s in the last %.0f s", int(state[1]), kind,
                              now - state[0])
