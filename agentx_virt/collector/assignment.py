"""Small rules the poller uses: which reader polls a domain, the readers' health, which
domains libvirt lists as persistent or autostarted, libvirt's version as text."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Callable, Optional

import libvirt

from agentx_virt.collector.connection import Connection
from agentx_virt.collector.errors import CollectorError
from agentx_virt.collector.reader import Reader
from agentx_virt.collector.refs import ReaderResult
from agentx_virt.model.snapshot import DomainStats

_TAG = re.compile(r"virt-(\d+)")


def reader_for(tag: Optional[str], instances: int) -> int:
    """Reader K for tag ``virt-K`` when K < instances; reader 0 for anything else."""
    match = _TAG.fullmatch(tag or "")
    if match and int(match.group(1)) < instances:
        return int(match.group(1))
    return 0


def polled_elsewhere(results: Mapping[int, ReaderResult], uuid: str) -> Optional[DomainStats]:
    """A domain's last result from a reader it has left (a reload or a new tag moved it),
    until its new reader has polled it."""
    for result in results.values():
        found = result.domains.get(uuid)
        if found is not None:
            return found
    return None


def wedged(reader: Reader, now: float) -> bool:
    """Whether a reader's thread died, or a cycle has run far past its bound (a cycle
    ends by 0.9 interval: twice the interval plus 30 s is a stuck thread)."""
    if not reader.thread.is_alive():
        return reader.thread.ident is not None     # started and ended
    since = reader.busy_since
    return since is not None and now - since > 2 * reader.config.interval_s + 30


def polled_by(reader: int, instances: int) -> Callable[[DomainStats], bool]:
    """Whether a domain's reader, by its tag, is ``reader`` of ``instances``."""
    return lambda stats: reader_for(stats.partition_tag, instances) == reader


def version_text(number: int) -> str:
    """libvirt's version number as text: 9000000 → 9.0.0."""
    return f"{number // 1000000}.{number // 1000 % 1000}.{number % 1000}"


PERSISTENT = getattr(libvirt, "VIR_CONNECT_LIST_DOMAINS_PERSISTENT", 4)
AUTOSTART = getattr(libvirt, "VIR_CONNECT_LIST_DOMAINS_AUTOSTART", 1024)


def listed_uuids(conn: Connection, flag: int) -> Optional[set[str]]:
    """The UUIDs of the domains ``listAllDomains(flag)`` lists; None if it fails."""
    try:
        return {dom.UUIDString() for dom in conn.call(f"listAllDomains({flag})",
                                                      conn.conn.listAllDomains, flag)}
    except (CollectorError, libvirt.libvirtError):
        return None
