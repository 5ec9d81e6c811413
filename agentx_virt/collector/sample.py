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
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import libvirt

from agentx_virt.collector.connection import Connection
from agentx_virt.collector.errors import CallFailed, NotAvailable
from agentx_virt.collector.layout import Layout
from agentx_virt.snapshot import (
    DiskError,
    DiskStats,
    GuestFilesystem,
    InterfaceStats,
    JobStats,
    PerfEvent,
    VcpuStats,
)

ACTIVE_STATES = frozenset({1, 2, 3, 4, 7})   # running, blocked, paused, shutdown, pmsuspended
PAUSED = 3
# Reading the completed job's statistics deletes them in libvirt unless KEEP_COMPLETED is
# given: without it the row would vanish at the next read, and so would what
# `virsh domjobinfo --completed` shows an operator.
COMPLETED = (getattr(libvirt, "VIR_DOMAIN_JOB_STATS_COMPLETED", 1)
             | getattr(libvirt, "VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED", 2))

_JOB_FIELDS = {
    "time_elapsed": "time_elapsed_ms", "time_remaining": "time_remaining_ms",
    "downtime": "downtime_ms", "setup_time": "setup_time_ms",
    "data_total": "data_total", "data_processed": "data_processed",
    "data_remaining": "data_remaining", "memory_total": "memory_total",
    "memory_processed": "memory_processed", "memory_remaining": "memory_remaining",
    "memory_bps": "memory_bps", "memory_dirty_rate": "memory_dirty_rate",
    "memory_iteration": "memory_iteration", "disk_total": "disk_total",
    "disk_processed": "disk_processed", "disk_remaining": "disk_remaining",
    "disk_bps": "disk_bps", "compression_bytes": "compression_bytes",
    "compression_pages": "compression_pages",
    "compression_cache_misses": "compression_cache_misses",
    "compression_overflow": "compression_overflow",
    "auto_converge_throttle": "auto_converge_throttle", "operation": "operation",
    "errmsg": "error_message",
}
_MEMORY_FIELDS = {
    "actual": "balloon_actual_kib", "unused": "mem_unused_kib", "usable": "mem_usable_kib",
    "available": "mem_available_kib", "rss": "mem_rss_kib", "swap_in": "swap_in_kib",
    "swap_out": "swap_out_kib", "major_fault": "major_faults", "minor_fault": "minor_faults",
}
_BALLOON_FIELDS = {
    "balloon.current": "memory_current_kib", "balloon.maximum": "memory_maximum_kib",
    **{f"balloon.{key}": name for key, name in _MEMORY_FIELDS.items() if key != "actual"},
}


# Data that changes rarely is read again after this many polls (or when it must have
# changed): disk sizes, vCPU pinning, perf event flags, completed-job statistics.
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


@dataclass(frozen=True)
class Sample:
    values: dict[str, Any]      # DomainStats fields libvirt reported (None left out);
                                # the reader adds the index, reader, tag and poll fields
    taken_ns: int               # time.monotonic_ns() when the CPU time was read
    problems: tuple[str, ...]   # failures worth a log line


class _Calls:
    def __init__(self, conn: Connection, dom: libvirt.virDomain, name: str,
                 memo: CallMemo) -> None:
        self.conn, self.dom, self.name, self.memo = conn, dom, name, memo
        self.problems: list[str] = []

    def cached(self, uuid: str, api: str, function: Callable[..., Any], *args: Any,
               fresh: bool = False) -> Any:
        """Like ``get``, reusing a result younger than SLOW_REFRESH_CYCLES polls."""
        key = (uuid, api, *args)
        memo = self.memo
        found = memo.cache.get(key)
        if not fresh and found is not None and memo.cycle - found[0] < SLOW_REFRESH_CYCLES:
            return found[1]
        value = self.get(api, function, *args)
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


def _int(value: Any) -> Optional[int]:
    kind = type(value)        # (bool, a subclass of int, is not a count)
    if kind is int:
        return value          # type: ignore[no-any-return]
    return int(value) if kind is float else None


