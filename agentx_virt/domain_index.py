"""Stable lvxDomainIndex values: one integer per domain UUID, kept in a small state file.

A UUID keeps its index across polls and agent restarts.  Indexes are handed
out in increasing order and not reused while the UUID that had one is
remembered, so an NMS never sees a new domain take over an old domain's row
history.  A UUID unseen for ``FORGET_AFTER_S`` is forgotten (its index may then
be handed out again once the counter wraps at 2^31-1).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from agentx_virt.record import slotted
from agentx_virt.snapshot import uuid_key

log = logging.getLogger(__name__)

MAX_INDEX = 2**31 - 1
FORGET_AFTER_S = 30 * 24 * 3600
STATE_VERSION = 1


class StateFileError(Exception):
    """The state file exists but cannot be used; the message names it and says why."""


@slotted
@dataclass
class _Known:
    index: int
    last_seen: float          # updated in place at each sighting


class DomainIndexRegistry:
    """UUID → lvxDomainIndex, with the time each UUID was last seen."""

    def __init__(self) -> None:
        self._known: dict[str, _Known] = {}
        self._next = 1
        self._lock = threading.Lock()    # the poller and the notifier both assign

    def __len__(self) -> int:
        return len(self._known)

    def assign(self, uuids: Iterable[str], now: float) -> dict[str, int]:
        """Indexes for these UUIDs (new ones get fresh indexes); marks them seen at ``now``."""
        result: dict[str, int] = {}
        with self._lock:
            in_use: Optional[set[int]] = None      # made once, when a new UUID needs it
            for key in uuids:
                key = uuid_key(key)
                known = self._known.get(key)
                if known is not None:
                    known.last_seen = now
                    index = known.index
                else:
                    if in_use is None:
                        in_use = {k.index for k in self._known.values()}
                    index = self._fresh_index(in_use)
                    in_use.add(index)
                    self._known[key] = _Known(index, now)
                result[key] = index
        return result

    def _fresh_index(self, in_use: set[int]) -> int:
        if len(in_use) >= MAX_INDEX:
            raise StateFileError("every lvxDomainIndex value is in use")
        while self._next in in_use:
            self._next = self._next % MAX_INDEX + 1
        index = self._next
        self._next = self._next % MAX_INDEX + 1
        return index

    def forget_unseen(self, now: float, after_s: float = FORGET_AFTER_S) -> list[str]:
        """Drop UUIDs not seen for ``after_s`` seconds; returns them."""
        with self._lock:
            stale = [key for key, known in self._known.items()
                     if now - known.last_seen > after_s]
            for key in stale:
                del self._known[key]
        return stale

    # ------------------------------------------------------------ persistence

    def to_json(self) -> str:
        with self._lock:
            known = dict(self._known)
        return json.dumps({
            "version": STATE_VERSION,
            "next_index": self._next,
            "domains": {key: {"index": known.index, "last_seen": known.last_seen}
                        for key, known in sorted(known.items())},
        }, indent=1)

    @classmethod
    def from_json(cls, text: str) -> DomainIndexRegistry:
        """Raises ValueError (with the reason) on anything but a well-formed state."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise ValueError(f"not a version {STATE_VERSION} domain index state")
        registry = cls()
        seen_indexes: set[int] = set()
        for key, entry in dict(data["domains"]).items():
            index, last_seen = entry["index"], entry["last_seen"]
            if not isinstance(index, int) or not 1 <= index <= MAX_INDEX:
                raise ValueError(f"index {index!r} of {key} is outside 1..{MAX_INDEX}")
            if index in seen_indexes:
                raise ValueError(f"index {index} is given to two domains")
            seen_indexes.add(index)
            registry._known[uuid_key(str(key))] = _Known(index, float(last_seen))
        next_index = data["next_index"]
        if not isinstance(next_index, int) or not 1 <= next_index <= MAX_INDEX:
            raise ValueError(f"next_index {next_index!r} is outside 1..{MAX_INDEX}")
        registry._next = next_index
        return registry

    @classmethod
    def load(cls, path: Path) -> DomainIndexRegistry:
        """Read the state file; a missing file is an empty registry.

        A file that exists but cannot be parsed is moved aside to
        ``PATH.corrupt`` and logged: the agent starts with fresh indexes rather
        than not at all, and the operator learns that indexes changed.

        Raises:
            StateFileError: the file cannot be read or moved aside (permissions).
        """
        try:
            text = path.read_text()
        except FileNotFoundError:
            return cls()
        except OSError as exc:
            raise StateFileError(f"cannot read domain index state {path}: {exc}") from None
        try:
            return cls.from_json(text)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            aside = path.with_name(path.name + ".corrupt")
            try:
                os.replace(path, aside)
            except OSError as move_error:
                raise StateFileError(f"domain index state {path} is unusable ({exc}) and "
                                     f"cannot be moved aside: {move_error}") from None
            log.error("domain index state %s is unusable (%s); moved it to %s and started "
                      "afresh: domains get new lvxDomainIndex values", path, exc, aside)
            return cls()

    def save(self, path: Path) -> None:
        """Write the state atomically (temp file, fsync, rename).

        Raises:
            StateFileError: the directory is missing or not writable.
        """
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Not tempfile.mkstemp: importing tempfile costs the daemon 0.7 MiB of RSS.
            temp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            try:
                with os.fdopen(fd, "w") as handle:
                    handle.write(self.to_json())
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temp, path)
            except BaseException:
                os.unlink(temp)
                raise
        except OSError as exc:
            raise StateFileError(f"cannot write domain index state {path}: {exc}") from None
