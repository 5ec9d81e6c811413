"""The statistics groups of one domain: a bulk record's parts, else the per-call APIs.

Each function takes the domain's ``DomainCalls`` (its bulk record, the numbered
entries of it, ``virDomainGetInfo`` when needed, its per-call API) and returns the
DomainStats fields of one group; a field libvirt did not report is absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import libvirt

from agentx_virt.collector.calls import CallMemo, Calls
from agentx_virt.collector.layout import Layout
from agentx_virt.collector.records import (
    NIC_FIELDS,
    as_int,
    balloon,
    counts,
    cpu_times,
    disk_counters,
    disks_by_name,
    guest_used,
    memory_stats,
    nic_counters,
    vcpu_stats,
)
from agentx_virt.model.snapshot import (
    DiskError,
    DiskStats,
    InterfaceStats,
    JobStats,
    PerfEvent,
    StatGroup,
    VcpuStats,
)

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


@dataclass(frozen=True)
class DomainCalls:
    """What every group of one domain's sample reads."""

    calls: Calls
    dom: libvirt.virDomain
    uuid: str
    layout: Layout
    record: Mapping[str, Any]                        # the bulk record ({} without one)
    indexed: Mapping[str, Mapping[int, dict[str, Any]]]   # its numbered entries
    info: list[Any]            # virDomainGetInfo, or [None] * 5 when the record has it all
    active: bool
    wants: Callable[[StatGroup], bool]


def cpu(d: DomainCalls) -> dict[str, Any]:
    """CPU times, for the cpu selector or for cpu_util."""
    if not (d.wants(StatGroup.CPU) or d.wants(StatGroup.CPU_UTIL)):
        return {}
    from_record = cpu_times(d.record)
    if from_record:
        return from_record
    if not d.active:
        return {}
    times = d.calls.get("getCPUStats", d.dom.getCPUStats, True)
    if times:
        return {"cpu_time_total_ns": as_int(times[0].get("cpu_time")),
                "cpu_time_user_ns": as_int(times[0].get("user_time")),
                "cpu_time_system_ns": as_int(times[0].get("system_time"))}
    return {"cpu_time_total_ns": as_int(d.info[4])}


def memory(d: DomainCalls) -> dict[str, Any]:
    if not d.wants(StatGroup.MEMORY):
        return {}
    record = d.record
    values: dict[str, Any] = {"memory_maximum_kib": as_int(d.info[1]),
                              "memory_current_kib": as_int(d.info[2])}
    values.update(balloon(record))
    if "balloon.current" not in record and d.active:
        values.update(memory_stats(
            d.calls.cached(d.uuid, "memoryStats", d.dom.memoryStats, empty_only=True) or {}))
    values["mem_used_kib"] = guest_used(values)
    return values


def vcpus(d: DomainCalls) -> dict[str, Any]:
    """vCPU counts and per-vCPU statistics (vcpu), and the pinning (vcpupin)."""
    values: dict[str, Any] = {}
    calls, dom, uuid = d.calls, d.dom, d.uuid
    if d.wants(StatGroup.VCPU):
        values["vcpus_current"] = as_int(d.record.get("vcpu.current")) or as_int(d.info[3])
        values["vcpus_maximum"] = as_int(d.record.get("vcpu.maximum")) or d.layout.max_vcpus
        per_vcpu = d.indexed.get("vcpu")
        # The bulk record has no host CPU per vCPU: vcpus() gives it (QEMU reads it from
        # /proc, without the monitor), and the pinning along with it. Its three round
        # trips cost 0.17-0.2 ms per domain per cycle (8 QEMU/TCG domains, 0.37 -> 0.57
        # ms), so beside a bulk record it is read every SLOW_REFRESH_CYCLES polls.
        found = None
        if d.active:
            found = (calls.cached(uuid, "vcpus", dom.vcpus) if per_vcpu
                     else calls.get("vcpus", dom.vcpus))
        if found and d.wants(StatGroup.VCPUPIN):
            values["pinning"] = tuple(tuple(bool(b) for b in row) for row in found[1])
        if per_vcpu:
            on_cpu = {int(n): int(host) for n, _st, _t, host in found[0]} if found else {}
            values["vcpus"] = vcpu_stats(per_vcpu, on_cpu)
        elif found:
            values["vcpus"] = tuple(VcpuStats(int(n), int(st), int(t), None, int(host))
                                    for n, st, t, host in found[0])
    if d.wants(StatGroup.VCPUPIN) and "pinning" not in values:
        pins = calls.cached(uuid, "vcpuPinInfo", dom.vcpuPinInfo, 0)
        if pins:
            values["pinning"] = tuple(tuple(bool(b) for b in row) for row in pins)
    return values