_INDEXED_GROUPS = frozenset({"vcpu", "block", "net"})


def _indexed(record: Mapping[str, Any]) -> dict[str, dict[int, dict[str, Any]]]:
    """The numbered entries of a bulk record by group, in one pass over its keys:
    {'net.0.name': 'tap0', 'vcpu.1.time': 5} -> {'net': {0: {'name': 'tap0'}},
    'vcpu': {1: {'time': 5}}}."""
    found: dict[str, dict[int, dict[str, Any]]] = {}
    for key, value in record.items():
        group, _, rest = key.partition(".")
        if group in _INDEXED_GROUPS:
            number, _, name = rest.partition(".")
            if name and number.isdigit():
                found.setdefault(group, {}).setdefault(int(number), {})[name] = value
    return found


def bulk_groups(wants: Callable[[str], bool]) -> int:
    """The bulk statistics groups (VIR_DOMAIN_STATS_*) the selectors ask for."""
    groups = libvirt.VIR_DOMAIN_STATS_STATE
    for selector, group in (("cpu", "VIR_DOMAIN_STATS_CPU_TOTAL"),
                            ("memory", "VIR_DOMAIN_STATS_BALLOON"),
                            ("vcpu", "VIR_DOMAIN_STATS_VCPU"),
                            ("interface", "VIR_DOMAIN_STATS_INTERFACE"),
                            ("disk", "VIR_DOMAIN_STATS_BLOCK"),
                            ("perf", "VIR_DOMAIN_STATS_PERF")):
        if wants(selector) or (selector == "cpu" and wants("cpu_util")):
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
               wants: Callable[[str], bool]) -> dict[str, Prefetched]:
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
                  layout: Layout, wants: Callable[[str], bool], memo: CallMemo,
                  hypervisor: Optional[str] = None,
                  prefetched: Optional[Prefetched] = None) -> Sample:
    """Everything selected about one domain: DomainStats fields but the index and poll ones.

    ``prefetched`` is its bulk record from a call for many domains; without it the bulk
    call is made for this domain alone.

    Raises:
        DomainGone, LibvirtUnavailable: the domain or the connection went away.
    """
    calls = _Calls(conn, dom, name, memo)
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
    indexed = _indexed(record)
    state = _int(record.get("state.state"))
    values["state"] = state if state is not None else int(info[0])
    # The reason is collectd's domain_state group: without it no call is made for it.
    reason = _int(record.get("state.reason")) if wants("domain_state") else None
    if reason is None and wants("domain_state"):
        state_reason = calls.get("state", dom.state)
        reason = int(state_reason[1]) if state_reason else None
    values["state_reason"] = reason
    active = values["state"] in ACTIVE_STATES

    # CPU
    if wants("cpu") or wants("cpu_util"):
        if "cpu.time" in record:
            values.update(cpu_time_total_ns=_int(record.get("cpu.time")),
                          cpu_time_user_ns=_int(record.get("cpu.user")),
                          cpu_time_system_ns=_int(record.get("cpu.system")))
        elif active:
            cpu = calls.get("getCPUStats", dom.getCPUStats, True)
            if cpu:
                values.update(cpu_time_total_ns=_int(cpu[0].get("cpu_time")),
                              cpu_time_user_ns=_int(cpu[0].get("user_time")),
                              cpu_time_system_ns=_int(cpu[0].get("system_time")))
            else:
                values["cpu_time_total_ns"] = _int(info[4])

    # Memory
    if wants("memory"):
        values.update(memory_maximum_kib=_int(info[1]), memory_current_kib=_int(info[2]))
        values.update({f: _int(record[k]) for k, f in _BALLOON_FIELDS.items() if k in record})
        if "balloon.current" in record:
            values["balloon_actual_kib"] = _int(record["balloon.current"])
        elif active:
            memory = calls.get("memoryStats", dom.memoryStats) or {}
            values.update({f: _int(memory[k]) for k, f in _MEMORY_FIELDS.items() if k in memory})

    # vCPUs
    if wants("vcpu"):
        values["vcpus_current"] = _int(record.get("vcpu.current")) or _int(info[3])
        values["vcpus_maximum"] = _int(record.get("vcpu.maximum")) or layout.max_vcpus
        per_vcpu = indexed.get("vcpu")
        # The bulk record has no host CPU per vCPU: vcpus() gives it (QEMU reads it from
        # /proc, without the monitor), and the pinning along with it. Its three round
        # trips cost 0.17-0.2 ms per domain per cycle (8 QEMU/TCG domains, 0.37 -> 0.57
        # ms), so beside a bulk record it is read every SLOW_REFRESH_CYCLES polls.
        vcpus = None
        if active:
            vcpus = (calls.cached(uuid, "vcpus", dom.vcpus) if per_vcpu
                     else calls.get("vcpus", dom.vcpus))
        if vcpus and wants("vcpupin"):
            values["pinning"] = tuple(tuple(bool(b) for b in row) for row in vcpus[1])
        if per_vcpu:
            on_cpu = {int(n): int(cpu) for n, _st, _t, cpu in vcpus[0]} if vcpus else {}
            values["vcpus"] = tuple(
                VcpuStats(n, _int(v.get("state")), _int(v.get("time")), _int(v.get("wait")),
                          on_cpu.get(n), _int(v.get("delay")))
                for n, v in sorted(per_vcpu.items()))
        elif vcpus:
            values["vcpus"] = tuple(VcpuStats(int(n), int(st), int(t), None, int(cpu))
                                    for n, st, t, cpu in vcpus[0])
    if wants("vcpupin") and "pinning" not in values:
        pins = calls.cached(uuid, "vcpuPinInfo", dom.vcpuPinInfo, 0)
        if pins:
            values["pinning"] = tuple(tuple(bool(b) for b in row) for row in pins)

    # Disks
    if wants("disk"):
        values["disks"] = _disks(calls, uuid, indexed.get("block", {}), layout, active)
    if wants("disk_err") and active:
        if hypervisor == "QEMU" and values["state"] != PAUSED:
            # QEMU records a disk's I/O error status only when the error stops the guest
            # (error policy stop/enospc) and clears it when the guest continues, so a
            # domain that is not paused has none to report: no monitor call for it.
            values["disk_errors"] = ()
        else:
            errors = calls.get("diskErrors", dom.diskErrors, 0) or {}
            values["disk_errors"] = tuple(DiskError(str(t), int(c))
                                          for t, c in sorted(errors.items()) if int(c) != 0)

    # Interfaces
    if wants("interface"):
        values["interfaces"] = _interfaces(calls, indexed.get("net", {}), layout, active)

    # Jobs: the current one every poll of an active domain (controlInfo says OK during
    # a dump, so it cannot tell); the completed one when a job was seen at the last
    # poll and is gone now, else every SLOW_REFRESH_CYCLES polls (also for shut-off
    # domains: a managed save leaves its statistics).
    jobs = []
    current = None
    if active and (wants("job_stats_background") or wants("job_stats_completed")):
        current = _job(calls.get("jobStats", dom.jobStats, 0), "current")
        if wants("job_stats_background"):
            jobs.append(current)
    if wants("job_stats_completed"):
        just_ended = uuid in memo.had_job and current is None
        jobs.append(_job(calls.cached(uuid, "jobStats", dom.jobStats, COMPLETED,
                                      fresh=just_ended), "completed"))
    if current is not None:
        memo.had_job.add(uuid)
    else:
        memo.had_job.discard(uuid)
    values["jobs"] = tuple(j for j in jobs if j is not None)

    # Perf: with the bulk PERF group the enabled events carry "perf.<name>" values;
    # which events are enabled is read every SLOW_REFRESH_CYCLES polls.
    if wants("perf") and active:
        enabled = calls.cached(uuid, "perfEvents", dom.perfEvents, 0) or {}
        values["perf"] = tuple(
            PerfEvent(str(event), bool(on), _int(record.get(f"perf.{event}")) if on else None)
            for event, on in sorted(enabled.items()))

    # Guest file systems (needs a guest agent and a read-write connection)
    if wants("fs_info") and values["state"] == 1:
        mounted = calls.get("fsInfo", dom.fsInfo, 0) or []
        values["filesystems"] = tuple(
            GuestFilesystem(str(mount), str(device), str(kind), tuple(str(a) for a in aliases))
            for mount, device, kind, aliases in mounted)

    return Sample({k: v for k, v in values.items() if v is not None}, taken_ns,
                  tuple(calls.problems))


