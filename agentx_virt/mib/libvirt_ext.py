"""The LIBVIRT-EXT-MIB spec: each object of the module and the Snapshot field it shows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Callable, Optional

from agentx_virt.mib.model import shipped_mib
from agentx_virt.mib.spec import AgentStatus, Getter, MibSpec, TableSpec
from agentx_virt.model.alarm import GAUGE_METRICS, LATER_GAUGES, metric_number
from agentx_virt.model.guest import GuestFilesystem, GuestInfo
from agentx_virt.model.libvirt_names import reason_name, severity
from agentx_virt.model.snapshot import DomainStats, PollStatus


def _both(a: Optional[int], b: Optional[int], f: Callable[[int, int], object]) -> object:
    return None if a is None or b is None else f(a, b)


SCALARS: Mapping[str, Getter] = {
    "lvxLibvirtConnected": lambda s: s.host.libvirt_connected,
    "lvxLibvirtUri": lambda s: s.host.uri,
    "lvxHypervisorType": lambda s: s.host.hypervisor_type,
    "lvxHypervisorVersion": lambda s: s.host.hypervisor_version,
    "lvxLibvirtVersion": lambda s: s.host.libvirt_version,
    "lvxHostCpus": lambda s: s.host.host_cpus,
    "lvxDomainCount": lambda s: len(s.domains),
    "lvxPollIntervalSeconds": lambda s: s.poll.interval_s,
    "lvxLastPollStart": lambda s: s.poll.last_poll_start,
    "lvxLastPollDurationMs": lambda s: s.poll.last_poll_duration_ms,
    "lvxLastPollTimedOut": lambda s: s.poll.timed_out_domains,
    "lvxLastPollFresh": lambda s: sum(1 for d in s.domains if d.poll_status == PollStatus.OK),
    "lvxTablesLastChange": lambda s: s.poll.tables_last_change,
    "lvxLibvirtLastError": lambda s: "" if s.host.libvirt_connected else s.host.last_error or "",
    "lvxHostCpuUtil": lambda s: s.host.cpu_util,
    "lvxHostMemTotalKiB": lambda s: s.host.mem_total_kib,
    "lvxHostMemFreeKiB": lambda s: s.host.mem_free_kib,
    "lvxHostMemBuffersKiB": lambda s: s.host.mem_buffers_kib,
    "lvxHostMemCachedKiB": lambda s: s.host.mem_cached_kib,
}


AGENT_SCALARS: Mapping[str, Callable[[AgentStatus], object]] = {
    "lvxTrapsSent": lambda a: a.traps_sent,
    "lvxTrapsDropped": lambda a: a.traps_dropped,
    "lvxIndexStateError": lambda a: a.index_state_error or "",
    "lvxConfigLoadedAt": lambda a: a.config_loaded_at,
    "lvxConfigReloads": lambda a: a.config_reloads,
    "lvxConfigReloadFailures": lambda a: a.config_reload_failures,
    "lvxConfigLastError": lambda a: a.config_last_error,
    "lvxAlarmsActive": lambda a: sum(len(alarms) for alarms in a.alarms.values()),
}


def _one(domain: DomainStats) -> Iterable[DomainStats]:
    return (domain,)


def _pins(domain: DomainStats) -> Iterable[tuple[int, int, bool]]:
    return ((vcpu, cpu, flag) for vcpu, cpus in enumerate(domain.pinning)
            for cpu, flag in enumerate(cpus))


def _filesystems(domain: DomainStats) -> Iterable[tuple[int, GuestFilesystem]]:
    return enumerate(sorted(domain.filesystems, key=lambda fs: fs.mount_point), 1)


def _guest_age(guest: GuestInfo) -> Optional[int]:
    """Seconds from the agent's last answer to its last ask (None: it never answered)."""
    if guest.answered_at is None:
        return None
    return max(0, int((guest.asked_at - guest.answered_at).total_seconds()))


