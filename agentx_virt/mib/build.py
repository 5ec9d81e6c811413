"""Snapshot → OID table: a pure function.

Each table is a ``TableSpec``: which rows a domain has, the row's index values,
and one getter per MIB column, by object name.  OIDs, wire types, enumeration
numbers, ranges and sizes all come from the compiled MIB; Python holds names
only.  A getter returning ``None`` leaves the object absent.  A value the MIB's
syntax does not allow is left out and reported in ``BuiltTable.rejected``, so
one odd domain never costs the others their rows.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Callable, Optional

from agentx_virt.libvirt_names import reason_name, severity
from agentx_virt.mib.convert import Converter, Reject, converter
from agentx_virt.mib.model import Mib, MibObject, shipped_mib
from agentx_virt.oid import OID, format_oid
from agentx_virt.snapshot import DomainStats, GuestFilesystem, Snapshot, uuid_key
from agentx_virt.snmp.table import Block, OidTable, Repeated, Stored, served

Getter = Callable[[Any], object]

@dataclass(frozen=True)
class TableSpec:
    """How one MIB table is filled from a domain."""

    entry: str                                            # the row object, e.g. lvxDiskEntry
    rows: Callable[[DomainStats], Iterable[Any]]
    index: Callable[[int, Any], tuple[object, ...]]   # (lvxDomainIndex, row) -> index
    columns: Mapping[str, Getter]


@dataclass(frozen=True)
class Rejected:
    """A value left out of the table, and why (bad input from libvirt or a bug)."""

    object: str
    instance: str
    value: str
    reason: str

    def __str__(self) -> str:
        return f"{self.object}{self.instance} = {self.value}: {self.reason}"


@dataclass(frozen=True)
class BuiltTable:
    table: OidTable
    rejected: tuple[Rejected, ...]


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
    "lvxTablesLastChange": lambda s: s.poll.tables_last_change,
    "lvxLibvirtLastError": lambda s: "" if s.host.libvirt_connected else s.host.last_error or "",
}


@dataclass(frozen=True)
class AgentStatus:
    """The agent's own health, which no Snapshot of libvirt carries."""

    index_state_error: Optional[str] = None     # why the last state file write failed
    traps_sent: Optional[int] = None            # acknowledged by the master
    traps_dropped: Optional[int] = None         # dropped, refused or never built


AGENT_SCALARS: Mapping[str, Callable[[AgentStatus], object]] = {
    "lvxTrapsSent": lambda a: a.traps_sent,
    "lvxTrapsDropped": lambda a: a.traps_dropped,
    "lvxIndexStateError": lambda a: a.index_state_error or "",
}


def _one(domain: DomainStats) -> Iterable[DomainStats]:
    return (domain,)


def _pins(domain: DomainStats) -> Iterable[tuple[int, int, bool]]:
    return ((vcpu, cpu, flag) for vcpu, cpus in enumerate(domain.pinning)
            for cpu, flag in enumerate(cpus))


def _filesystems(domain: DomainStats) -> Iterable[tuple[int, GuestFilesystem]]:
    return enumerate(sorted(domain.filesystems, key=lambda fs: fs.mount_point), 1)


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
    }),
)


def _index_subids(obj: MibObject, convert: Converter, value: object, implied: bool) -> OID:
    """The sub-identifiers an index value adds to the instance (RFC 2578 §7.7)."""
    wire = served(convert(value))
    if isinstance(wire, bytes):
        syntax = obj.syntax
        fixed = syntax is not None and len(syntax.sizes) == 1 and \
            syntax.sizes[0][0] == syntax.sizes[0][1]
        return tuple(wire) if implied or fixed else (len(wire), *wire)
    if isinstance(wire, int):
        return (wire,)
    raise Reject(f"{obj.name} cannot be an index")


@dataclass
class _MibParts:
    """What every build of one Mib needs and no snapshot changes: made at its first build."""

    converters: dict[str, Converter]
    served: list[OID]        # every readable scalar and column, in OID order


_PARTS: weakref.WeakKeyDictionary[Mib, _MibParts] = weakref.WeakKeyDictionary()


def _parts(mib: Mib) -> _MibParts:
    parts = _PARTS.get(mib)
    if parts is None:
        parts = _PARTS[mib] = _MibParts({}, [obj.oid for obj in mib.served()])
    return parts