def _disks(calls: _Calls, uuid: str, entries: Mapping[int, dict[str, Any]], layout: Layout,
           active: bool) -> tuple[DiskStats, ...]:
    # One entry per disk without the BACKING flag (it may still carry a backingIndex);
    # should a chain appear, the first entry of a name is the top image.
    by_name: dict[str, dict[str, Any]] = {}
    for _, entry in sorted(entries.items()):
        by_name.setdefault(str(entry.get("name")), entry)
    disks = []
    for disk in layout.disks:
        bulk = by_name.get(disk.target)
        values: dict[str, Optional[int]] = {}
        if bulk is not None:
            for key, name in (("rd.reqs", "read_requests"), ("rd.bytes", "read_bytes"),
                              ("rd.times", "read_time_ns"), ("wr.reqs", "write_requests"),
                              ("wr.bytes", "write_bytes"), ("wr.times", "write_time_ns"),
                              ("fl.reqs", "flush_requests"), ("fl.times", "flush_time_ns"),
                              ("capacity", "capacity_bytes"),
                              ("allocation", "allocation_bytes"),
                              ("physical", "physical_bytes")):
                values[name] = _int(bulk.get(key))
        elif active:
            stats = calls.get("blockStats", calls.dom.blockStats, disk.target)
            if stats:
                values.update(read_requests=_int(stats[0]), read_bytes=_int(stats[1]),
                              write_requests=_int(stats[2]), write_bytes=_int(stats[3]))
            info = calls.cached(uuid, "blockInfo", calls.dom.blockInfo, disk.target)
            if info:
                values.update(capacity_bytes=_int(info[0]), allocation_bytes=_int(info[1]),
                              physical_bytes=_int(info[2]))
        disks.append(DiskStats(disk.target, disk.source, disk.bus,
                               **{k: v for k, v in values.items() if v is not None and v >= 0}))
    return tuple(disks)


