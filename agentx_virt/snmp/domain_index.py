"""Stable lvxDomainIndex values: one integer per domain UUID, kept in a small state file.

A UUID keeps its index across polls and agent restarts.  Indexes are handed
out in increasing order and not reused while the UUID that had one is
remembered, so an NMS never sees a new domain take over an old domain's row
history.  A UUID unseen for ``FORGET_AFTER_S`` is forgotten (its index may then
be handed out again once the counter wraps at 2^31-1).

The registry is the only writer of its state file.  Whatever path asks for an
index (the poller, the notifier), a new one is on disk (written to a temp
file, fsynced, renamed over the old file, the directory fsynced) before
``assign`` returns it: once an index has been served or sent in a trap, a
``kill -9`` cannot make a restarted agent give it to another domain.  A write
that fails keeps the agent serving; the failure shows in ``save_error`` and is
logged once per condition.
"""

from __future__ import annotations

import json
import logging
import math
import os
import stat
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from agentx_virt.model.record import slotted
from agentx_virt.model.snapshot import DomainStats, uuid_key
from agentx_virt.statefile import write_atomically

log = logging.getLogger(__name__)

STATE_FILE = "domain-index.json"     # in the state directory
MAX_INDEX = 2**31 - 1
FORGET_AFTER_S = 30 * 24 * 3600
FORGET_CHECK_S = 3600.0        # how often long-unseen UUIDs are looked for
STATE_VERSION = 1
MAX_STATE_BYTES = 256 * 1024 * 1024     # far above 100,000 domains (about 8 MB)


class StateFileError(Exception):
    """The state file or its directory cannot be used; the message names it and says why."""


@slotted
@dataclass
class _Known:
    index: int
    last_seen: float          # updated in place at each sighting


