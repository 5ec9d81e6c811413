"""Snapshots built by hand for the MIB tests: one with every field set, one with the minimum."""

from __future__ import annotations

from datetime import datetime, timezone

from agentx_virt.mib.spec import AgentStatus
from agentx_virt.model.alarm import ActiveAlarm
from agentx_virt.model.guest import GuestAddress, GuestFilesystem, GuestInfo
from agentx_virt.model.snapshot import (
    DiskError,
    DiskStats,
    DomainStats,
    HostInfo,
    InterfaceStats,
    JobStats,
    PerfEvent,
    PollInfo,
    PollStatus,
    Snapshot,
    StoragePool,
    VcpuStats,
)

WHEN = datetime(2026, 11, 21, 20, 15, 30, 700000, tzinfo=timezone.utc)
UUID_A = "6695eb01-f6a4-8304-79aa-97f2502e193f"
UUID_B = "0e6ce3a6-9d8f-4bd4-a3b5-1c2a6d5e7f80"


# The SNMP side's lvxDomainIndex of the domains below (the Snapshot carries none), and
# the agent's own counters beside them.
INDEXES = {UUID_A: 7, UUID_B: 3}
ALARM = ActiveAlarm(UUID_A, "web-1", "nicRxBitsPerSecond", 6000000000, 5000000000, "failure",
                    WHEN, "agentx-virt.toml:9 [[threshold]] nicRxBitsPerSecond")
STATUS = AgentStatus(traps_sent=12, traps_dropped=1, config_loaded_at=WHEN, config_reloads=3,
                     config_reload_failures=1,
                     config_last_error="agentx-virt.toml:4: [poll] interval: must be a number",
                     alarms={UUID_A: (ALARM,)})


def full_domain(uuid: str = UUID_A, name: str = "web-1") -> DomainStats:
    """A running domain with a value in every field and one of every device."""
    return DomainStats(
        uuid=uuid, name=name, state=3, state_reason=5,
        vcpus_current=2, vcpus_maximum=4,
        memory_current_kib=2097152, memory_maximum_kib=4194304,
        cpu_time_total_ns=123456789012, cpu_time_user_ns=100000000000,
        cpu_time_system_ns=23456789012, cpu_util_vcpus=2550, cpu_util_host=1275,
        balloon_actual_kib=2097152, mem_unused_kib=1048576, mem_usable_kib=1572864,
        mem_available_kib=2000000, mem_rss_kib=2150000, swap_in_kib=10, swap_out_kib=20,
        major_faults=30, minor_faults=40000, reader=1, partition_tag="virt-1",
        poll_status=PollStatus.OK, data_age_s=3, discontinuity_time=WHEN,
        vcpus=(VcpuStats(0, 1, 5000000000, 1000, 2, 700), VcpuStats(1, 2, 4000000000, 2000, 3, 0)),
        pinning=((True, False, True, False), (False, True, False, True)),
        disks=(DiskStats("vda", "/var/lib/libvirt/images/web-1.qcow2", "virtio",
                         100, 409600, 5000000, 200, 819200, 6000000, 10, 700000,
                         21474836480, 1073741824, 1074003968,
                         iotune_total_bytes_sec=0, iotune_read_bytes_sec=10485760,
                         iotune_write_bytes_sec=5242880, iotune_total_iops=0,
                         iotune_read_iops=500, iotune_write_iops=250),
               DiskStats("sdb", "", "sata", read_requests=0)),
        disk_errors=(DiskError("vda", 2),),
        interfaces=(InterfaceStats("tap0", "52:54:00:12:34:56", "br0",
                                   1000, 10, 1, 2, 3000, 30, 3, 4),),
        jobs=(JobStats("current", 2, 5, 1500, 0, 50, 10, 3000, 1000, 2000, 2500, 800,
                       1700, 134217728, 300, 2, 500, 200, 300, 1000000, 4096, 1, 2, 3,
                       20, None),
              JobStats("completed", 4, 8, error_message="disk full")),
        perf=(PerfEvent("task_clock", True, 987654321), PerfEvent("cpu_cycles", False)),
        filesystems=(GuestFilesystem("/var", "/dev/vda2", "xfs", ("vda",), 10737418240,
                                     2147483648),
                     GuestFilesystem("/", "/dev/vda1", "ext4", ("vda", "sdb"))),
        alarms=(ALARM,),
        metadata=(("nova.name", "web-1"), ("nova.project", "demo")),
        mem_disk_caches_kib=8700, mem_used_kib=1900000 - 1048576 - 8700,
        guest=GuestInfo("unresponsive", WHEN, datetime(2026, 11, 21, 20, 14, 30, 0,
                                                       tzinfo=timezone.utc),
                        "guestInfo of web-1: guest agent is not responding",
                        "web-1.example", "debian", "Debian GNU/Linux", "12 (bookworm)",
                        "6.1.0-57-cloud-amd64", "UTC", 0, 2, -15,
                        (GuestAddress("eth0", "52:54:00:12:34:56", "ipv4", "192.0.2.10", 24),
                         GuestAddress("eth0", "52:54:00:12:34:56", "ipv6", "2001:db8::10",
                                      64))),
    )


def full_snapshot() -> Snapshot:
    return Snapshot(
        host=HostInfo(True, "qemu:///system", "QEMU", "7.2.0", "9.0.0", 8, cpu_util=1234,
                      mem_total_kib=65842176, mem_free_kib=40000000, mem_buffers_kib=300000,
                      mem_cached_kib=9000000,
                      pools=(StoragePool("default", "1b3c5e7f-0000-4000-8000-000000000001", 2,
                                         107374182400, 53687091200, 53687091200),)),
        poll=PollInfo(10, WHEN, 42, 1, WHEN),
        domains=(full_domain(), DomainStats(uuid=UUID_B, name="db-2", state=5,
                                            state_reason=2, poll_status=PollStatus.OK)),
    )


def bare_snapshot() -> Snapshot:
    """libvirt unreachable, one domain known by name only (lvxDomainIndex 1)."""
    return Snapshot(
        host=HostInfo(False, "qemu:///system"),
        poll=PollInfo(10),
        domains=(DomainStats(uuid=UUID_A, name="web-1"),),
    )


BARE_INDEXES = {UUID_A: 1}