def disk_errors(d: DomainCalls, state: int, hypervisor: Optional[str]
                ) -> tuple[DiskError, ...]:
    """Disks with an I/O error (disk_err) of an active domain."""
    if hypervisor == "QEMU" and state != PAUSED:
        # QEMU records a disk's I/O error status only when the error stops the guest
        # (error policy stop/enospc) and clears it when the guest continues, so a
        # domain that is not paused has none to report: no monitor call for it.
        return ()
    # Other drivers: every poll while paused (where an error policy leaves a guest that
    # hit one), else every SLOW_REFRESH_CYCLES polls; an I/O error is also an event.
    errors = (d.calls.get("diskErrors", d.dom.diskErrors, 0) if state == PAUSED
              else d.calls.cached(d.uuid, "diskErrors", d.dom.diskErrors, 0)) or {}
    return tuple(DiskError(str(t), int(c)) for t, c in sorted(errors.items()) if int(c) != 0)


def jobs(d: DomainCalls, memo: CallMemo) -> tuple[JobStats, ...]:
    """Jobs: the current one every poll of an active domain (controlInfo says OK during
    a dump, so it cannot tell); the completed one when a job was seen at the last poll
    and is gone now, else every SLOW_REFRESH_CYCLES polls (also for shut-off domains: a
    managed save leaves its statistics)."""
    found = []
    current = None
    if d.active and (d.wants(StatGroup.JOB_STATS_BACKGROUND)
                     or d.wants(StatGroup.JOB_STATS_COMPLETED)):
        current = _job(d.calls.get("jobStats", d.dom.jobStats, 0), "current")
        if d.wants(StatGroup.JOB_STATS_BACKGROUND):
            found.append(current)
    if d.wants(StatGroup.JOB_STATS_COMPLETED):
        just_ended = d.uuid in memo.had_job and current is None
        found.append(_job(d.calls.cached(d.uuid, "jobStats", d.dom.jobStats, COMPLETED,
                                         fresh=just_ended), "completed"))
    if current is not None:
        memo.had_job.add(d.uuid)
    else:
        memo.had_job.discard(d.uuid)
    return tuple(j for j in found if j is not None)


def perf(d: DomainCalls) -> tuple[PerfEvent, ...]:
    """With the bulk PERF group the enabled events carry "perf.<name>" values; which
    events are enabled is read every SLOW_REFRESH_CYCLES polls."""
    enabled = d.calls.cached(d.uuid, "perfEvents", d.dom.perfEvents, 0) or {}
    return tuple(
        PerfEvent(str(event), bool(on), as_int(d.record.get(f"perf.{event}")) if on else None)
        for event, on in sorted(enabled.items()))


_IOTUNE = (("total_bytes_sec", "iotune_total_bytes_sec"),
           ("read_bytes_sec", "iotune_read_bytes_sec"),
           ("write_bytes_sec", "iotune_write_bytes_sec"),
           ("total_iops_sec", "iotune_total_iops"), ("read_iops_sec", "iotune_read_iops"),
           ("write_iops_sec", "iotune_write_iops"))