class DomainIndexRegistry:
    """UUID → lvxDomainIndex, with the time each UUID was last seen.

    With a ``path``, every assignment of a new index is saved there before it is
    returned; without one (``agentx-virt dump``, tests) nothing is written.
    """

    def __init__(self, path: Optional[Path] = None) -> None:
        self._known: dict[str, _Known] = {}
        self._next = 1
        self._lock = threading.Lock()    # the poller and the notifier both assign
        self.path = path
        self.save_error: Optional[str] = None   # why the last save failed; None: it did not
        self._forget_checked: Optional[float] = None

    def __len__(self) -> int:
        return len(self._known)

    def assign(self, uuids: Iterable[str], now: float) -> dict[str, int]:
        """Indexes for these UUIDs (new ones get fresh indexes); marks them seen at ``now``.

        New indexes are on disk when this returns, unless the save failed (see
        ``save_error``): the agent goes on serving rather than going dark.
        """
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
            if in_use is not None:
                self._save_locked()
        return result

    def index_domains(self, domains: Iterable[DomainStats], now: float) -> dict[str, int]:
        """lvxDomainIndex per lower-case UUID of these domains (a snapshot's): ``assign``
        with new domains taken in name order (a fresh start reads naturally), and, once an
        hour of ``now``, the UUIDs unseen for FORGET_AFTER_S forgotten."""
        indexes = self.assign((d.uuid for d in sorted(domains, key=_by_name)), now)
        if self._forget_checked is None:
            self._forget_checked = now
        elif now - self._forget_checked > FORGET_CHECK_S:
            self._forget_checked = now
            self.forget_unseen(now)
        return indexes

    def _fresh_index(self, in_use: set[int]) -> int:
        if len(in_use) >= MAX_INDEX:
            raise StateFileError("every lvxDomainIndex value is in use")
        while self._next in in_use:
            self._next = self._next % MAX_INDEX + 1
        index = self._next
        self._next = self._next % MAX_INDEX + 1
        return index

    def forget_unseen(self, now: float, after_s: float = FORGET_AFTER_S) -> list[str]:
        """Drop UUIDs not seen for ``after_s`` seconds and save; returns them."""
        with self._lock:
            stale = [key for key, known in self._known.items()
                     if now - known.last_seen > after_s]
            for key in stale:
                del self._known[key]
            self._save_locked()
        return stale

    def flush(self) -> None:
        """Save the sighting times too (at stop; new indexes are saved as they come)."""
        with self._lock:
            self._save_locked()

    # ------------------------------------------------------------ persistence

    def _json_locked(self) -> str:
        return json.dumps({
            "version": STATE_VERSION,
            "next_index": self._next,
            "domains": {key: {"index": known.index, "last_seen": known.last_seen}
                        for key, known in sorted(self._known.items())},
        }, indent=0)

    @classmethod
    def from_json(cls, text: str, path: Optional[Path] = None) -> DomainIndexRegistry:
        """Raises ValueError (with the reason) on anything but a well-formed state."""
        try:
            data = json.loads(text)
        except RecursionError:
            raise ValueError("nested too deeply to be a domain index state") from None
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise ValueError(f"not a version {STATE_VERSION} domain index state")
        domains = data.get("domains")
        if not isinstance(domains, dict):
            raise ValueError("'domains' is not an object")
        registry = cls(path)
        seen_indexes: set[int] = set()
        for key, entry in domains.items():
            if not isinstance(entry, dict):
                raise ValueError(f"the entry of {key!r} is not an object")
            index, last_seen = _whole(entry.get("index")), entry.get("last_seen")
            if index is None or not 1 <= index <= MAX_INDEX:
                raise ValueError(f"index {entry.get('index')!r} of {key!r} is outside "
                                 f"1..{MAX_INDEX}")
            if isinstance(last_seen, bool) or not isinstance(last_seen, (int, float)) or \
                    not math.isfinite(last_seen):
                raise ValueError(f"last_seen {last_seen!r} of {key!r} is not a time")
            if index in seen_indexes:
                raise ValueError(f"index {index} is given to two domains")
            seen_indexes.add(index)
            registry._known[uuid_key(key)] = _Known(index, float(last_seen))
        next_index = _whole(data.get("next_index"))
        if next_index is None or not 1 <= next_index <= MAX_INDEX:
            raise ValueError(f"next_index {data.get('next_index')!r} is outside 1..{MAX_INDEX}")
        registry._next = next_index
        return registry

    @classmethod
    def load(cls, path: Path, read_only: bool = False) -> DomainIndexRegistry:
        """Read the state file; a missing file is an empty registry.

        A file that cannot be decoded in any way (not UTF-8, not JSON, nested too
        deeply, wrong types, empty, a directory, a symlink, too large) is moved
        aside to ``PATH.corrupt`` and logged: the agent starts with fresh indexes
        rather than not at all, and the operator learns that indexes changed.
        ``read_only`` (``agentx-virt dump``) reads it and never writes or moves.

        Raises:
            StateFileError: the file cannot be read, or cannot be moved aside.
        """
        owner = None if read_only else path
        try:
            text = _read_state(path)
        except FileNotFoundError:
            return cls(owner)
        except _Unusable as exc:
            problem: Exception = exc
        else:
            try:
                return cls.from_json(text, owner)
            except ValueError as exc:
                problem = exc
        if read_only:
            log.warning("domain index state %s is unusable (%s); showing fresh indexes",
                        path, problem)
            return cls()
        aside = _aside_name(path)
        try:
            os.replace(path, aside)
        except OSError as move_error:
            raise StateFileError(f"domain index state {path} is unusable ({problem}) and "
                                 f"cannot be moved aside: {move_error}") from None
        log.error("domain index state %s is unusable (%s); moved it to %s and started "
                  "afresh: domains get new lvxDomainIndex values", path, problem, aside)
        return cls(owner)

    def save(self, path: Optional[Path] = None) -> None:
        """Write the state atomically to ``path`` (default: the registry's own).

        Raises:
            StateFileError: the directory is missing or not writable.
        """
        with self._lock:
            _write_atomically(path or self._own_path(), self._json_locked())

    def _own_path(self) -> Path:
        if self.path is None:
            raise StateFileError("this domain index registry has no state file")
        return self.path

    def _save_locked(self) -> None:
        if self.path is None:
            return
        try:
            _write_atomically(self.path, self._json_locked())
        except StateFileError as exc:
            if self.save_error is None:
                log.error("%s; new domain indexes are served but would not survive a "
                          "restart (reported once until a save succeeds)", exc)
            self.save_error = str(exc)
            return
        if self.save_error is not None:
            log.warning("domain index state %s written again after failures", self.path)
            self.save_error = None


def _by_name(domain: DomainStats) -> tuple[str, str]:
    return domain.name, domain.uuid


class _Unusable(Exception):
    """The state file exists but is no file of ours to decode."""


def _aside_name(path: Path) -> Path:
    """``PATH.corrupt``, or ``PATH.corrupt.N`` when earlier ones are kept there."""
    aside = path.with_name(path.name + ".corrupt")
    number = 0
    while aside.exists() or aside.is_symlink():
        number += 1
        aside = path.with_name(f"{path.name}.corrupt.{number}")
    return aside


def _whole(value: Any) -> Optional[int]:
    """``value`` when it is an int (a bool is not), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _read_state(path: Path) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if path.is_symlink():
            raise _Unusable("it is a symbolic link") from None
        raise StateFileError(f"cannot read domain index state {path}: {exc}") from None
    try:
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise _Unusable("it is not a regular file")
            if info.st_size > MAX_STATE_BYTES:
                raise _Unusable(f"it holds {info.st_size} bytes, over {MAX_STATE_BYTES}")
            data = handle.read(MAX_STATE_BYTES + 1)
    except IsADirectoryError:
        raise _Unusable("it is a directory") from None
    except OSError as exc:
        raise StateFileError(f"cannot read domain index state {path}: {exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Unusable(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _write_atomically(path: Path, text: str) -> None:
    try:
        write_atomically(path, text)
    except OSError as exc:
        raise StateFileError(f"cannot write domain index state {path}: {exc}") from None
