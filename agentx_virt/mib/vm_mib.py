"""The RFC 7666 VM-MIB spec (mib-2 236), read-only, from the same Snapshot.

Mapping (README "RFC 7666 VM-MIB" has the table):

* ``vmIndex``: the domain's stable index, the same as lvxDomainIndex;
* ``vmAdminState``: running for running, blocked and crashed-but-kept domains,
  paused for paused, suspended for pmsuspended, shutdown for shutting-down and
  shut-off ones;
* ``vmOperState``: running (running, blocked), paused (paused, but migrating while
  paused for a migration and preparing while starting up), shuttingdown, shutdown,
  crashed, suspended (pmsuspended), unknown (nostate);
* memory in MiB (``vmMemUnit`` = 1048576), CPU times in microseconds;
* ``vmCpuAffinityTable`` from the pinning (the ``vcpupin`` statistics group):
  ``vmCpuPhysIndex`` is 196608 + the host CPU number, net-snmp's ``hrDeviceIndex`` of
  that CPU in hrProcessorTable;
* ``vmStorageTable``: one row per disk of the domain's XML, numbered from 1, sizes in
  MiB (-1 when libvirt gave none), latency as total microseconds;
* ``vmNetworkTable``: one row per NIC, numbered from 1; ``vmNetworkIfIndex`` is the
  host's ifIndex of the NIC's target (tap) when libvirt is local, else 0.

* ``vmOSType``: the guest OS libosinfo names in the domain's metadata, else "";
  ``vmAutoStart`` and ``vmPersistent`` from libvirt's domain lists;
* storage: source type from the XML's disk type and format (raw, sparse for qcow2
  and other growing formats, block, network, other), access from ``<readonly/>``,
  media type from the disk device (hardDisk, opticalDisk, floppyDisk);
  ``vmNetworkModel`` the NIC model.

* ``vmHvUpTime``: since the host booted (KVM is part of its kernel), as of the last
  poll; ``vmTableLastChange`` that uptime when the poller last found a domain added or
  removed (its first poll counts); ``vmUpTime`` since the domain's QEMU process
  started, else since the poll that found it running after it was down, as of the
  domain's last good poll (0 while it is down).  The host's boot and the QEMU
  processes are known only when libvirt runs on this host: with a remote libvirt,
  or a domain already running when the agent first saw it that has no QEMU process
  here, these objects are not served (no value would be true).
* ``vmNetworkParent``: the host's ifIndex of the NIC's source bridge (bridge and
  network NICs) or device (direct ones), when libvirt is local, else 0.

Served as the RFC's "unknown" or none: ``vmMinCpuNumber``/``vmMinMem`` -1,
``vmHvObjectID`` 0.0.  The per-VM notifications are sent when ``[mibs] notify``
names VM-MIB, the bulk ones (``vmAffectedVMs``) when it names VM-MIB-BULK; the two
``*NotificationsEnabled`` objects read which.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime
from typing import Optional

from agentx_virt.mib.model import Mib, load_compiled
from agentx_virt.mib.spec import MibSpec, TableSpec
from agentx_virt.model.libvirt_names import ACTIVE_STATES
from agentx_virt.model.snapshot import DiskStats, DomainStats, InterfaceStats

MODULE = "VM-MIB"
TC_MODULES = ("SNMPv2-TC", "SNMP-FRAMEWORK-MIB", "UUID-TC-MIB", "IF-MIB",
              "IANA-STORAGE-MEDIA-TYPE-MIB")
MIB_UNIT = 1048576               # vmMemUnit and vmStorageSizeUnit: MiB
HR_PROCESSOR_BASE = 3 << 16        # net-snmp: hrDeviceIndex of host CPU n is 196608 + n
_INT32_MAX = 2**31 - 1

# virDomainState → VirtualMachineAdminState / VirtualMachineOperState labels.
_ADMIN = {1: "running", 2: "running", 3: "paused", 4: "shutdown", 5: "shutdown",
          6: "running", 7: "suspended"}
_OPER = {0: "unknown", 1: "running", 2: "running", 3: "paused", 4: "shuttingdown",
         5: "shutdown", 6: "crashed", 7: "suspended"}
_PAUSED_MIGRATION, _PAUSED_STARTING_UP = 2, 11      # virDomainPausedReason


def admin_state(state: Optional[int]) -> Optional[str]:
    return None if state is None else _ADMIN.get(state)


def oper_state(state: Optional[int], reason: Optional[int] = None) -> Optional[str]:
    if state is None:
        return None
    if state == 3 and reason == _PAUSED_MIGRATION:
        return "migrating"
    if state == 3 and reason == _PAUSED_STARTING_UP:
        return "preparing"
    return _OPER.get(state, "other")


def _mib(amount: Optional[int], per: int) -> int:
    """``amount`` (KiB or bytes) in MiB, clamped to Integer32; -1 when unknown."""
    return -1 if amount is None else min(amount * per // MIB_UNIT, _INT32_MAX)


def _us(ns: Optional[int]) -> Optional[int]:
    return None if ns is None else ns // 1000


def ticks(since: Optional[datetime], until: Optional[datetime]) -> Optional[int]:
    """TimeTicks (centiseconds, modulo 2^32) from ``since`` to ``until``; None if either
    is unknown, 0 if ``until`` is earlier."""
    if since is None or until is None:
        return None
    return max(0, round((until - since).total_seconds() * 100)) % 2**32


def _up_time(d: DomainStats) -> Optional[int]:
    if d.state not in ACTIVE_STATES:
        return None if d.state is None else 0
    return ticks(d.started_at, d.sampled_at)


def _uuid(uuid: str) -> bytes:
    return bytes.fromhex(uuid.replace("-", ""))


def _mac(nic: InterfaceStats) -> Optional[bytes]:
    try:
        return bytes.fromhex(nic.mac.replace(":", "")) if nic.mac else None
    except ValueError:
        return None


_BY_KIND = {"block": "block", "network": "network", "dir": "other", "volume": "other"}
_MEDIA = {"disk": "hardDisk", "lun": "hardDisk", "cdrom": "opticalDisk",
          "floppy": "floppyDisk"}


def source_type(disk: DiskStats) -> str:
    """VirtualMachineStorageSourceType from the XML's disk type and image format: a file
    is raw or sparse (qcow2 and the other growing formats) by its format."""
    if disk.kind == "file":
        if disk.format == "raw":
            return "raw"
        return "sparse" if disk.format else "other"
    if disk.kind is not None:
        return _BY_KIND.get(disk.kind, "other")
    source = disk.source or ""          # no XML type (an older layout): the path's form
    if source.startswith("/dev/"):
        return "block"
    if "://" in source or (source and not source.startswith("/")):
        return "network"
    return "unknown"


def media_type(disk: DiskStats) -> str:
    """IANAStorageMediaType from the XML's disk device."""
    return "unknown" if disk.device is None else _MEDIA.get(disk.device, "other")


