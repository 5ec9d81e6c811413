"""One domain's statistics from libvirt.

The domain's bulk stats record (``domainListGetStats(domains, groups, NOWAIT)``,
from a call for many domains or for this one alone) comes first; each group it
leaves empty (the test driver fills only ``state``) is asked for with the
per-call API instead.  Calls that libvirt does not support for this driver are
remembered and not repeated; statistics that are simply not there (inactive
domain, no guest agent) are left absent.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Optional

import libvirt

from agentx_virt.collector.calls import CallMemo, Calls
from agentx_virt.collector.connection import Connection
from agentx_virt.collector.groups import (
    DomainCalls,
    cpu,
    disk_errors,
    disks,
    interfaces,
    jobs,
    memory,
    perf,
    vcpus,
)
from agentx_virt.collector.layout import Layout
from agentx_virt.collector.records import as_int, indexed
from agentx_virt.model.libvirt_names import ACTIVE_STATES
from agentx_virt.model.snapshot import StatGroup


@dataclass(frozen=True)
class Sample:
    values: dict[str, Any]      # DomainStats fields libvirt reported (None left out);
                                # the reader adds the index, reader, tag and poll fields
    taken_ns: int               # time.monotonic_ns() when the CPU time was read
    problems: tuple[str, ...]   # failures worth a log line


def bulk_groups(wants: Callable[[StatGroup], bool]) -> int:
    """The bulk statistics groups (VIR_DOMAIN_STATS_*) the selectors ask for."""
    groups = libvirt.VIR_DOMAIN_STATS_STATE
    for selector, group in ((StatGroup.CPU, "VIR_DOMAIN_STATS_CPU_TOTAL"),
                            (StatGroup.MEMORY, "VIR_DOMAIN_STATS_BALLOON"),
                            (StatGroup.VCPU, "VIR_DOMAIN_STATS_VCPU"),
                            (StatGroup.INTERFACE, "VIR_DOMAIN_STATS_INTERFACE"),
                            (StatGroup.DISK, "VIR_DOMAIN_STATS_BLOCK"),
                            (StatGroup.PERF, "VIR_DOMAIN_STATS_PERF")):
        if wants(selector) or (selector is StatGroup.CPU and wants(StatGroup.CPU_UTIL)):
            groups |= getattr(libvirt, group, 0)
    return int(groups)


NOWAIT = getattr(libvirt, "VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT", 0)


@dataclass(frozen=True)
class Prefetched:
    """One domain's bulk statistics record from a call for many domains."""

    record: Mapping[str, Any]
    taken_ns: int               # time.monotonic_ns() when the call returned


# QEMU fills these bulk statistics only while it holds the domain's job, and a NOWAIT
# call takes the job only when no other call holds it (FACTS.md: with the job held by a
# stuck call, the record comes back at once without them).
_JOB_ONLY_KEYS = ("balloon.rss", "block.0.rd.reqs")


def monitor_answered(prefetched: Optional[Prefetched]) -> bool:
    """True when the bulk record was filled by the domain's monitor during the call: its
    job was free and its monitor answered a moment ago, so a ``controlInfo`` check before
    the domain's own calls would tell nothing new."""
    if prefetched is None:
        return False
    record = prefetched.record
    return any(key in record for key in _JOB_ONLY_KEYS)


def bulk_stats(conn: Connection, doms: list[libvirt.virDomain],
               wants: Callable[[StatGroup], bool]) -> dict[str, Prefetched]:
    """The bulk statistics of ``doms`` in one call (NOWAIT), by UUID.

    A domain whose job is held elsewhere is skipped by libvirt (NOWAIT) and is absent
    here; the caller asks it on its own.

    Raises:
        CollectorError: the call failed (LibvirtUnavailable when libvirt went away).
    """
    found = conn.call(f"domainListGetStats of {len(doms)} domains",
                      conn.conn.domainListGetStats, doms, bulk_groups(wants), NOWAIT)
    taken_ns = time.monotonic_ns()
    return {dom.UUIDString(): Prefetched(record, taken_ns) for dom, record in found or ()}


def sample_domain(conn: Connection, dom: libvirt.virDomain, uuid: str, name: str,
                  layout: Layout, wants: Callable[[StatGroup], bool], memo: CallMemo,
                  hypervisor: Optional[str] = None,
                  prefetched: Optional[Prefetched] = None) -> Sample:
    """Everything selected about one domain: DomainStats fields but the index and poll ones.

    ``prefetched`` is its bulk record from a call for many domains; without it the bulk
    call is made for this domain alone.

    Raises:
        DomainGone, LibvirtUnavailable: the domain or the connection went away.
    """
    calls = Calls(conn, dom, name, memo)
    values: dict[str, Any] = {}

    record: Mapping[str, Any] = {}
    if prefetched is not None:
        record = prefetched.record
        # Without CPU time in the record (the test driver) it is read below, now.
        taken_ns = prefetched.taken_ns if "cpu.time" in record else time.monotonic_ns()
    else:
        bulk = calls.get("domainListGetStats", conn.conn.domainListGetStats, [dom],
                         bulk_groups(wants), NOWAIT)
        if bulk:
            record = bulk[0][1]
        taken_ns = time.monotonic_ns()
    # [state, maxMem KiB, memory KiB, nrVirtCpu, cpuTime ns]; not needed when the bulk
    # stats carry all of it (QEMU), needed with drivers that fill only "state".
    info: list[Any] = [None] * 5
    if not all(key in record for key in ("state.state", "balloon.maximum",
                                         "balloon.current", "vcpu.current", "cpu.time")):
        info = conn.call(f"info of {name}", dom.info)
    entries = indexed(record)
    state = as_int(record.get("state.state"))
    values["state"] = state if state is not None else int(info[0])
    # The reason is collectd's domain_state group: without it no call is made for it.
    reason = as_int(record.get("state.reason")) if wants(StatGroup.DOMAIN_STATE) else None
    if reason is None and wants(StatGroup.DOMAIN_STATE):
        state_reason = calls.get("state", dom.state)
        reason = int(state_reason[1]) if state_reason else None
    values["state_reason"] = reason
    active = values["state"] in ACTIVE_STATES
    domain = DomainCalls(calls, dom, uuid, layout, record, entries, info, active, wants)
    values.update(cpu(domain))
    values.update(memory(domain))
    values.update(vcpus(domain))
    if wants(StatGroup.DISK):
        values["disks"] = disks(domain)
    if wants(StatGroup.DISK_ERR) and active:
        values["disk_errors"] = disk_errors(domain, values["state"], hypervisor)
    if wants(StatGroup.INTERFACE):
        values["interfaces"] = interfaces(domain)
    values["jobs"] = jobs(domain, memo)
    if wants(StatGroup.PERF) and active:
        values["perf"] = perf(domain)
    return Sample({k: v for k, v in values.items() if v is not None}, taken_ns,
                  tuple(calls.problems))