def _perf_event(name: str) -> str:
    """libvirt's perf event name to the MIB's enumeration label: cpu_cycles → cpuCycles."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


TABLES: tuple[TableSpec, ...] = (
    TableSpec("lvxDomainEntry", _one, lambda i, _: (i,), {
        "lvxDomainUuid": lambda d: d.uuid,
        "lvxDomainName": lambda d: d.name,
        "lvxDomainState": lambda d: d.state,
        "lvxDomainStateReason": lambda d: d.state_reason,
        "lvxDomainStateReasonText": lambda d: _both(d.state, d.state_reason, reason_name),
        "lvxDomainSeverity": lambda d: None if d.state is None else severity(d.state),
        "lvxDomainVcpusCurrent": lambda d: d.vcpus_current,
        "lvxDomainVcpusMaximum": lambda d: d.vcpus_maximum,
        "lvxDomainMemoryCurrentKiB": lambda d: d.memory_current_kib,
        "lvxDomainMemoryMaximumKiB": lambda d: d.memory_maximum_kib,
        "lvxDomainCpuTimeTotalNs": lambda d: d.cpu_time_total_ns,
        "lvxDomainCpuTimeUserNs": lambda d: d.cpu_time_user_ns,
        "lvxDomainCpuTimeSystemNs": lambda d: d.cpu_time_system_ns,
        "lvxDomainCpuUtilVcpus": lambda d: d.cpu_util_vcpus,
        "lvxDomainCpuUtilHost": lambda d: d.cpu_util_host,
        "lvxDomainBalloonActualKiB": lambda d: d.balloon_actual_kib,
        "lvxDomainMemUnusedKiB": lambda d: d.mem_unused_kib,
        "lvxDomainMemUsableKiB": lambda d: d.mem_usable_kib,
        "lvxDomainMemAvailableKiB": lambda d: d.mem_available_kib,
        "lvxDomainMemRssKiB": lambda d: d.mem_rss_kib,
        "lvxDomainMemDiskCachesKiB": lambda d: d.mem_disk_caches_kib,
        "lvxDomainMemUsedKiB": lambda d: d.mem_used_kib,
        "lvxDomainSwapInKiB": lambda d: d.swap_in_kib,
        "lvxDomainSwapOutKiB": lambda d: d.swap_out_kib,
        "lvxDomainMajorFaults": lambda d: d.major_faults,
        "lvxDomainMinorFaults": lambda d: d.minor_faults,
        "lvxDomainReader": lambda d: d.reader,
        "lvxDomainPartitionTag": lambda d: d.partition_tag,
        "lvxDomainPollStatus": lambda d: d.poll_status,
        "lvxDomainDataAgeSeconds": lambda d: d.data_age_s,
        "lvxDomainDiscontinuityTime": lambda d: d.discontinuity_time,
    }),
    TableSpec("lvxVcpuEntry", lambda d: d.vcpus, lambda i, v: (i, v.number), {
        "lvxVcpuState": lambda v: v.state,
        "lvxVcpuTimeNs": lambda v: v.time_ns,
        "lvxVcpuWaitNs": lambda v: v.wait_ns,
        "lvxVcpuPhysicalCpu": lambda v: v.physical_cpu,
        "lvxVcpuDelayNs": lambda v: v.delay_ns,
    }),
    TableSpec("lvxVcpuPinEntry", _pins, lambda i, p: (i, p[0], p[1]), {
        "lvxPinAffinity": lambda p: p[2],
    }),
    TableSpec("lvxDiskEntry", lambda d: d.disks, lambda i, k: (i, k.target), {
        "lvxDiskSource": lambda k: k.source,
        "lvxDiskBus": lambda k: k.bus,
        "lvxDiskReadRequests": lambda k: k.read_requests,
        "lvxDiskReadBytes": lambda k: k.read_bytes,
        "lvxDiskReadTimeNs": lambda k: k.read_time_ns,
        "lvxDiskWriteRequests": lambda k: k.write_requests,
        "lvxDiskWriteBytes": lambda k: k.write_bytes,
        "lvxDiskWriteTimeNs": lambda k: k.write_time_ns,
        "lvxDiskFlushRequests": lambda k: k.flush_requests,
        "lvxDiskFlushTimeNs": lambda k: k.flush_time_ns,
        "lvxDiskCapacityBytes": lambda k: k.capacity_bytes,
        "lvxDiskAllocationBytes": lambda k: k.allocation_bytes,
        "lvxDiskPhysicalBytes": lambda k: k.physical_bytes,
        "lvxDiskIoTuneTotalBytesSec": lambda k: k.iotune_total_bytes_sec,
        "lvxDiskIoTuneReadBytesSec": lambda k: k.iotune_read_bytes_sec,
        "lvxDiskIoTuneWriteBytesSec": lambda k: k.iotune_write_bytes_sec,
        "lvxDiskIoTuneTotalIops": lambda k: k.iotune_total_iops,
        "lvxDiskIoTuneReadIops": lambda k: k.iotune_read_iops,
        "lvxDiskIoTuneWriteIops": lambda k: k.iotune_write_iops,
    }),
    TableSpec("lvxDiskErrorEntry", lambda d: d.disk_errors, lambda i, e: (i, e.target), {
        "lvxDiskErrorCode": lambda e: e.code,
    }),
    TableSpec("lvxInterfaceEntry", lambda d: d.interfaces, lambda i, nic: (i, nic.target), {
        "lvxIfMac": lambda i: i.mac,
        "lvxIfSource": lambda i: i.source,
        "lvxIfRxBytes": lambda i: i.rx_bytes,
        "lvxIfRxPackets": lambda i: i.rx_packets,
        "lvxIfRxErrors": lambda i: i.rx_errors,
        "lvxIfRxDrops": lambda i: i.rx_drops,
        "lvxIfTxBytes": lambda i: i.tx_bytes,
        "lvxIfTxPackets": lambda i: i.tx_packets,
        "lvxIfTxErrors": lambda i: i.tx_errors,
        "lvxIfTxDrops": lambda i: i.tx_drops,
    }),
    TableSpec("lvxJobEntry", lambda d: d.jobs, lambda i, j: (i, j.slot), {
        "lvxJobType": lambda j: j.type,
        "lvxJobOperation": lambda j: j.operation,
        "lvxJobTimeElapsedMs": lambda j: j.time_elapsed_ms,
        "lvxJobTimeRemainingMs": lambda j: j.time_remaining_ms,
        "lvxJobDowntimeMs": lambda j: j.downtime_ms,
        "lvxJobSetupTimeMs": lambda j: j.setup_time_ms,
        "lvxJobDataTotalBytes": lambda j: j.data_total,
        "lvxJobDataProcessedBytes": lambda j: j.data_processed,
        "lvxJobDataRemainingBytes": lambda j: j.data_remaining,
        "lvxJobMemoryTotalBytes": lambda j: j.memory_total,
        "lvxJobMemoryProcessedBytes": lambda j: j.memory_processed,
        "lvxJobMemoryRemainingBytes": lambda j: j.memory_remaining,
        "lvxJobMemoryBytesPerSecond": lambda j: j.memory_bps,
        "lvxJobMemoryDirtyRatePages": lambda j: j.memory_dirty_rate,
        "lvxJobMemoryIteration": lambda j: j.memory_iteration,
        "lvxJobDiskTotalBytes": lambda j: j.disk_total,
        "lvxJobDiskProcessedBytes": lambda j: j.disk_processed,
        "lvxJobDiskRemainingBytes": lambda j: j.disk_remaining,
        "lvxJobDiskBytesPerSecond": lambda j: j.disk_bps,
        "lvxJobCompressionBytes": lambda j: j.compression_bytes,
        "lvxJobCompressionPages": lambda j: j.compression_pages,
        "lvxJobCompressionCacheMisses": lambda j: j.compression_cache_misses,
        "lvxJobCompressionOverflow": lambda j: j.compression_overflow,
        "lvxJobAutoConvergeThrottle": lambda j: j.auto_converge_throttle,
        "lvxJobErrorMessage": lambda j: j.error_message,
    }),
    TableSpec("lvxPerfEntry", lambda d: d.perf, lambda i, e: (i, _perf_event(e.name)), {
        "lvxPerfEventName": lambda e: e.name,
        "lvxPerfEnabled": lambda e: e.enabled,
        "lvxPerfValue": lambda e: e.value,
    }),
    TableSpec("lvxFsEntry", _filesystems, lambda i, f: (i, f[0]), {
        "lvxFsMountPoint": lambda f: f[1].mount_point,
        "lvxFsDevice": lambda f: f[1].device,
        "lvxFsType": lambda f: f[1].fs_type,
        "lvxFsDiskTargets": lambda f: ",".join(f[1].disk_targets) if f[1].disk_targets else None,
        "lvxFsTotalBytes": lambda f: f[1].total_bytes,
        "lvxFsUsedBytes": lambda f: f[1].used_bytes,
    }),
    TableSpec("lvxGuestEntry", lambda d: () if d.guest is None else (d.guest,),
              lambda i, _: (i,), {
        "lvxGuestAgentStatus": lambda g: g.status,
        "lvxGuestHostname": lambda g: g.hostname,
        "lvxGuestOsId": lambda g: g.os_id,
        "lvxGuestOsName": lambda g: g.os_name,
        "lvxGuestOsVersion": lambda g: g.os_version,
        "lvxGuestKernelRelease": lambda g: g.kernel_release,
        "lvxGuestTimezone": lambda g: g.timezone,
        "lvxGuestTimezoneOffset": lambda g: g.timezone_offset_s,
        "lvxGuestUsers": lambda g: g.users,
        "lvxGuestClockOffsetMs": lambda g: g.clock_offset_ms,
        "lvxGuestDataAgeSeconds": _guest_age,
        "lvxGuestLastError": lambda g: "" if g.status == "responding" else g.error or "",
    }),
    TableSpec("lvxGuestAddressEntry",
              lambda d: enumerate(d.guest.addresses, 1) if d.guest is not None else (),
              lambda i, a: (i, a[0]), {
        "lvxGuestAddrInterface": lambda a: a[1].interface,
        "lvxGuestAddrMac": lambda a: a[1].mac,
        "lvxGuestAddrFamily": lambda a: a[1].family,
        "lvxGuestAddrAddress": lambda a: a[1].address,
        "lvxGuestAddrPrefix": lambda a: a[1].prefix,
    }),
    TableSpec("lvxMetadataEntry", lambda d: d.metadata, lambda i, m: (i, m[0]), {
        "lvxMetaValue": lambda m: m[1],
    }),
    TableSpec("lvxAlarmEntry", lambda d: d.alarms, lambda i, a: (i, metric_number(a.metric)), {
        "lvxAlarmMetricName": lambda a: a.metric,
        "lvxAlarmDomainName": lambda a: a.domain,
        "lvxAlarmValue": lambda a: a.value,
        "lvxAlarmThreshold": lambda a: a.threshold,
        "lvxAlarmSeverity": lambda a: a.severity,
        "lvxAlarmSince": lambda a: a.since,
    }),
)

# lvxDomainTable gauges a [thresholds] entry can watch (tests check each against the MIB).
THRESHOLD_METRICS = GAUGE_METRICS + LATER_GAUGES

HOST_TABLES = (
    TableSpec("lvxPoolEntry", lambda s: s.host.pools, lambda _, p: (p.name,), {
        "lvxPoolUuid": lambda p: p.uuid,
        "lvxPoolState": lambda p: None if p.state is None else p.state + 1,
        "lvxPoolCapacityBytes": lambda p: p.capacity_bytes,
        "lvxPoolAllocationBytes": lambda p: p.allocation_bytes,
        "lvxPoolAvailableBytes": lambda p: p.available_bytes,
    }),
)

LIBVIRT_EXT_MIB = MibSpec(shipped_mib, SCALARS, AGENT_SCALARS, TABLES, "lvxDomainIndex",
                          HOST_TABLES)
