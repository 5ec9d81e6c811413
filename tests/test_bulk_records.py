"""Bulk statistics records recorded from a real QEMU/TCG domain → their typed parts.

``tests/data/qemu_bulk_records.json`` was written by ``python -m tests.support.record_bulk``
(libvirt 9.0.0, QEMU 7.2): one domain running, with its monitor held by a stuck call
(SIGSTOPped QEMU), paused, and shut off. The expected parts are written out by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentx_virt.collector.records import RecordParts, as_int, indexed, record_parts
from agentx_virt.collector.sample import Prefetched, monitor_answered
from agentx_virt.model.snapshot import VcpuStats

RECORDED = json.loads((Path(__file__).parent / "data/qemu_bulk_records.json").read_text())

MEMORY = {"memory_current_kib": 65536, "memory_maximum_kib": 65536,
          "balloon_actual_kib": 65536}
QUIET_NIC = {"rx_errors": 0, "rx_drops": 0, "tx_bytes": 0, "tx_packets": 0,
             "tx_errors": 0, "tx_drops": 0}
DISK_IO = {"read_requests": 1, "read_bytes": 512, "read_time_ns": 97044,
           "write_requests": 0, "write_bytes": 0, "write_time_ns": 0,
           "flush_requests": 0, "flush_time_ns": 0}
IMAGE = {"capacity_bytes": 67108864}

CASES: dict[str, tuple[RecordParts, bool]] = {   # case -> (its parts, monitor answered)
    "running": (RecordParts(
        state=1, state_reason=1,
        cpu={"cpu_time_total_ns": 381457000, "cpu_time_user_ns": 245823000,
             "cpu_time_system_ns": 135633000},
        memory={**MEMORY, "mem_rss_kib": 42992},
        vcpus_current=1, vcpus_maximum=1,
        vcpus=(VcpuStats(0, 1, 150000000, 0, None, 23608140),),
        disks={"vda": {**DISK_IO, **IMAGE, "allocation_bytes": 0, "physical_bytes": 204800}},
        nics={"tap1": {"rx_bytes": 90, "rx_packets": 1, **QUIET_NIC}}), True),
    # The job is held: what needs the monitor (RSS, disk counters and sizes) is missing.
    "monitor held by a stuck call": (RecordParts(
        state=1, state_reason=1,
        cpu={"cpu_time_total_ns": 405424000, "cpu_time_user_ns": 264588000,
             "cpu_time_system_ns": 140835000},
        memory=MEMORY,
        vcpus_current=1, vcpus_maximum=1,
        vcpus=(VcpuStats(0, 1, 150000000, 0, None, 25303861),),
        disks={"vda": {}},
        nics={"tap1": {"rx_bytes": 90, "rx_packets": 1, **QUIET_NIC}}), False),
    "paused": (RecordParts(
        state=3, state_reason=1,
        cpu={"cpu_time_total_ns": 407235000, "cpu_time_user_ns": 266399000,
             "cpu_time_system_ns": 140835000},
        memory={**MEMORY, "mem_rss_kib": 42992},
        vcpus_current=1, vcpus_maximum=1,
        vcpus=(VcpuStats(0, 1, 150000000, 0, None, 25986808),),
        disks={"vda": {**DISK_IO, **IMAGE, "allocation_bytes": 0, "physical_bytes": 204800}},
        nics={"tap1": {"rx_bytes": 176, "rx_packets": 2, **QUIET_NIC}}), True),
    # Shut off (reason destroyed): sizes from the image file, no vCPU, NIC or I/O entries.
    "shut off": (RecordParts(
        state=5, state_reason=2,
        cpu={"cpu_time_total_ns": 180000000, "cpu_time_user_ns": 100000000,
             "cpu_time_system_ns": 80000000},
        memory=MEMORY, vcpus_current=1, vcpus_maximum=1,
        disks={"vda": {**IMAGE, "allocation_bytes": 200704, "physical_bytes": 196616}}), False),
}


def test_every_recorded_case_has_its_row() -> None:
    assert set(RECORDED["records"]) == set(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_recorded_record_maps_to_its_typed_parts(case: str) -> None:
    parts, answered = CASES[case]
    record = RECORDED["records"][case]
    assert record_parts(record) == parts
    assert monitor_answered(Prefetched(record, 0)) is answered


def test_odd_values_are_left_out_not_guessed() -> None:
    record: dict[str, Any] = {
        "state.state": 1, "cpu.time": "soon", "balloon.rss": True, "balloon.current": 1.5,
        "block.0.name": "vda", "block.0.rd.reqs": -1, "block.1.name": "vda",
        "block.1.rd.reqs": 7, "net.x.name": "tap9", "vcpu.0": 3, "perf.cycles": 12}
    parts = record_parts(record)
    assert parts.cpu == {"cpu_time_total_ns": None, "cpu_time_user_ns": None,
                         "cpu_time_system_ns": None}
    assert parts.memory == {"memory_current_kib": 1, "mem_rss_kib": None,
                            "balloon_actual_kib": 1}
    assert parts.disks == {"vda": {}}      # the first entry of a name is the top image
    assert parts.nics == {} and parts.vcpus == () and parts.perf == {"cycles": 12}
    assert indexed({"net.0.name": "t", "vcpu.1.time": 5, "vcpu.count": 2}) == {
        "net": {0: {"name": "t"}}, "vcpu": {1: {"time": 5}}}
    assert [as_int(v) for v in (3, 2.9, True, None, "4")] == [3, 2, None, None, None]
