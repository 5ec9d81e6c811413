"""One poll's worth of what libvirt reported, as frozen dataclasses.

The collector fills a ``Snapshot`` from libvirt; ``agentx_virt.mib.build``
turns it into the served OID table.  ``None`` always means "libvirt did not
report this", which the table shows as an absent object, never as zero.
Numbers keep libvirt's units and codes (states, reasons, job types are
libvirt's enum values; memory in KiB; times in nanoseconds unless named).
A domain is identified by its UUID; its lvxDomainIndex is the SNMP side's
(``domain_index.DomainIndexRegistry``), not part of the snapshot.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from agentx_virt.model.alarm import ActiveAlarm
from agentx_virt.model.guest import GuestFilesystem, GuestInfo
from agentx_virt.model.record import slotted


class StatGroup(str, enum.Enum):
    """A statistics group ``[poll] stats`` can name: collectd's selectors and ExtraStats."""

    CPU = "cpu"
    MEMORY = "memory"
    VCPU = "vcpu"
    DISK = "disk"
    INTERFACE = "interface"
    CPU_UTIL = "cpu_util"
    DISK_ERR = "disk_err"
    DOMAIN_STATE = "domain_state"
    FS_INFO = "fs_info"
    GUEST_AGENT = "guest_agent"
    DISK_IOTUNE = "disk_iotune"
    HOST = "host"
    STORAGE_POOLS = "storage_pools"
    JOB_STATS_BACKGROUND = "job_stats_background"
    JOB_STATS_COMPLETED = "job_stats_completed"
    PERF = "perf"
    VCPUPIN = "vcpupin"


class PollStatus(str, enum.Enum):
    """How the last poll of a domain went (the MIB's lvxDomainPollStatus labels)."""

    OK = "ok"                   # fresh values
    TIMED_OUT = "timedOut"      # one of its calls is stuck past the deadline
    ERROR = "error"             # libvirt refused or went away
    NOT_POLLED = "notPolled"    # no poll has reached it yet
    SKIPPED = "skipped"         # the cycle ended before a worker reached it

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


def uuid_key(uuid: str) -> str:
    """The lower-case form of a UUID, as the same string object when it already is one
    (libvirt's are): tables keyed by UUID then share the string instead of each
    holding a copy per domain."""
    lowered = uuid.lower()
    return uuid if lowered == uuid else lowered


@slotted
@dataclass(frozen=True)
class HostInfo:
    """The libvirt connection and the host it runs on."""

    libvirt_connected: bool
    uri: str
    hypervisor_type: Optional[str] = None
    hypervisor_version: Optional[str] = None   # "major.minor.release"
    libvirt_version: Optional[str] = None
    host_cpus: Optional[int] = None
    last_error: Optional[str] = None           # why libvirt is unreachable, while it is
    boot_time: Optional[datetime] = None       # when the host booted, if libvirt is local
    # With the host and storage_pools groups (collector/host.py):
    cpu_util: Optional[int] = None             # hundredths of a percent of all CPUs
    mem_total_kib: Optional[int] = None
    mem_free_kib: Optional[int] = None
    mem_buffers_kib: Optional[int] = None
    mem_cached_kib: Optional[int] = None
    pools: tuple[StoragePool, ...] = ()


@slotted
@dataclass(frozen=True)
class StoragePool:
    name: str
    uuid: str
    state: Optional[int] = None               # virStoragePoolState
    capacity_bytes: Optional[int] = None
    allocation_bytes: Optional[int] = None
    available_bytes: Optional[int] = None


@slotted
@dataclass(frozen=True)
class PollInfo:
    """How the poller is doing."""

    interval_s: int
    last_poll_start: Optional[datetime] = None   # timezone-aware
    last_poll_duration_ms: Optional[int] = None
    timed_out_domains: int = 0
    tables_last_change: Optional[datetime] = None


@slotted
@dataclass(frozen=True)
class VcpuStats:
    number: int
    state: Optional[int] = None          # virVcpuState
    time_ns: Optional[int] = None
    wait_ns: Optional[int] = None        # vcpu.N.wait: waits outside the guest (I/O)
    physical_cpu: Optional[int] = None
    delay_ns: Optional[int] = None       # vcpu.N.delay: waited for a host CPU (steal)


@slotted
@dataclass(frozen=True)
class DiskStats:
    target: str
    source: Optional[str] = None
    bus: Optional[str] = None
    read_requests: Optional[int] = None
    read_bytes: Optional[int] = None
    read_time_ns: Optional[int] = None
    write_requests: Optional[int] = None
    write_bytes: Optional[int] = None
    write_time_ns: Optional[int] = None
    flush_requests: Optional[int] = None
    flush_time_ns: Optional[int] = None
    capacity_bytes: Optional[int] = None
    allocation_bytes: Optional[int] = None
    physical_bytes: Optional[int] = None
    device: Optional[str] = None         # the XML's disk device: disk, cdrom, floppy, lun
    kind: Optional[str] = None           # the XML's disk type: file, block, network, ...
    format: Optional[str] = None         # the driver's image format: qcow2, raw, ...
    readonly: Optional[bool] = None
    # I/O throttle limits (blockIoTune; 0 no limit), with the disk_iotune group
    iotune_total_bytes_sec: Optional[int] = None
    iotune_read_bytes_sec: Optional[int] = None
    iotune_write_bytes_sec: Optional[int] = None
    iotune_total_iops: Optional[int] = None
    iotune_read_iops: Optional[int] = None
    iotune_write_iops: Optional[int] = None