def _truth(value: Optional[bool], yes: str, no: str) -> str:
    return "unknown" if value is None else yes if value else no


def _pins(domain: DomainStats) -> Iterable[tuple[int, int, bool]]:
    return ((vcpu, cpu, flag) for vcpu, cpus in enumerate(domain.pinning)
            for cpu, flag in enumerate(cpus))


@functools.lru_cache(maxsize=1)
def load() -> Mib:
    """The compiled VM-MIB shipped with the package (loaded once)."""
    return load_compiled(module=MODULE, root="vmMIB", tc_modules=TC_MODULES)


_SCALARS = {
    "vmHvSoftware": lambda s: s.host.hypervisor_type or "",
    "vmHvVersion": lambda s: s.host.hypervisor_version or "",
    "vmHvObjectID": lambda s: (0, 0),
    "vmHvUpTime": lambda s: ticks(s.host.boot_time, s.poll.last_poll_start),
    "vmNumber": lambda s: len(s.domains),
    "vmTableLastChange": lambda s: ticks(s.host.boot_time, s.poll.tables_last_change),
}
_STATUS = {"vmPerVMNotificationsEnabled": lambda a: a.vm_notifications,
           "vmBulkNotificationsEnabled": lambda a: a.vm_bulk_notifications}

_VMS = TableSpec("vmEntry", lambda d: (d,), lambda i, _d: (i,), {
    "vmName": lambda d: d.name,
    "vmUUID": lambda d: _uuid(d.uuid),
    "vmOSType": lambda d: d.os_id or "",
    "vmAdminState": lambda d: admin_state(d.state),
    "vmOperState": lambda d: oper_state(d.state, d.state_reason),
    "vmAutoStart": lambda d: _truth(d.autostart, "enabled", "disabled"),
    "vmPersistent": lambda d: _truth(d.persistent, "persistent", "transient"),
    "vmCurCpuNumber": lambda d: d.vcpus_current,
    "vmMinCpuNumber": lambda d: -1,
    "vmMaxCpuNumber": lambda d: -1 if d.vcpus_maximum is None else d.vcpus_maximum,
    "vmMemUnit": lambda d: MIB_UNIT,
    "vmCurMem": lambda d: None if d.memory_current_kib is None
    else _mib(d.memory_current_kib, 1024),
    "vmMinMem": lambda d: -1,
    "vmMaxMem": lambda d: _mib(d.memory_maximum_kib, 1024),
    "vmUpTime": _up_time,
    "vmCpuTime": lambda d: _us(d.cpu_time_total_ns),
})

