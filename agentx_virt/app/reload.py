"""SIGHUP: the configuration is read again and validated whole before anything applies.

A file with any error changes nothing: each problem is logged (file:line: [section]
key), the failure is counted (lvxConfigReloadFailures, lvxConfigLastError) and the
running configuration stays.  A valid one is handed to ``apply``, which applies
every setting it can live and names those that wait for a restart.  The signal
handler only sets a flag; the agent's main thread does the work, one reload per
turn however many signals came.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from agentx_virt.app.config import Config, ConfigError, changed_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReloadStatus:
    loaded_at: datetime          # when the running configuration was read (UTC)
    reloads: int = 0             # applied
    failures: int = 0            # refused
    last_error: str = ""         # the first problem of the last refused one


def _display(text: str) -> str:
    """At most 255 octets of UTF-8, as lvxConfigLastError (a DisplayString) holds."""
    return text.encode()[:255].decode(errors="ignore")


class Reloader:
    """``config`` is the one that runs; ``apply(old, new)`` applies a valid new one and
    returns the configuration now in force (with the old values of what waits for a
    restart) and the names of those settings; ``refused(status)`` is told of each
    refused reload."""

    def __init__(self, config: Config, load: Callable[[], Config],
                 wall: Callable[[], float] = time.time) -> None:
        self.config = config
        self._load = load
        self._wall = wall
        self.apply: Callable[[Config, Config], tuple[Config, list[str]]] = \
            lambda _old, new: (new, [])
        self.refused: Callable[[ReloadStatus], None] = lambda _status: None
        self.requested = threading.Event()   # set by the SIGHUP handler
        self.status = ReloadStatus(self._now())

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._wall(), timezone.utc)

    def request(self) -> None:
        """From a signal handler: only a flag."""
        self.requested.set()

    def reload_if_requested(self) -> bool:
        """Called by the main thread: one reload for however many requests came; True
        when one ran (applied or refused)."""
        if not self.requested.is_set():
            return False
        self.requested.clear()
        try:
            new = self._load()
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("reload refused, the running configuration stays: %s", problem)
            self.status = ReloadStatus(self.status.loaded_at, self.status.reloads,
                                       self.status.failures + 1, _display(exc.problems[0]))
            self.refused(self.status)
            return True
        changed = changed_settings(self.config, new)
        self.config, later = self.apply(self.config, new)
        self.status = ReloadStatus(self._now(), self.status.reloads + 1, self.status.failures)
        live = [name for name in changed if name not in later]
        log.info("reload: the configuration is valid; %s", "applied " + ", ".join(live)
                 if live else "nothing that applies live changed")
        if later:
            log.warning("reload: %s changed; this takes effect at the next restart",
                        ", ".join(later))
        return True
