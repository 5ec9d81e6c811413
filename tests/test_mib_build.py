"""The MIB model, the code's agreement with it, and the pure Snapshot → OID table builder."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import pytest

from agentx_virt.agentx.constants import ValueType as T
from agentx_virt.agentx.pdu import VarBind
from agentx_virt.expose.dump import render_varbind
from agentx_virt.mib.build import BuiltTable, build_table
from agentx_virt.mib.convert import converter
from agentx_virt.mib.libvirt_ext import (
    AGENT_SCALARS,
    HOST_TABLES,
    LIBVIRT_EXT_MIB,
    SCALARS,
    TABLES,
)
from agentx_virt.mib.model import MibError, shipped_mib
from agentx_virt.mib.spec import AgentStatus, MibSpec, TableSpec
from agentx_virt.model.snapshot import (
    DiskStats,
    DomainStats,
    InterfaceStats,
    PerfEvent,
    Snapshot,
    uuid_key,
)
from agentx_virt.oid import OID

from .snapshots import (
    BARE_INDEXES,
    INDEXES,
    STATUS,
    UUID_A,
    UUID_B,
    WHEN,
    bare_snapshot,
    full_domain,
    full_snapshot,
)
from .support.syntax import violation

MIB = shipped_mib()
GOLDEN = Path(__file__).with_name("golden") / "full_snapshot.txt"


def built(snapshot: Snapshot, indexes: Mapping[str, int] = INDEXES,
          status: AgentStatus = STATUS) -> BuiltTable:
    result = build_table(snapshot, indexes, LIBVIRT_EXT_MIB, status=status)
    return result


def names_present(result: BuiltTable) -> set[str]:
    by_oid = {obj.oid: obj.name for obj in MIB.served()}
    present = set()
    for vb in result.table.varbinds:
        for length in range(len(vb.name) - 1, 0, -1):
            if vb.name[:length] in by_oid:
                present.add(by_oid[vb.name[:length]])
                break
    return present


# ---------------------------------------------------------------- code and MIB agree

def test_every_served_object_has_exactly_one_getter_and_every_getter_an_object() -> None:
    mapped = list(SCALARS) + list(AGENT_SCALARS) + [name for spec in TABLES + HOST_TABLES
                                                    for name in spec.columns]
    assert len(mapped) == len(set(mapped)), "an object is mapped twice"
    assert set(mapped) == {obj.name for obj in MIB.served()}


def test_scalars_are_scalars_and_columns_belong_to_their_entry() -> None:
    for name in SCALARS:
        assert MIB.object(name).nodetype == "scalar", name
    for spec in TABLES + HOST_TABLES:
        entry = MIB.object(spec.entry)
        assert entry.nodetype == "row"
        readable = {c.name for c in MIB.columns(spec.entry) if c.readable}
        assert set(spec.columns) == readable, spec.entry
        if spec in TABLES:
            assert entry.indices[0][0] == "lvxDomainIndex", "a domain table starts with it"
        else:
            assert "lvxDomainIndex" not in dict(entry.indices), "a host table has no domain"


def test_every_table_of_the_mib_is_built() -> None:
    rows = {obj.name for obj in MIB.objects.values() if obj.nodetype == "row"}
    assert rows == {spec.entry for spec in TABLES + HOST_TABLES}


def test_notifications_name_objects_the_mib_defines() -> None:
    assert len(MIB.notifications) == 13
    for notification in MIB.notifications.values():
        assert notification.oid[:-1] == MIB.root + (0,)
        for name in notification.objects:
            assert MIB.object(name).access in ("read-only", "accessible-for-notify")


def test_unknown_names_are_a_clear_error() -> None:
    with pytest.raises(MibError, match="defines no object 'lvxNoSuchThing'"):
        MIB.object("lvxNoSuchThing")


def test_the_module_sits_under_libvirts_enterprise_arc_3() -> None:
    assert MIB.root == (1, 3, 6, 1, 4, 1, 36957, 3)


# ---------------------------------------------------------------- the table

def test_golden_table_for_a_fixed_snapshot() -> None:
    result = built(full_snapshot())
    assert result.rejected == ()
    lines = [render_varbind(vb) for vb in result.table.varbinds]
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text("\n".join(lines) + "\n")
    assert lines == GOLDEN.read_text().splitlines()


def test_selected_cells_by_hand() -> None:
    table = built(full_snapshot()).table
    uuid = MIB.object("lvxDomainUuid").oid + (7,)
    assert table.get(uuid).value == bytes.fromhex("6695eb01f6a4830479aa97f2502e193f")
    # Disk "vda" of domain 7: index is 7, then length 3 and the ASCII codes.
    read_bytes = MIB.object("lvxDiskReadBytes").oid + (7, 3, 118, 100, 97)
    assert table.get(read_bytes) == VarBind(read_bytes, T.COUNTER64, 409600)
    # paused (3) because of an I/O error (5) is a warning (2).
    domain = MIB.object("lvxDomainEntry").oid
    assert table.get(domain + (4, 7)).value == 3
    assert table.get(domain + (6, 7)).value == b"ioerror"
    # Text is served as UTF-8 octets, by get, next and a full listing alike.
    named = dataclasses.replace(full_snapshot(), domains=(
        dataclasses.replace(full_domain(), name="v\u00e9m"),))
    table = built(named).table
    name = MIB.object("lvxDomainName").oid + (7,)
    assert table.get(name).value == table.next(name[:-1]).value == b"v\xc3\xa9m"
    assert [vb.value for vb in table.varbinds if vb.name == name] == [b"v\xc3\xa9m"]
    assert table.get(domain + (7, 7)).value == 2
    # DateAndTime: 2026-11-21,20:15:30.7,+0:0
    assert table.get(MIB.object("lvxLastPollStart").oid + (0,)).value == bytes(
        [0x07, 0xEA, 11, 21, 20, 15, 30, 7]) + b"+\x00\x00"
    # The job slot is an enum in the index: completed(2); failed(4) job type.
    job_type = MIB.object("lvxJobType").oid
    assert table.get(job_type + (7, 2)).value == 4
    # Pinning: vCPU 1 may run on host CPU 1 (true 1) but not on CPU 0 (false 2).
    affinity = MIB.object("lvxPinAffinity").oid
    assert (table.get(affinity + (7, 1, 1)).value, table.get(affinity + (7, 1, 0)).value) == (1, 2)
    # Perf: task_clock is taskClock(15); the MAC is 6 octets.
    assert table.get(MIB.object("lvxPerfValue").oid + (7, 15)).value == 987654321
    mac = MIB.object("lvxIfMac").oid + (7, 4, 116, 97, 112, 48)
    assert table.get(mac).value == bytes.fromhex("525400123456")
    # File systems in mount-point order: "/" is 1, "/var" is 2.
    mount = MIB.object("lvxFsMountPoint").oid
    assert (table.get(mount + (7, 1)).value, table.get(mount + (7, 2)).value) == (b"/", b"/var")


def test_every_column_and_scalar_is_produced_when_the_snapshot_has_the_data() -> None:
    assert names_present(built(full_snapshot())) == {obj.name for obj in MIB.served()}


def test_absent_data_is_absent_not_zero() -> None:
    result = built(bare_snapshot(), BARE_INDEXES, AgentStatus())
    assert result.rejected == ()
    present = names_present(result)
    assert present == {"lvxLibvirtConnected", "lvxLibvirtUri", "lvxDomainCount",
                       "lvxPollIntervalSeconds", "lvxLastPollTimedOut", "lvxLastPollFresh",
                       "lvxDomainUuid",
                       "lvxDomainName", "lvxDomainPollStatus",
                       # the agent's own state: empty text while all is well
                       "lvxIndexStateError", "lvxLibvirtLastError",
                       # the reload counters from 0, no error, no alarm
                       "lvxConfigReloads", "lvxConfigReloadFailures", "lvxConfigLastError",
                       "lvxAlarmsActive"}
    status = MIB.object("lvxDomainPollStatus").oid + (1,)
    assert result.table.get(status).value == MIB.object("lvxDomainPollStatus").syntax.enum[  # type: ignore[union-attr]
        "notPolled"]
    memory = MIB.object("lvxDomainMemoryCurrentKiB").oid + (1,)
    assert result.table.get(memory).type is T.NO_SUCH_INSTANCE


def test_a_disk_without_an_error_has_no_error_row() -> None:
    table = built(full_snapshot()).table
    code = MIB.object("lvxDiskErrorCode").oid
    assert table.get(code + (7, 3, 118, 100, 97)).value == 2            # vda: nospace
    assert table.get(code + (7, 3, 115, 100, 98)).type is T.NO_SUCH_INSTANCE   # sdb


def every_value_fits_its_syntax(result: BuiltTable) -> None:
    objects = sorted(MIB.served(), key=lambda o: o.oid)
    for vb in result.table.varbinds:
        obj = next(o for o in objects if vb.name[:len(o.oid)] == o.oid)
        assert obj.syntax is not None
        assert vb.type is obj.syntax.base, obj.name
        assert violation(obj.syntax, vb.value) is None, obj.name


def test_values_match_the_mib_types_ranges_and_sizes() -> None:
    every_value_fits_its_syntax(built(full_snapshot()))


@pytest.mark.parametrize("change, rejected_object, reason", [
    ({"cpu_util_vcpus": 10001}, "lvxDomainCpuUtilVcpus", "outside"),
    ({"state": 9}, "lvxDomainState", "not one of"),
    ({"memory_current_kib": -1}, "lvxDomainMemoryCurrentKiB", "does not fit COUNTER64"),
    ({"vcpus_current": 2**32}, "lvxDomainVcpusCurrent", "does not fit GAUGE32"),
    ({"uuid": "not-a-uuid"}, "lvxDomainUuid", "not a UUID"),
    ({"uuid": "6695eb01-f6a4-8304"}, "lvxDomainUuid", "not a UUID"),
    ({"uuid": "6695eb01 f6a4 8304 79aa 97f2502e193f"}, "lvxDomainUuid", "not a UUID"),
    ({"poll_status": "sleeping"}, "lvxDomainPollStatus", "not one of"),
    ({"discontinuity_time": datetime(2026, 1, 1)}, "lvxDomainDiscontinuityTime", "time zone"),
    ({"name": "bad\udcff"}, "lvxDomainName", "not valid Unicode"),
    ({"interfaces": (InterfaceStats("tap0", mac="zz:zz"),)}, "lvxIfMac", "not a MAC"),
    ({"disks": (DiskStats("vda", read_bytes=1), DiskStats("vda", read_bytes=2))},
     "lvxDiskEntry", "duplicate row"),
    ({"perf": (PerfEvent("made_up", True, 1),)}, "lvxPerfEntry", "bad index"),
])
def test_bad_values_are_left_out_with_a_reason_and_the_rest_stays(
        change: dict[str, object], rejected_object: str, reason: str) -> None:
    odd = dataclasses.replace(full_domain(), **change)  # type: ignore[arg-type]
    snapshot = dataclasses.replace(full_snapshot(), domains=(odd, full_domain(UUID_B, "b")))
    result = built(snapshot, {uuid_key(odd.uuid): 7, UUID_B: 9})   # (odd UUIDs too)
    assert [r.object for r in result.rejected] == [rejected_object]
    assert reason in result.rejected[0].reason
    every_value_fits_its_syntax(result)
    name = MIB.object("lvxDomainName").oid
    assert result.table.get(name + (9,)).value == b"b"          # the other domain is whole


@pytest.mark.parametrize("name, served", [
    ("x" * 300, b"x" * 255),
    ("\u00e9" * 200, "\u00e9".encode() * 127),            # 254 octets: no half character
    ("\u4e2d" * 100, "\u4e2d".encode() * 85),             # 255 octets of 3-octet characters
    ("a" + "\U0001f600" * 70, b"a" + "\U0001f600".encode() * 63),   # 253 octets
])
def test_text_longer_than_its_size_is_served_cut_between_characters(
        name: str, served: bytes, caplog: pytest.LogCaptureFixture) -> None:
    odd = dataclasses.replace(full_domain(), name=name, disks=(
        DiskStats("d" * 40, read_bytes=1),), partition_tag="t" * 300)
    with caplog.at_level(logging.WARNING):
        result = built(dataclasses.replace(full_snapshot(), domains=(odd,)))
    assert result.rejected == ()
    every_value_fits_its_syntax(result)
    table = result.table
    assert table.get(MIB.object("lvxDomainName").oid + (7,)).value == served
    assert served.decode("utf-8")                       # whole characters only
    assert table.get(MIB.object("lvxDomainPartitionTag").oid + (7,)).value == b"t" * 255
    read_bytes = MIB.object("lvxDiskReadBytes").oid + (7, 32, *b"d" * 32)
    assert table.get(read_bytes).value == 1             # a device name as index, cut to 32


def test_a_cut_is_logged_once_per_object_with_the_value_shortened(
        caplog: pytest.LogCaptureFixture) -> None:
    convert = converter(MIB.object("lvxDomainEventText"))   # no other test cuts it
    with caplog.at_level(logging.WARNING, logger="agentx_virt.mib.convert"):
        assert convert("e" * 300) == "e" * 255
        assert convert("f" * 999) == "f" * 255
    (line,) = [r.getMessage() for r in caplog.records]
    assert "lvxDomainEventText: a value of 300 bytes" in line and "'" + "e" * 60 + "...'" in line


def test_rows_follow_the_domain_index_not_list_order() -> None:
    first = built(full_snapshot()).table
    swapped = dataclasses.replace(full_snapshot(),
                                  domains=tuple(reversed(full_snapshot().domains)))
    assert list(built(swapped).table.varbinds) == list(first.varbinds)


def domain_rows(snapshot: Snapshot, indexes: Mapping[str, int]) -> dict[bytes, int]:
    """Domain name → the row index its name is served at."""
    name: OID = MIB.object("lvxDomainName").oid
    varbinds = build_table(snapshot, indexes, LIBVIRT_EXT_MIB).table.varbinds
    return {vb.value: vb.name[-1] for vb in varbinds  # type: ignore[misc]
            if vb.name[:-1] == name}


def test_index_stability_as_domains_come_and_go(tmp_path: Path) -> None:
    from agentx_virt.snmp.domain_index import DomainIndexRegistry

    state = tmp_path / "domain-index.json"
    uuids = {n: f"00000000-0000-4000-8000-{n:012d}" for n in range(1, 6)}

    def rows_of(names: list[int], registry: DomainIndexRegistry, now: float
                ) -> dict[bytes, int]:
        indexes = registry.assign((uuids[n] for n in names), now)
        domains = tuple(DomainStats(uuid=uuids[n], name=f"vm{n}") for n in names)
        return domain_rows(dataclasses.replace(bare_snapshot(), domains=domains), indexes)

    registry = DomainIndexRegistry()
    first = rows_of([1, 2, 3], registry, now=0)
    assert first == {b"vm1": 1, b"vm2": 2, b"vm3": 3}
    later = rows_of([3, 4, 1], registry, now=10)                        # vm2 went, vm4 came
    assert later == {b"vm1": 1, b"vm3": 3, b"vm4": 4}                   # vm4 does not take 2
    registry.save(state)
    restarted = DomainIndexRegistry.load(state)                         # the agent restarts
    again = rows_of([5, 2, 1], restarted, now=20)
    assert again == {b"vm1": 1, b"vm2": 2, b"vm5": 5}                   # vm2 gets its row back


def test_date_and_time_is_utc_whatever_the_zone() -> None:
    from datetime import timedelta, timezone

    elsewhere = WHEN.astimezone(timezone(timedelta(hours=-5)))
    snapshot = dataclasses.replace(full_snapshot(), poll=dataclasses.replace(
        full_snapshot().poll, last_poll_start=elsewhere))
    oid = MIB.object("lvxLastPollStart").oid + (0,)
    assert built(snapshot).table.get(oid) == built(full_snapshot()).table.get(oid)


def test_uuid_case_does_not_matter() -> None:
    upper = dataclasses.replace(full_snapshot(), domains=(
        dataclasses.replace(full_domain(), uuid=UUID_A.upper()),))
    oid = MIB.object("lvxDomainUuid").oid + (7,)
    assert built(upper).table.get(oid).value == bytes.fromhex(UUID_A.replace("-", ""))


def test_the_agents_own_status_is_served_beside_the_snapshot() -> None:
    error = MIB.object("lvxIndexStateError").oid + (0,)
    assert built(full_snapshot()).table.get(error).value == b""        # all is well
    failing = build_table(full_snapshot(), INDEXES, LIBVIRT_EXT_MIB, status=AgentStatus(
        index_state_error="cannot write domain index state /x: No space left on device"))
    assert failing.table.get(error).value == (
        b"cannot write domain index state /x: No space left on device")
    unreachable = dataclasses.replace(full_snapshot(), host=dataclasses.replace(
        full_snapshot().host, libvirt_connected=False, last_error="socket gone"))
    last_error = MIB.object("lvxLibvirtLastError").oid + (0,)
    assert built(unreachable).table.get(last_error).value == b"socket gone"
    assert built(full_snapshot()).table.get(last_error).value == b""   # connected


def test_a_spec_serves_exactly_its_own_objects() -> None:
    """The builder holds no module's names: a second spec over the same compiled module
    serves only what it lists, under the same OIDs."""
    small = MibSpec(shipped_mib, {"lvxDomainCount": lambda s: len(s.domains)}, {},
                    (TableSpec("lvxDomainEntry", lambda d: (d,), lambda i, _: (i,),
                               {"lvxDomainName": lambda d: d.name}),),
                    "lvxDomainIndex")
    snapshot = full_snapshot()
    served = {vb.name[:-1] for vb in build_table(snapshot, INDEXES, small).table.varbinds}
    assert served == {MIB.object("lvxDomainCount").oid, MIB.object("lvxDomainName").oid}
    full = build_table(snapshot, INDEXES, LIBVIRT_EXT_MIB).table
    for vb in build_table(snapshot, INDEXES, small).table.varbinds:
        assert full.get(vb.name) == vb
    with pytest.raises(MibError, match="LIBVIRT-EXT-MIB defines no object 'vmName'"):
        build_table(snapshot, INDEXES, MibSpec(shipped_mib, {"vmName": lambda s: 1}, {}, (),
                                               "lvxDomainIndex"))
