"""SIGHUP: the configuration is read again and validated whole before anything applies.

A file with any error changes nothing: each problem is logged (file:line: [section]
key) and the running configuration stays.  A valid one applies its log level at once;
the other settings it changes are named in a warning and take effect at the next
restart.  The signal handler only sets a flag; the agent's main thread does the work.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Callable

from agentx_virt.app.config import Config, ConfigError, changed_settings

log = logging.getLogger(__name__)


class Reloader:
    """Reads the configuration again when asked; ``config`` is the one that runs."""

    def __init__(self, config: Config, load: Callable[[], Config]) -> None:
        self.config = config
        self._load = load
        self.requested = threading.Event()   # set by the SIGHUP handler

    def request(self) -> None:
        """From a signal handler: only a flag."""
        self.requested.set()

    def reload_if_requested(self) -> None:
        """Called by the main thread: one reload for however many requests came."""
        if not self.requested.is_set():
            return
        self.requested.clear()
        try:
            new = self._load()
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("reload refused, the running configuration stays: %s", problem)
            return
        changed = changed_settings(self.config, new)
        live = "[agent] log_level" in changed
        if live:
            logging.getLogger().setLevel(new.log_level)
            self.config = dataclasses.replace(self.config, log_level=new.log_level)
        later = [name for name in changed if name != "[agent] log_level"]
        log.info("reload: the configuration is valid%s", "; log level " + new.log_level
                 if live else "; nothing that applies live changed")
        if later:
            log.warning("reload: %s changed; these take effect at the next restart",
                        ", ".join(later))