def _interfaces(calls: _Calls, entries: Mapping[int, dict[str, Any]], layout: Layout,
                active: bool) -> tuple[InterfaceStats, ...]:
    by_name = {str(v.get("name")): v for v in entries.values()}
    nics = []
    keys = (("rx.bytes", "rx_bytes"), ("rx.pkts", "rx_packets"), ("rx.errs", "rx_errors"),
            ("rx.drop", "rx_drops"), ("tx.bytes", "tx_bytes"), ("tx.pkts", "tx_packets"),
            ("tx.errs", "tx_errors"), ("tx.drop", "tx_drops"))
    for nic in layout.nics:
        bulk = by_name.get(nic.target)
        values: dict[str, Optional[int]] = {}
        if bulk is not None:
            values = {name: _int(bulk.get(key)) for key, name in keys}
        elif active and nic.has_device:
            stats = calls.get("interfaceStats", calls.dom.interfaceStats, nic.target)
            if stats:
                values = {name: _int(v) for (_, name), v in zip(keys, stats)}
        nics.append(InterfaceStats(nic.target, nic.mac, nic.source,
                                   **{k: v for k, v in values.items()
                                      if v is not None and v >= 0}))
    return tuple(nics)


def _job(stats: Optional[Mapping[str, Any]], slot: str) -> Optional[JobStats]:
    if not stats or not stats.get("type"):
        return None          # no job (type none): no row
    values = {name: stats[key] for key, name in _JOB_FIELDS.items() if key in stats}
    if "error_message" in values:
        values["error_message"] = str(values["error_message"])
    return JobStats(slot, type=int(stats["type"]), **values)
