"""A bulk statistics record (``virConnectGetAllDomainStats``) → the typed parts it holds.

Pure: no calls, no clock. The group functions (``groups.py``) take what a record
has from here and ask the per-call APIs only for what it lacks. A field the record
does not carry, or carries with a negative or non-numeric value, is absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from agentx_virt.model.snapshot import VcpuStats

_INDEXED_GROUPS = frozenset({"vcpu", "block", "net"})

_MEMORY_FIELDS = {
    "actual": "balloon_actual_kib", "unused": "mem_unused_kib", "usable": "mem_usable_kib",
    "available": "mem_available_kib", "rss": "mem_rss_kib", "swap_in": "swap_in_kib",
    "swap_out": "swap_out_kib", "major_fault": "major_faults", "minor_fault": "minor_faults",
    "disk_caches": "mem_disk_caches_kib",
}
_BALLOON_FIELDS = {
    "balloon.current": "memory_current_kib", "balloon.maximum": "memory_maximum_kib",
    **{f"balloon.{key}": name for key, name in _MEMORY_FIELDS.items() if key != "actual"},
}
_DISK_FIELDS = (("rd.reqs", "read_requests"), ("rd.bytes", "read_bytes"),
                ("rd.times", "read_time_ns"), ("wr.reqs", "write_requests"),
                ("wr.bytes", "write_bytes"), ("wr.times", "write_time_ns"),
                ("fl.reqs", "flush_requests"), ("fl.times", "flush_time_ns"),
                ("capacity", "capacity_bytes"), ("allocation", "allocation_bytes"),
                ("physical", "physical_bytes"))
NIC_FIELDS = (("rx.bytes", "rx_bytes"), ("rx.pkts", "rx_packets"), ("rx.errs", "rx_errors"),
              ("rx.drop", "rx_drops"), ("tx.bytes", "tx_bytes"), ("tx.pkts", "tx_packets"),
              ("tx.errs", "tx_errors"), ("tx.drop", "tx_drops"))


def as_int(value: Any) -> Optional[int]:
    """An int or float from libvirt as an int; anything else (bools too) None."""
    kind = type(value)        # (bool, a subclass of int, is not a count)
    if kind is int:
        return value          # type: ignore[no-any-return]
    return int(value) if kind is float else None


def counts(values: Mapping[str, Optional[int]]) -> dict[str, int]:
    """The values that are counts: present and not negative."""
    return {k: v for k, v in values.items() if v is not None and v >= 0}


def indexed(record: Mapping[str, Any]) -> dict[str, dict[int, dict[str, Any]]]:
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


def cpu_times(record: Mapping[str, Any]) -> dict[str, Optional[int]]:
    """CPU times, or {} when the record has none (drivers that fill only the state)."""
    if "cpu.time" not in record:
        return {}
    return {"cpu_time_total_ns": as_int(record.get("cpu.time")),
            "cpu_time_user_ns": as_int(record.get("cpu.user")),
            "cpu_time_system_ns": as_int(record.get("cpu.system"))}


def balloon(record: Mapping[str, Any]) -> dict[str, Optional[int]]:
    """The memory fields of the BALLOON group that the record holds."""
    values = {f: as_int(record[k]) for k, f in _BALLOON_FIELDS.items() if k in record}
    if "balloon.current" in record:
        values["balloon_actual_kib"] = as_int(record["balloon.current"])
    return values


def memory_stats(stats: Mapping[str, Any]) -> dict[str, Optional[int]]:
    """``virDomainMemoryStats``' answer as DomainStats fields."""
    return {f: as_int(stats[k]) for k, f in _MEMORY_FIELDS.items() if k in stats}


def guest_used(values: Mapping[str, Any]) -> Optional[int]:
    """What the guest uses, as ``free`` counts it: available - unused - disk_caches
    (None unless the balloon driver reports all three)."""
    parts = [values.get(k) for k in ("mem_available_kib", "mem_unused_kib",
                                     "mem_disk_caches_kib")]
    numbers = [p for p in parts if isinstance(p, int) and p >= 0]
    if len(numbers) < 3:
        return None
    available, unused, caches = numbers
    return max(0, available - unused - caches)


def vcpu_stats(per_vcpu: Mapping[int, Mapping[str, Any]],
               on_cpu: Mapping[int, int]) -> tuple[VcpuStats, ...]:
    """Each vCPU of the record, with the host CPU it last ran on when known."""
    return tuple(VcpuStats(n, as_int(v.get("state")), as_int(v.get("time")),
                           as_int(v.get("wait")), on_cpu.get(n), as_int(v.get("delay")))
                 for n, v in sorted(per_vcpu.items()))


def disks_by_name(entries: Mapping[int, Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The record's block entries by disk target. One entry per disk without the BACKING
    flag (it may still carry a backingIndex); should a chain appear, the first entry of
    a name is the top image."""
    by_name: dict[str, Mapping[str, Any]] = {}
    for _, entry in sorted(entries.items()):
        by_name.setdefault(str(entry.get("name")), entry)
    return by_name


def disk_counters(entry: Mapping[str, Any]) -> dict[str, int]:
    """DiskStats fields from one block entry."""
    return counts({name: as_int(entry.get(key)) for key, name in _DISK_FIELDS})


def nic_counters(entry: Mapping[str, Any]) -> dict[str, int]:
    """InterfaceStats fields from one net entry."""
    return counts({name: as_int(entry.get(key)) for key, name in NIC_FIELDS})


@dataclass(frozen=True)
class RecordParts:
    """Everything one bulk record says, typed; what it lacks is absent."""

    state: Optional[int] = None
    state_reason: Optional[int] = None
    cpu: Mapping[str, Optional[int]] = field(default_factory=dict)
    memory: Mapping[str, Optional[int]] = field(default_factory=dict)
    vcpus_current: Optional[int] = None
    vcpus_maximum: Optional[int] = None
    vcpus: tuple[VcpuStats, ...] = ()
    disks: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    nics: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    perf: Mapping[str, Optional[int]] = field(default_factory=dict)


def record_parts(record: Mapping[str, Any]) -> RecordParts:
    """The typed parts of one domain's bulk record."""
    entries = indexed(record)
    disks = disks_by_name(entries.get("block", {}))
    return RecordParts(
        state=as_int(record.get("state.state")), state_reason=as_int(record.get("state.reason")),
        cpu=cpu_times(record), memory=balloon(record),
        vcpus_current=as_int(record.get("vcpu.current")),
        vcpus_maximum=as_int(record.get("vcpu.maximum")),
        vcpus=vcpu_stats(entries.get("vcpu", {}), {}),
        disks={name: disk_counters(entry) for name, entry in disks.items()},
        nics={str(e.get("name")): nic_counters(e) for e in entries.get("net", {}).values()},
        perf={key[5:]: as_int(value) for key, value in record.items()
              if key.startswith("perf.")})
