"""VM-MIB's times and bulk notifications, from hand-built snapshots and events: the
hypervisor's and each VM's up time, the table's last change, and vmAffectedVMs."""

from __future__ import annotations

import dataclasses
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from agentx_virt.agentx.traps import TrapQueue
from agentx_virt.collector.rates import _started
from agentx_virt.collector.uptime import ProcessStarts, boot_time
from agentx_virt.mib.build import build_table
from agentx_virt.mib.model import shipped_mib
from agentx_virt.mib.spec import AgentStatus
from agentx_virt.mib.vm_mib import VM_MIB, ticks
from agentx_virt.model.events import Lifecycle
from agentx_virt.model.snapshot import DomainStats, HostInfo, PollInfo, Snapshot
from agentx_virt.notify.bulk import BulkNotifications, vm_list
from agentx_virt.notify.rules import Notifier
from agentx_virt.notify.settings import TrapSettings

BOOT = datetime(2026, 11, 30, 8, 0, 0, tzinfo=timezone.utc)
VM = VM_MIB.load()


def value(table: object, name: str, *instance: int) -> object:
    found = table.get(VM.object(name).oid + (instance or (0,)))  # type: ignore[attr-defined]
    return None if found is None else found.value


def test_ticks_are_centiseconds_modulo_two_to_the_32() -> None:
    assert ticks(BOOT, BOOT + timedelta(seconds=90, milliseconds=123)) == 9012
    assert ticks(BOOT, BOOT - timedelta(seconds=5)) == 0          # clocks disagree: 0
    assert ticks(None, BOOT) is None and ticks(BOOT, None) is None
    assert ticks(BOOT, BOOT + timedelta(days=500)) == (500 * 86400 * 100) % 2**32


def test_up_times_and_last_change_as_of_the_poll() -> None:
    poll = BOOT + timedelta(hours=2)
    running = DomainStats("6a7e0000-0000-4000-8000-000000000001", "up", state=1,
                          started_at=BOOT + timedelta(hours=1), sampled_at=poll)
    unknown = DomainStats("6a7e0000-0000-4000-8000-000000000002", "old", state=3,
                          sampled_at=poll)                 # running before we saw it
    down = DomainStats("6a7e0000-0000-4000-8000-000000000003", "off", state=5,
                       sampled_at=poll)
    snapshot = Snapshot(HostInfo(True, "qemu:///system", "QEMU", boot_time=BOOT),
                        PollInfo(10, last_poll_start=poll,
                                 tables_last_change=BOOT + timedelta(minutes=30)),
                        (running, unknown, down))
    indexes = {running.uuid: 1, unknown.uuid: 2, down.uuid: 3}
    table = build_table(snapshot, indexes, VM_MIB,
                        AgentStatus(vm_notifications=True, vm_bulk_notifications=False)).table
    assert value(table, "vmHvUpTime") == 2 * 3600 * 100
    assert value(table, "vmTableLastChange") == 30 * 60 * 100
    assert [value(table, "vmUpTime", i) for i in (1, 2, 3)] == [3600 * 100, None, 0]
    assert value(table, "vmPerVMNotificationsEnabled") == 1          # true
    assert value(table, "vmBulkNotificationsEnabled") == 2           # false
    remote = dataclasses.replace(snapshot, host=HostInfo(True, "qemu+ssh://h/system", "QEMU"))
    table = build_table(remote, indexes, VM_MIB).table
    assert value(table, "vmHvUpTime") is None and value(table, "vmTableLastChange") is None


def test_when_a_domain_started_is_found_once_and_kept() -> None:
    wall = BOOT + timedelta(hours=3)
    local = HostInfo(True, "qemu:///system", "QEMU", boot_time=BOOT)
    started = BOOT + timedelta(hours=1)
    found: list[str] = []

    def lookup(uuid: str) -> datetime:
        found.append(uuid)
        return started

    before_up = DomainStats("u", "d", state=1, started_at=started)
    before_down = DomainStats("u", "d", state=5)
    assert _started("u", 1, None, False, wall, local, lookup) == started   # first sight
    assert _started("u", 1, before_up, False, wall, local, lookup) == started
    assert found == ["u"]                                 # kept: not looked up again
    assert _started("u", 5, before_up, False, wall, local, lookup) is None   # down
    test_driver = HostInfo(True, "test:///default", "Test", boot_time=BOOT)
    assert _started("u", 1, None, False, wall, test_driver, lookup) is None  # unknown
    assert _started("u", 1, before_down, False, wall, test_driver, lookup) == wall
    assert _started("u", 1, dataclasses.replace(before_up, started_at=None), True, wall,
                    test_driver, lookup) == wall          # CPU time went back: restarted
    assert found == ["u"]