def disks(d: DomainCalls) -> tuple[DiskStats, ...]:
    """The disk group: each disk of the XML, from its bulk entry or the per-call APIs."""
    calls, uuid, layout, active = d.calls, d.uuid, d.layout, d.active
    by_name = disks_by_name(d.indexed.get("block", {}))
    disks = []
    for disk in layout.disks:
        bulk = by_name.get(disk.target)
        values: dict[str, Optional[int]] = {}
        if bulk is not None:
            values.update(disk_counters(bulk))
        elif active:
            stats = calls.get("blockStats", calls.dom.blockStats, disk.target)
            if stats:
                values.update(read_requests=as_int(stats[0]), read_bytes=as_int(stats[1]),
                              write_requests=as_int(stats[2]), write_bytes=as_int(stats[3]))
            info = calls.cached(uuid, "blockInfo", calls.dom.blockInfo, disk.target)
            if info:
                values.update(capacity_bytes=as_int(info[0]), allocation_bytes=as_int(info[1]),
                              physical_bytes=as_int(info[2]))
        if active and d.wants(StatGroup.DISK_IOTUNE):
            # A monitor call per disk: limits change rarely, so every SLOW_REFRESH_CYCLES.
            tune = calls.cached(uuid, "blockIoTune", calls.dom.blockIoTune, disk.target, 0)
            values.update({field: as_int(tune.get(key)) for key, field in _IOTUNE}
                          if tune else {})
        described: dict[str, Any] = {"device": disk.device, "kind": disk.kind,
                                     "format": disk.format, "readonly": disk.readonly,
                                     **counts(values)}
        disks.append(DiskStats(disk.target, disk.source, disk.bus, **described))
    return tuple(disks)


def interfaces(d: DomainCalls) -> tuple[InterfaceStats, ...]:
    """The interface group: each NIC of the XML, from its bulk entry or interfaceStats."""
    calls, layout, active = d.calls, d.layout, d.active
    local = calls.conn.local
    entries = d.indexed.get("net", {})
    by_name = {str(v.get("name")): v for v in entries.values()}
    nics = []
    for nic in layout.nics:
        bulk = by_name.get(nic.target)
        values: dict[str, Optional[int]] = {}
        if bulk is not None:
            values.update(nic_counters(bulk))
        elif active and nic.has_device:
            stats = calls.get("interfaceStats", calls.dom.interfaceStats, nic.target)
            if stats:
                values = {name: as_int(v) for (_, name), v in zip(NIC_FIELDS, stats)}
        described: dict[str, Any] = {
            # Read every SLOW_REFRESH_CYCLES polls: a tap keeps its ifIndex while it exists.
            "host_ifindex": calls.cached(d.uuid, "host_ifindex", host_ifindex, nic.target)
            if local else None, "model": nic.model,
            # The source bridge (bridge and network NICs) or device (direct ones).
            "parent_ifindex": calls.cached(d.uuid, "host_ifindex", host_ifindex, nic.source)
            if local and nic.source else None,
            **counts(values)}
        nics.append(InterfaceStats(nic.target, nic.mac, nic.source, **described))
    return tuple(nics)


_SYSFS_NET = Path("/sys/class/net")


def host_ifindex(device: str) -> Optional[int]:
    """The host's ifIndex of network device ``device`` (the kernel's, which IF-MIB's
    ifIndex is on Linux), or None when there is no such device."""
    if not device or "/" in device or device in (".", ".."):
        return None
    try:
        return int((_SYSFS_NET / device / "ifindex").read_text())
    except (OSError, ValueError):
        return None


def _job(stats: Optional[Mapping[str, Any]], slot: str) -> Optional[JobStats]:
    if not stats or not stats.get("type"):
        return None          # no job (type none): no row
    values = {name: stats[key] for key, name in _JOB_FIELDS.items() if key in stats}
    if "error_message" in values:
        values["error_message"] = str(values["error_message"])
    return JobStats(slot, type=int(stats["type"]), **values)