_CPUS = TableSpec("vmCpuEntry", lambda d: d.vcpus, lambda i, v: (i, v.number + 1), {
    "vmCpuCoreTime": lambda v: _us(v.time_ns),
})

_AFFINITY = TableSpec(
    "vmCpuAffinityEntry", _pins, lambda i, p: (i, p[0] + 1, HR_PROCESSOR_BASE + p[1]), {
        "vmCpuAffinity": lambda p: "enable" if p[2] else "disable",
    })

_DISKS = TableSpec("vmStorageEntry", lambda d: enumerate(d.disks, 1),
                   lambda i, k: (i, k[0]), {
    "vmStorageParent": lambda k: 0,
    "vmStorageSourceType": lambda k: source_type(k[1]),
    "vmStorageSourceTypeString": lambda k: "/".join(
        part for part in (k[1].kind, k[1].format) if part),
    "vmStorageResourceID": lambda k: k[1].source or "",
    "vmStorageAccess": lambda k: _truth(k[1].readonly, "readonly", "readwrite"),
    "vmStorageMediaType": lambda k: media_type(k[1]),
    "vmStorageMediaTypeString": lambda k: k[1].device or "",
    "vmStorageSizeUnit": lambda k: MIB_UNIT,
    "vmStorageDefinedSize": lambda k: _mib(k[1].capacity_bytes, 1),
    "vmStorageAllocatedSize": lambda k: _mib(k[1].allocation_bytes, 1),
    "vmStorageReadIOs": lambda k: k[1].read_requests,
    "vmStorageWriteIOs": lambda k: k[1].write_requests,
    "vmStorageReadOctets": lambda k: k[1].read_bytes,
    "vmStorageWriteOctets": lambda k: k[1].write_bytes,
    "vmStorageReadLatency": lambda k: _us(k[1].read_time_ns),
    "vmStorageWriteLatency": lambda k: _us(k[1].write_time_ns),
})

_NICS = TableSpec("vmNetworkEntry", lambda d: enumerate(d.interfaces, 1),
                  lambda i, n: (i, n[0]), {
    "vmNetworkIfIndex": lambda n: n[1].host_ifindex or 0,
    "vmNetworkParent": lambda n: n[1].parent_ifindex or 0,
    "vmNetworkModel": lambda n: n[1].model or "",
    "vmNetworkPhysAddress": lambda n: _mac(n[1]),
})

VM_MIB = MibSpec(load, _SCALARS, _STATUS, (_VMS, _CPUS, _AFFINITY, _DISKS, _NICS), "vmIndex")
