"""Where the agent's log lines go and how they look: with a timestamp on a terminal or in a
file, and with a syslog priority prefix (``<4>``) and no timestamp when standard error is
systemd's journal, which stamps each line and keeps its priority (``journalctl -p``)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

PLAIN = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Python's levels as syslog priorities (sd-daemon(3) prefixes).
PRIORITIES = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
              logging.CRITICAL: 2}


class JournalFormatter(logging.Formatter):
    """``<priority>logger: message``; a traceback's lines go on without a prefix, as the
    journal keeps them with the first line's priority."""

    def __init__(self) -> None:
        super().__init__("%(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        priority = PRIORITIES.get(record.levelno, 7 if record.levelno < logging.INFO else 3)
        return f"<{priority}>{super().format(record)}"


def stderr_is_journal(environ: Mapping[str, str], stderr_fd: int) -> bool:
    """Whether ``stderr_fd`` is the stream systemd named in ``$JOURNAL_STREAM``
    (``device:inode``); a child that inherited the variable but not the stream is not."""
    named = environ.get("JOURNAL_STREAM", "")
    device, sep, inode = named.partition(":")
    if not sep:
        return False
    try:
        info = os.fstat(stderr_fd)
    except OSError:
        return False
    return f"{info.st_dev}:{info.st_ino}" == f"{device}:{inode}"


def configure(level: str) -> None:
    """Send the root logger's lines to standard error at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    try:
        journal = stderr_is_journal(os.environ, sys.stderr.fileno())
    except (OSError, ValueError):           # not a file: captured, or replaced in-process
        journal = False
    handler.setFormatter(JournalFormatter() if journal else logging.Formatter(PLAIN))
    logging.basicConfig(level=level, handlers=[handler])
