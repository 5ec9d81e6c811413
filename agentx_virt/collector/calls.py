"""The per-call API of one domain, as the sampler uses it: failures become absent values.

Calls that libvirt does not support for this driver are remembered (per reader)
and not repeated; slowly changing data is cached for SLOW_REFRESH_CYCLES polls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import libvirt

from agentx_virt.collector.connection import Connection
from agentx_virt.collector.errors import CallFailed, NotAvailable

# Data that changes rarely is read again after this many polls (or when it must have
# changed): disk sizes, vCPU pinning, perf event flags, completed-job statistics, disk
# errors of running domains, and the absence of balloon statistics.
SLOW_REFRESH_CYCLES = 6


@dataclass
class CallMemo:
    """Per reader: calls this driver does not support (not repeated), and results of
    slowly changing calls with the poll cycle they were read in."""

    unsupported: set[str] = field(default_factory=set)
    cycle: int = 0
    cache: dict[tuple[object, ...], tuple[int, Any]] = field(default_factory=dict)
    had_job: set[str] = field(default_factory=set)     # UUIDs with a job at the last poll

    def forget(self, uuid: str) -> None:
        for key in [k for k in self.cache if k[0] == uuid]:
            del self.cache[key]
        self.had_job.discard(uuid)


class Calls:
    """One domain's per-call API on one connection: errors become absent values (noted
    as problems), unsupported calls are not repeated, slow data is cached."""

    def __init__(self, conn: Connection, dom: libvirt.virDomain, name: str,
                 memo: CallMemo) -> None:
        self.conn, self.dom, self.name, self.memo = conn, dom, name, memo
        self.problems: list[str] = []

    def cached(self, uuid: str, api: str, function: Callable[..., Any], *args: Any,
               fresh: bool = False, empty_only: bool = False) -> Any:
        """Like ``get``, reusing a result younger than SLOW_REFRESH_CYCLES polls; with
        ``empty_only`` only an empty result is reused (a domain with nothing to report,
        such as no balloon driver), any other is asked for every poll."""
        key = (uuid, api, *args)
        memo = self.memo
        found = memo.cache.get(key)
        if not fresh and found is not None and memo.cycle - found[0] < SLOW_REFRESH_CYCLES:
            return found[1]
        value = self.get(api, function, *args)
        if empty_only and value:
            memo.cache.pop(key, None)
            return value
        if isinstance(value, list):
            value = tuple(value)          # kept for many polls: the smaller container
        if found is not None and found[1] == value:
            value = found[1]              # unchanged: keep the long-lived objects
        memo.cache[key] = (memo.cycle, value)
        return value

    def get(self, api: str, function: Callable[..., Any], *args: Any) -> Any:
        """The call's result, or None when it is not available (or failed; noted)."""
        if api in self.memo.unsupported:
            return None
        try:
            return self.conn.call(f"{api} of {self.name}", function, *args)
        except NotAvailable as exc:
            if exc.args and "not supported by the connection driver" in str(exc.args[0]):
                self.memo.unsupported.add(api)
            return None
        except CallFailed as exc:
            self.problems.append(str(exc))
            return None