def test_qemu_process_start_times_come_from_proc(tmp_path: Path) -> None:
    (tmp_path / "stat").write_text("cpu  1 2 3\nbtime 1764489600\nprocesses 9\n")
    uuid = "6A7E0000-0000-4000-8000-00000000000A"
    hz = os.sysconf("SC_CLK_TCK")
    for pid, cmdline, stat in (
            ("101", f"/usr/bin/qemu-system-x86_64\0-name\0guest=a\0-uuid\0{uuid}\0",
             f"101 (qemu-system-x86) S 1 {' '.join(['0'] * 17)} {30 * hz} 0 0"),
            ("102", "bash\0-c\0true\0", "102 (bash) S 1"),
            ("103", "qemu\0-uuid\0", "103 (qemu) S")):           # cut short: no UUID
        (tmp_path / pid).mkdir()
        (tmp_path / pid / "cmdline").write_bytes(cmdline.encode())
        (tmp_path / pid / "stat").write_text(stat)
    booted = boot_time(tmp_path)
    assert booted == datetime.fromtimestamp(1764489600, timezone.utc)
    starts = ProcessStarts(tmp_path)
    assert starts.lookup(uuid.lower()) == booted + timedelta(seconds=30)
    assert starts.lookup("6a7e0000-0000-4000-8000-0000000000ff") is None
    assert boot_time(tmp_path / "missing") is None


def test_vm_list_sets_one_bit_per_vm_index_from_the_top() -> None:
    assert vm_list({1}) == b"\x80" and vm_list({8}) == b"\x01"
    assert vm_list({1, 9, 10, 24}) == bytes([0x80, 0xC0, 0x01])
    assert vm_list(set()) == b""
    with pytest.raises(ValueError):
        vm_list({0})


def test_bulk_notifications_gather_a_window_of_changes() -> None:
    bulk = BulkNotifications(VM, window_s=1.0)
    assert bulk.next_due(0.0) is None
    for index, at in ((3, 10.0), (12, 10.4), (5, 10.9)):
        bulk.add("vmPaused", index, at)
    bulk.add("vmRunning", 7, 10.5)
    assert bulk.due(10.95) == [] and bulk.next_due(10.95) == pytest.approx(0.05)
    (paused,) = bulk.due(11.0)
    assert paused.trap_oid == VM.notification("vmBulkPaused").oid
    (varbind,) = paused.varbinds
    assert varbind.name == VM.object("vmAffectedVMs").oid + (0,)
    assert varbind.value == vm_list({3, 5, 12})
    (running,) = bulk.due(11.5)
    assert running.varbinds[0].value == vm_list({7})
    assert bulk.due(20.0) == [] and bulk.next_due(20.0) is None
    with pytest.raises(KeyError):
        bulk.add("vmNoSuch", 1, 0.0)


def test_the_notifier_sends_bulk_and_per_vm_with_the_previous_reason() -> None:
    now = [100.0]
    traps = TrapQueue(100)
    indexes = {f"6a7e0000-0000-4000-8000-00000000000{n}": n for n in (1, 2, 3)}
    asked: list[str] = []

    def index_of(uuid: str) -> int:
        asked.append(uuid)
        return indexes[uuid]

    notifier = Notifier(TrapSettings(families=frozenset({"VM-MIB", "VM-MIB-BULK"})),
                        shipped_mib(), traps, index_of,
                        clock=lambda: now[0],
                        family_mibs={"VM-MIB": VM, "VM-MIB-BULK": VM})
    for uuid in indexes:       # paused for an outgoing migration (3, 1), then resumed
        notifier.handle(Lifecycle(uuid, "d", 3, 1, at=now[0]))
    notifier.handle(Lifecycle("6a7e0000-0000-4000-8000-000000000001", "d", 4, 0, at=now[0]))
    per_vm = drain(traps)
    assert len(asked) == 4                  # one index lookup per change, for both families
    assert [VM_NAMES[t.trap_oid] for t in per_vm] == ["vmMigrating"] * 3 + ["vmRunning"]
    previous = per_vm[-1].varbinds[2]
    assert previous.name[:-1] == VM.object("vmOperState").oid
    assert previous.value == VM.object("vmOperState").syntax.enum["migrating"]  # type: ignore[union-attr]
    now[0] += 1.0
    notifier.tick()
    bulk = drain(traps)
    assert [VM_NAMES[t.trap_oid] for t in bulk] == ["vmBulkMigrating", "vmBulkRunning"]
    assert [t.varbinds[0].value for t in bulk] == [vm_list({1, 2, 3}), vm_list({1})]


VM_NAMES = {spec.oid: name for name, spec in VM.notifications.items()}


def drain(traps: TrapQueue) -> list:  # type: ignore[type-arg]
    sent = []
    while (trap := traps.pop()) is not None:
        sent.append(trap)
    return sent
