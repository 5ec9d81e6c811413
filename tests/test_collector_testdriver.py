"""The collector against libvirt's test driver, cross-checked with libvirt-python itself."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Callable, Optional

import libvirt
import pytest

from agentx_virt.app.config import DEFAULT_STATS, Config
from agentx_virt.collector import reader as reader_module
from agentx_virt.collector.assignment import reader_for
from agentx_virt.collector.connection import Connection
from agentx_virt.collector.poller import LAYOUT_REFRESH_CYCLES, Poller
from agentx_virt.demo.node import domain_uuid, node_xml
from agentx_virt.model.libvirt_names import ACTIVE_STATES
from agentx_virt.model.selection import selected
from agentx_virt.model.snapshot import DomainStats, Snapshot, StatGroup
from tests.support.recording import RecordedCalls

DOMAINS = 30


@pytest.fixture
def node(tmp_path: Path) -> str:
    path = tmp_path / "node.xml"
    path.write_text(node_xml(DOMAINS, tags=3))
    return f"test://{path}"


def poll(uri: str, calls: Optional[RecordedCalls] = None,
         **settings: object) -> tuple[Snapshot, Poller]:
    config = dataclasses.replace(Config(uri=uri, interval_s=5, domain_timeout_s=2),
                                 **settings)  # type: ignore[arg-type]
    poller = Poller(config, lambda _s: None, connect=calls or Connection)
    return poller.poll_once(), poller


def by_name(snapshot: Snapshot) -> dict[str, DomainStats]:
    return {d.name: d for d in snapshot.domains}


def test_reader_assignment_by_tag() -> None:
    assert [reader_for(t, 3) for t in ("virt-0", "virt-1", "virt-2", "virt-3", "virt-x",
                                       None, "", "virt-01")] == [0, 1, 2, 0, 0, 0, 0, 1]


def test_filters_by_name_or_uuid() -> None:
    uuid = domain_uuid(7)
    assert selected("web-1", uuid, (), ())
    assert selected("web-1", uuid, ("web-*",), ())
    assert not selected("db-1", uuid, ("web-*",), ())
    assert not selected("web-1", uuid, (), ("web-*",))
    assert selected("db-1", uuid, (uuid.upper(),), ())


def test_snapshot_matches_what_libvirt_python_reports(node: str) -> None:
    snapshot, _ = poll(node, stats=DEFAULT_STATS + (StatGroup.PERF, StatGroup.VCPUPIN))
    assert snapshot.host.libvirt_connected and snapshot.host.hypervisor_type == "TEST"
    domains = by_name(snapshot)
    conn = libvirt.openReadOnly(node)
    try:
        listed = conn.listAllDomains(0)
        assert sorted(domains) == sorted(d.name() for d in listed)
        for dom in listed:
            ours = domains[dom.name()]
            state, max_kib, cur_kib, vcpus, _cpu = dom.info()
            assert ours.uuid == dom.UUIDString()
            assert (ours.state, ours.state_reason) == tuple(dom.state())
            assert (ours.memory_maximum_kib, ours.memory_current_kib) == (max_kib, cur_kib)
            assert ours.vcpus_current == vcpus and ours.poll_status == "ok"
            assert ours.pinning == tuple(tuple(row) for row in dom.vcpuPinInfo(0))
            assert [(d.target, d.bus) for d in ours.disks] == [("vda", "virtio"),
                                                              ("sdb", "sata")]
            assert ours.disks[0].source == f"/var/lib/images/{dom.name()}.qcow2"
            assert [n.target for n in ours.interfaces] == [
                f"tap{int(dom.name()[2:])}n{n}" for n in range(len(ours.interfaces))]
            if state == libvirt.VIR_DOMAIN_SHUTOFF:
                assert ours.disk_errors == () and ours.vcpus == ()
                continue
            capacity, allocation, physical = dom.blockInfo("vda")
            assert (ours.disks[0].capacity_bytes, ours.disks[0].allocation_bytes,
                    ours.disks[0].physical_bytes) == (capacity, allocation, physical)
            errors = {t: c for t, c in dom.diskErrors(0).items() if c}
            assert {e.target: e.code for e in ours.disk_errors} == errors
            # The test driver's counters rise with the wall clock: ours were read first.
            assert 0 < ours.disks[0].read_bytes <= dom.blockStats("vda")[1]  # type: ignore[operator]
            nic = ours.interfaces[0]
            assert 0 < nic.rx_bytes <= dom.interfaceStats(nic.target)[0]  # type: ignore[operator]
            assert [v.number for v in ours.vcpus] == [v[0] for v in dom.vcpus()[0]]
            assert {p.name for p in ours.perf} == set(dom.perfEvents(0))
    finally:
        conn.close()


def test_readers_touch_only_their_own_domains(node: str) -> None:
    calls = RecordedCalls()
    snapshot, poller = poll(node, calls, instances=3)
    touched: dict[int, set[str]] = {}       # reader -> the domains its connections asked
    for connection, what in calls.log:
        if connection.startswith("reader-") and " of " in what:
            number = int(connection.split("-")[1])
            touched.setdefault(number, set()).add(what.split(" of ", 1)[1])
    for reader in poller.readers:
        names = {d.name for d in snapshot.domains if d.reader == reader.number}
        uuids = {d.uuid for d in snapshot.domains if d.reader == reader.number}
        asked = {what for what in touched.get(reader.number, set())
                 if not re.fullmatch(r"\d+ domains?", what)}    # bulk calls name no domain
        assert names and names <= asked <= names | uuids       # lookups name the UUID
    for d in snapshot.domains:
        tag_number = int(d.name[2:]) % 4
        assert d.partition_tag == ("" if tag_number == 3 else f"virt-{tag_number}")
        assert d.reader == (0 if tag_number == 3 else tag_number)


def test_selectors_choose_what_is_collected(node: str) -> None:
    snapshot, _ = poll(node, stats=(StatGroup.CPU,))
    running = next(d for d in snapshot.domains if d.state == 1)
    assert running.cpu_time_total_ns is not None
    assert running.disks == () and running.interfaces == () and running.pinning == ()
    assert running.memory_current_kib is None and running.perf == ()
    default, _ = poll(node)                    # perf and vcpupin are opt-in
    running = next(d for d in default.domains if d.state == 1)
    assert running.disks and running.perf == () and running.pinning == ()


def test_include_and_exclude(node: str) -> None:
    snapshot, _ = poll(node, include=("vm000*",), exclude=("vm0003", domain_uuid(5)))
    assert sorted(d.name for d in snapshot.domains) == [
        "vm0001", "vm0002", "vm0004", "vm0006", "vm0007", "vm0008", "vm0009"]


def test_unreachable_libvirt_is_reported_not_raised(tmp_path: Path) -> None:
    snapshot, _ = poll(f"test://{tmp_path}/missing.xml")
    assert not snapshot.host.libvirt_connected and snapshot.domains == ()


def test_an_unchanged_domain_list_publishes_no_new_snapshot(node: str) -> None:
    published: list[Snapshot] = []
    poller = Poller(Config(uri=node, interval_s=5, domain_timeout_s=2), published.append)
    poller.partition_once()
    poller.partition_once()                   # same domains, same tags: nothing new to show
    assert len(published) == 1
    for reader in poller.readers:
        reader.poll_once()                    # the readers publish the statistics
    assert len(published) == 1 + len(poller.readers)
    for reader in poller.readers:
        reader.join(1)


def test_an_unchanged_domain_keeps_its_objects_when_listed_and_read_again(node: str) -> None:
    poller = Poller(Config(uri=node, interval_s=5, domain_timeout_s=2), lambda _s: None)
    poller.partition_once()
    first = {ref.uuid: ref for refs in poller._by_reader.values() for ref in refs}
    for _ in range(LAYOUT_REFRESH_CYCLES):    # every layout is read again in between
        poller.partition_once()
    again = {ref.uuid: ref for refs in poller._by_reader.values() for ref in refs}
    assert again.keys() == first.keys()
    assert all(again[uuid] is first[uuid] for uuid in first)
    assert all(again[uuid].layout is first[uuid].layout for uuid in first)
    poller.stop()


def test_the_xml_is_read_again_for_the_domains_an_event_named(
        node: str) -> None:
    calls = RecordedCalls()
    poller = Poller(Config(uri=node, interval_s=5, domain_timeout_s=2), lambda _s: None,
                    connect=calls)
    poller.partition_once()                     # every XML read (cycle 1)
    asked = calls.watch("XMLDesc")
    for _ in range(LAYOUT_REFRESH_CYCLES - 2):
        poller.partition_once()
    assert asked == []                          # nothing said they changed
    poller.layout_changed(domain_uuid(3).upper())
    poller.partition_once()
    assert asked == ["vm0003"]
    asked.clear()
    poller.layout_changed(None)                 # events were lost: any may have changed
    poller.partition_once()
    assert sorted(asked) == sorted(by_name(poller._snapshot()))
    poller.stop()


def test_the_test_driver_is_not_asked_for_control_info(node: str) -> None:
    """It has no monitor or job that a call could be stuck on."""
    calls = RecordedCalls()
    asked = calls.watch("controlInfo")
    poller = Poller(Config(uri=node, interval_s=5, domain_timeout_s=2), lambda _s: None,
                    connect=calls)
    poller.partition_once()
    for _ in range(2):
        for reader in poller.readers:
            reader.poll_once()
    assert asked == [] and by_name(poller._snapshot())
    poller.stop()


def test_control_info_is_skipped_for_domains_shut_off_at_their_last_poll(
        node: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # As for a driver with a monitor (QEMU, whose fixture has no shut-off domain).
    monkeypatch.setattr(reader_module, "NO_MONITOR", frozenset())
    calls = RecordedCalls()
    asked = calls.watch("controlInfo")
    poller = Poller(Config(uri=node, interval_s=5, domain_timeout_s=2), lambda _s: None,
                    connect=calls)
    poller.partition_once()
    for reader in poller.readers:
        reader.poll_once()
    first = by_name(poller._snapshot())
    assert sorted(asked) == sorted(first)              # nothing known yet: every domain
    asked.clear()
    for reader in poller.readers:
        reader.poll_once()
    active = sorted(name for name, d in first.items() if d.state in ACTIVE_STATES)
    assert active and len(active) < len(first)
    assert sorted(asked) == active
    poller.stop()


def test_every_connection_the_poller_opens_comes_from_the_factory_it_was_given(
        node: str) -> None:
    opened: list[tuple[str, bool]] = []

    def connect(uri: str, name: str, read_only: bool = True,
                on_close: Optional[Callable[[Connection, str], None]] = None) -> Connection:
        opened.append((name, read_only))
        return Connection(uri, name, read_only, on_close)

    snapshot = Poller(Config(uri=node, interval_s=5, domain_timeout_s=2, instances=2),
                      lambda _s: None, connect).poll_once()
    assert snapshot.domains
    names = [name for name, _ in opened]
    assert names[0] == "partitioner"
    assert {"reader-0-control", "reader-1-control"} <= set(names)
    assert any(name.startswith("reader-0-worker-") for name in names)
    assert all(read_only for _, read_only in opened)      # no fs_info: read-only only


def test_a_cycle_that_cannot_reach_every_domain_starts_the_next_with_those_it_skipped(
        tmp_path: Path) -> None:
    """Cycles far too short for the host: each reaches some domains, and the next starts
    with the ones left out, so every domain is polled within a few cycles."""
    path = tmp_path / "big.xml"
    path.write_text(node_xml(1500))
    poller = Poller(Config(uri=f"test://{path}", interval_s=0.03, domain_timeout_s=2),
                    lambda _s: None)
    poller.partition_once()
    polled: set[str] = set()
    skipped_cycles = 0
    for _ in range(300):
        for reader in poller.readers:
            result = reader.poll_once()
            statuses = {uuid: d.poll_status for uuid, d in result.domains.items()}
            polled.update(uuid for uuid, status in statuses.items() if status == "ok")
            skipped_cycles += any(status == "skipped" for status in statuses.values())
        if len(polled) == 1500 and skipped_cycles >= 3:
            break
    poller.stop()
    assert skipped_cycles >= 3, "every cycle reached every domain: nothing was left out"
    assert len(polled) == 1500