@slotted
@dataclass(frozen=True)
class DiskError:
    target: str
    code: int                            # virDomainDiskErrorCode, never NONE


@slotted
@dataclass(frozen=True)
class InterfaceStats:
    target: str
    mac: Optional[str] = None            # "52:54:00:12:34:56"
    source: Optional[str] = None
    rx_bytes: Optional[int] = None
    rx_packets: Optional[int] = None
    rx_errors: Optional[int] = None
    rx_drops: Optional[int] = None
    tx_bytes: Optional[int] = None
    tx_packets: Optional[int] = None
    tx_errors: Optional[int] = None
    tx_drops: Optional[int] = None
    host_ifindex: Optional[int] = None   # the host's ifIndex of the target (tap), if local
    parent_ifindex: Optional[int] = None  # ... of its source bridge or device, if local
    model: Optional[str] = None          # the XML's NIC model: virtio, e1000, ...


@slotted
@dataclass(frozen=True)
class JobStats:
    """What ``jobStats()`` returned, for the current job or the last completed one."""

    slot: str                            # "current" or "completed"
    type: Optional[int] = None           # virDomainJobType
    operation: Optional[int] = None      # virDomainJobOperation
    time_elapsed_ms: Optional[int] = None
    time_remaining_ms: Optional[int] = None
    downtime_ms: Optional[int] = None
    setup_time_ms: Optional[int] = None
    data_total: Optional[int] = None
    data_processed: Optional[int] = None
    data_remaining: Optional[int] = None
    memory_total: Optional[int] = None
    memory_processed: Optional[int] = None
    memory_remaining: Optional[int] = None
    memory_bps: Optional[int] = None
    memory_dirty_rate: Optional[int] = None
    memory_iteration: Optional[int] = None
    disk_total: Optional[int] = None
    disk_processed: Optional[int] = None
    disk_remaining: Optional[int] = None
    disk_bps: Optional[int] = None
    compression_bytes: Optional[int] = None
    compression_pages: Optional[int] = None
    compression_cache_misses: Optional[int] = None
    compression_overflow: Optional[int] = None
    auto_converge_throttle: Optional[int] = None
    error_message: Optional[str] = None


@slotted
@dataclass(frozen=True)
class PerfEvent:
    name: str                            # libvirt's name, e.g. "cpu_cycles"
    enabled: Optional[bool] = None
    value: Optional[int] = None


@slotted
@dataclass(frozen=True)
class DomainStats:
    """One domain: identity, state, domain-level statistics and its devices."""

    uuid: str                            # canonical text form
    name: str
    state: Optional[int] = None          # virDomainState
    state_reason: Optional[int] = None   # the reason enum of that state
    vcpus_current: Optional[int] = None
    vcpus_maximum: Optional[int] = None
    memory_current_kib: Optional[int] = None
    memory_maximum_kib: Optional[int] = None
    cpu_time_total_ns: Optional[int] = None
    cpu_time_user_ns: Optional[int] = None
    cpu_time_system_ns: Optional[int] = None
    cpu_util_vcpus: Optional[int] = None     # hundredths of a percent
    cpu_util_host: Optional[int] = None      # hundredths of a percent
    balloon_actual_kib: Optional[int] = None
    mem_unused_kib: Optional[int] = None
    mem_usable_kib: Optional[int] = None
    mem_available_kib: Optional[int] = None
    mem_rss_kib: Optional[int] = None
    mem_disk_caches_kib: Optional[int] = None
    mem_used_kib: Optional[int] = None       # available - unused - disk_caches
    swap_in_kib: Optional[int] = None
    swap_out_kib: Optional[int] = None
    major_faults: Optional[int] = None
    minor_faults: Optional[int] = None
    reader: Optional[int] = None
    partition_tag: Optional[str] = None
    poll_status: PollStatus = PollStatus.NOT_POLLED
    data_age_s: Optional[int] = None
    discontinuity_time: Optional[datetime] = None
    sampled_at: Optional[datetime] = None    # the start of the poll these values are from
    started_at: Optional[datetime] = None    # when the domain last started, if known
    vcpus: tuple[VcpuStats, ...] = ()
    pinning: tuple[tuple[bool, ...], ...] = ()   # per vCPU: affinity per host CPU
    disks: tuple[DiskStats, ...] = ()
    disk_errors: tuple[DiskError, ...] = ()
    interfaces: tuple[InterfaceStats, ...] = ()
    jobs: tuple[JobStats, ...] = ()
    perf: tuple[PerfEvent, ...] = ()
    filesystems: tuple[GuestFilesystem, ...] = ()
    guest: Optional[GuestInfo] = None    # the guest agent's, with guest_agent or fs_info
    # The thresholds crossed now: merged in by the SNMP sink, never by the collector.
    alarms: tuple[ActiveAlarm, ...] = ()
    # From the XML and the domain lists: the guest OS libosinfo names in the metadata
    # (e.g. http://ubuntu.com/ubuntu/22.04), and whether libvirt keeps the domain's
    # configuration and starts it with the host.
    os_id: Optional[str] = None
    metadata: tuple[tuple[str, str], ...] = ()    # (key, value): nova's and [[metadata]]
    persistent: Optional[bool] = None
    autostart: Optional[bool] = None


@slotted
@dataclass(frozen=True)
class Snapshot:
    """Everything the agent serves, as of one poll."""

    host: HostInfo
    poll: PollInfo
    domains: tuple[DomainStats, ...] = ()