class _Builder:
    """Collects one block per scalar and per column, each already in instance order."""

    def __init__(self, mib: Mib) -> None:
        self.mib = mib
        self.parts = _parts(mib)
        self.blocks: list[Block] = []
        self.rejected: list[Rejected] = []

    def converter(self, obj: MibObject) -> Converter:
        convert = self.parts.converters.get(obj.name)
        if convert is None:
            convert = self.parts.converters[obj.name] = converter(obj)
        return convert

    def reject(self, name: str, instance: OID, value: object, reason: str) -> None:
        self.rejected.append(Rejected(name, format_oid(instance), repr(value), reason))

    def scalar(self, obj: MibObject, value: object) -> None:
        if value is None:
            return
        try:
            wire = self.converter(obj)(value)
        except Reject as exc:
            self.reject(obj.name, (0,), value, str(exc))
            return
        assert obj.syntax is not None
        self.blocks.append(Block(obj.oid, [(0,)], [obj.syntax.base], [wire]))

    def _rows(self, spec: TableSpec, domains: Iterable[tuple[int, DomainStats]]
              ) -> list[tuple[OID, Any]]:
        """(instance, row) for every row of every domain, in instance order; a row whose
        index does not convert, or repeats an earlier row's, is left out and reported."""
        entry = self.mib.object(spec.entry)
        index_objects = [(obj, self.converter(obj), implied)
                         for obj, implied in ((self.mib.object(n), i) for n, i in entry.indices)]
        rows: list[tuple[OID, Any]] = []
        for domain_index, domain in domains:
            for row in spec.rows(domain):
                values = spec.index(domain_index, row)
                try:
                    instance: OID = ()
                    for (index_obj, convert, implied), value in zip(index_objects, values):
                        instance += _index_subids(index_obj, convert, value, implied)
                except Reject as exc:
                    self.reject(spec.entry, (), values, f"bad index: {exc}")
                    continue
                rows.append((instance, row))
        rows.sort(key=_first)                     # stable: of equal instances the first stays
        unique = rows[:1]
        for instance, row in rows[1:]:
            if instance == unique[-1][0]:
                self.reject(spec.entry, instance, row, "duplicate row; the first one is kept")
            else:
                unique.append((instance, row))
        return unique

    def table(self, spec: TableSpec, domains: Iterable[tuple[int, DomainStats]]) -> None:
        rows = self._rows(spec, domains)
        every_row = [instance for instance, _ in rows]
        for name, getter in spec.columns.items():
            obj = self.mib.object(name)
            assert obj.syntax is not None
            convert = self.converter(obj)
            # A column with a value in every row shares the table's instance list; one
            # that skips a row gets its own list from the first skip on.
            instances: Optional[list[OID]] = None
            values: list[Stored] = []
            for k, (instance, row) in enumerate(rows):
                value = getter(row)
                wire: Stored = None
                if value is not None:
                    try:
                        wire = convert(value)
                    except Reject as exc:
                        self.reject(name, instance, value, str(exc))
                        value = None
                if value is None:
                    if instances is None:          # rows before k all had values
                        instances = every_row[:k]
                    continue
                if instances is not None:
                    instances.append(instance)
                values.append(wire)
            self.blocks.append(Block(obj.oid, every_row if instances is None else instances,
                                     Repeated(obj.syntax.base, len(values)), values))


def _first(pair: tuple[OID, Any]) -> OID:
    return pair[0]


def build_table(snapshot: Snapshot, indexes: Mapping[str, int], mib: Optional[Mib] = None,
                status: AgentStatus = AgentStatus()) -> BuiltTable:
    """The OID table to serve for ``snapshot`` and the agent's ``status``, and the values
    that had to be left out.

    ``indexes`` maps each domain's UUID (lower case) to its lvxDomainIndex: the SNMP
    side's, which the Snapshot does not carry; a domain without one is left out and
    reported.
    """
    mib = mib or shipped_mib()
    builder = _Builder(mib)
    domains = []
    for domain in snapshot.domains:
        domain_index = indexes.get(uuid_key(domain.uuid))
        if domain_index is None:
            builder.reject("lvxDomainEntry", (), domain.uuid, "no lvxDomainIndex for it")
        else:
            domains.append((domain_index, domain))
    for name, getter in SCALARS.items():
        builder.scalar(mib.object(name), getter(snapshot))
    for name, status_getter in AGENT_SCALARS.items():
        builder.scalar(mib.object(name), status_getter(status))
    for spec in TABLES:
        builder.table(spec, domains)
    blocks = sorted(builder.blocks, key=lambda block: block.prefix)
    table = OidTable.from_blocks(blocks, objects=builder.parts.served)
    return BuiltTable(table, tuple(builder.rejected))
