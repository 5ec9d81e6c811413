"""The notifier's rules, fed records directly: which traps, with which varbinds, when."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from agentx_virt.agentx.constants import ValueType
from agentx_virt.agentx.traps import Trap, TrapQueue
from agentx_virt.mib.libvirt_ext import LIBVIRT_EXT_MIB, THRESHOLD_METRICS
from agentx_virt.mib.model import shipped_mib
from agentx_virt.model.events import EventsLost, IoError, JobCompleted, Lifecycle, Reconnected
from agentx_virt.model.snapshot import DomainStats, HostInfo, JobStats, PollInfo, Snapshot
from agentx_virt.notify.rules import Notifier, SnapshotSeen
from agentx_virt.notify.settings import Threshold, TrapSettings

MIB = shipped_mib()
UUID = "6a7e0000-0000-4000-8000-000000000001"


def make(**settings: Any) -> tuple[Notifier, TrapQueue]:
    traps = TrapQueue(100)
    notifier = Notifier(TrapSettings(**settings), MIB, traps, lambda uuid: 42)
    return notifier, traps


def drain(traps: TrapQueue) -> list[Trap]:
    found = []
    while (trap := traps.pop()) is not None:
        found.append(trap)
    return found


def named(trap: Trap) -> str:
    return next(n for n, spec in MIB.notifications.items() if spec.oid == trap.trap_oid)


def value(trap: Trap, object_name: str) -> Any:
    base = MIB.object(object_name).oid
    return next(vb.value for vb in trap.varbinds if vb.name[:len(base)] == base)


def snapshot(*domains: DomainStats, start: datetime | None = None) -> SnapshotSeen:
    return SnapshotSeen(Snapshot(HostInfo(True, "test:///default"),
                                 PollInfo(10, last_poll_start=start), tuple(domains)))


def domain(**fields: Any) -> DomainStats:
    return DomainStats(**{"uuid": UUID, "name": "web-1", "state": 1,
                          "state_reason": 1, "poll_status": "ok", **fields})


def test_state_change_takes_the_state_from_the_event_and_the_previous_from_what_it_knew() -> None:
    notifier, traps = make()
    notifier.handle(snapshot(domain()))                     # seeds: running, no trap
    assert drain(traps) == []
    notifier.handle(Lifecycle(UUID, "web-1", 3, 2))         # suspended: I/O error
    (trap,) = drain(traps)
    assert named(trap) == "lvxDomainStateChange"
    assert [vb.name[-1] for vb in trap.varbinds] == [42] * 7    # the domain's row index
    assert (value(trap, "lvxDomainState"), value(trap, "lvxDomainStateReason"),
            value(trap, "lvxDomainStateReasonText"), value(trap, "lvxDomainPreviousState"),
            value(trap, "lvxDomainSeverity")) == (3, 5, b"ioerror", 1, 2)
    notifier.handle(Lifecycle(UUID, "web-1", 8, 0))         # crashed: failure
    (trap,) = drain(traps)
    assert (value(trap, "lvxDomainState"), value(trap, "lvxDomainPreviousState"),
            value(trap, "lvxDomainSeverity")) == (6, 3, 3)
    notifier.handle(Lifecycle(UUID, "web-1", 7, 0))         # pmsuspended: warning
    assert value(drain(traps)[0], "lvxDomainSeverity") == 2


def test_disabled_kinds_send_nothing() -> None:
    notifier, traps = make(kinds=frozenset({"poll"}))
    notifier.handle(Lifecycle(UUID, "web-1", 3, 0))
    notifier.handle(Lifecycle(UUID, "web-1", 0, 0))
    notifier.handle(IoError(UUID, "web-1", "/img.qcow2", "virtio-disk0", 1, "enospc"))
    assert drain(traps) == []


def test_hold_down_folds_flapping_into_one_trap() -> None:
    now = [1000.0]
    traps = TrapQueue(100)
    notifier = Notifier(TrapSettings(hold_down_s=30), MIB, traps, lambda uuid: 42,
                        clock=lambda: now[0])
    notifier.handle(snapshot(domain()))
    for event in ((3, 0), (4, 0), (3, 0), (4, 0), (3, 0)):
        notifier.handle(Lifecycle(UUID, "web-1", *event, at=now[0]))
        now[0] += 1
    assert [value(t, "lvxDomainState") for t in drain(traps)] == [3]    # the first only
    notifier.tick()
    assert drain(traps) == []                               # still held down
    now[0] += 26                                            # the hold-down has passed
    notifier.tick()
    (trap,) = drain(traps)
    assert (value(trap, "lvxDomainState"), value(trap, "lvxDomainPreviousState")) == (3, 3)


def test_persistent_notifications_resend_each_state_once_per_interval() -> None:
    notifier, traps = make(persistent=True, interval_s=10)
    notifier.handle(snapshot(domain()))                     # seeds
    notifier.handle(snapshot(domain()))
    notifier.handle(snapshot(domain()))                     # within the same interval
    (trap,) = drain(traps)
    assert (value(trap, "lvxDomainState"), value(trap, "lvxDomainPreviousState")) == (1, 1)


def test_poll_stalled_once_then_recovered() -> None:
    notifier, traps = make(stall_cycles=3, interval_s=10)
    notifier.handle(snapshot(domain()))
    notifier.handle(snapshot(domain(poll_status="timedOut", data_age_s=20)))
    assert drain(traps) == []                               # not yet 3 polls old
    notifier.handle(snapshot(domain(poll_status="timedOut", data_age_s=30)))
    notifier.handle(snapshot(domain(poll_status="timedOut", data_age_s=40)))
    (stalled,) = drain(traps)
    assert named(stalled) == "lvxDomainPollStalled"
    assert (value(stalled, "lvxDomainPollStatus"), value(stalled, "lvxDomainDataAgeSeconds")) \
        == (2, 30)
    notifier.handle(snapshot(domain(poll_status="ok", data_age_s=0)))
    (recovered,) = drain(traps)
    assert named(recovered) == "lvxDomainPollRecovered"


def test_a_new_failed_job_is_reported_once_and_an_old_one_never() -> None:
    failed = JobStats("completed", type=4, operation=5, time_elapsed_ms=900,
                      error_message="migration failed: no route")
    notifier, traps = make()
    notifier.handle(snapshot(domain(jobs=(failed,))))       # present at start: not news
    assert drain(traps) == []
    again = dataclasses.replace(failed, time_elapsed_ms=1200)
    notifier.handle(snapshot(domain(jobs=(again,))))
    notifier.handle(snapshot(domain(jobs=(again,))))
    (trap,) = drain(traps)
    assert named(trap) == "lvxDomainJobFailed"
    assert (value(trap, "lvxJobType"), value(trap, "lvxJobOperation"),
            value(trap, "lvxDomainEventText")) == (4, 5, b"migration failed: no route")
    slot = MIB.object("lvxJobSlot").syntax.enum["completed"]  # type: ignore[union-attr]
    job_type = MIB.object("lvxJobType").oid
    assert any(vb.name == job_type + (42, slot) for vb in trap.varbinds)


def test_changes_missed_while_events_were_lost_are_sent_from_the_next_fresh_poll() -> None:
    notifier, traps = make()
    notifier.handle(snapshot(domain()))
    notifier.handle(EventsLost())
    notifier.handle(snapshot(domain(state=5, state_reason=3)))   # not trusted yet: no trap
    assert drain(traps) == []
    notifier.handle(Reconnected())
    stale = datetime.now(timezone.utc) - timedelta(seconds=60)
    notifier.handle(snapshot(domain(state=5, state_reason=3), start=stale))  # an older poll
    assert drain(traps) == []
    fresh = datetime.now(timezone.utc) + timedelta(seconds=1)
    notifier.handle(snapshot(domain(state=5, state_reason=3), start=fresh))
    (trap,) = drain(traps)
    assert (value(trap, "lvxDomainState"), value(trap, "lvxDomainStateReasonText"),
            value(trap, "lvxDomainPreviousState")) == (5, b"crashed", 1)
    notifier.handle(snapshot(domain(state=5, state_reason=3), start=fresh))
    assert drain(traps) == []                               # caught up: nothing twice


def test_io_error_is_a_failure_naming_the_device() -> None:
    notifier, traps = make()
    notifier.handle(IoError(UUID, "web-1", "/var/lib/img/web-1.qcow2", "virtio-disk0", 1,
                            "enospc"))
    (trap,) = drain(traps)
    assert named(trap) == "lvxDomainIoError"
    assert value(trap, "lvxDomainEventDevice") == b"virtio-disk0"
    assert value(trap, "lvxDomainSeverity") == 3
    assert b"enospc" in value(trap, "lvxDomainEventText")


def test_lost_events_are_logged_by_the_notifier(caplog: Any) -> None:
    import logging

    dropped = [0]
    notifier = Notifier(TrapSettings(), MIB, TrapQueue(10), lambda uuid: 1, lambda: dropped[0])
    dropped[0] = 3
    with caplog.at_level(logging.WARNING, logger="agentx_virt.notify.rules"):
        notifier.tick()
        notifier.tick()                          # nothing new: no second line
    assert len(caplog.records) == 1 and "3 event(s) lost" in caplog.text


def test_threshold_crossed_once_cleared_at_falling_and_only_on_fresh_data() -> None:
    metric = "lvxDomainCpuUtilVcpus"
    notifier, traps = make(thresholds=(Threshold(metric, 9000, 8000),))

    def poll(util: int | None, status: str = "ok") -> list[tuple[str, Any, Any]]:
        notifier.handle(snapshot(domain(cpu_util_vcpus=util, poll_status=status)))
        return [(named(t), value(t, "lvxDomainEventValue"),
                 value(t, "lvxDomainEventThreshold")) for t in drain(traps)]

    assert poll(9500) == [("lvxDomainThresholdCrossed", 9500, 9000)]  # the first poll too
    assert poll(9900) == []                   # still above: no second trap
    assert poll(8500) == []                   # between falling and rising: still crossed
    assert poll(None) == []                   # not reported this time: no change
    assert poll(100, status="timedOut") == []  # last good values are not news
    assert poll(8000) == [("lvxDomainThresholdCleared", 8000, 8000)]
    assert poll(9000) == []                   # at rising is not above it
    assert poll(9001) == [("lvxDomainThresholdCrossed", 9001, 9000)]
    notifier.handle(snapshot(domain(cpu_util_vcpus=9800)))
    notifier.handle(snapshot(domain(cpu_util_vcpus=1)))
    crossed_then_cleared = drain(traps)
    assert [named(t) for t in crossed_then_cleared] == ["lvxDomainThresholdCleared"]
    trap = crossed_then_cleared[0]
    assert value(trap, "lvxDomainEventMetric") == metric.encode()
    assert value(trap, "lvxDomainName") == b"web-1"
    assert [vb.name[-1] for vb in trap.varbinds] == [42] * 7     # the domain's row index
    # Appended after the notification's own objects: the severity (okay for a clear) and
    # which rule it was.
    assert value(trap, "lvxDomainSeverity") == 1
    assert value(trap, "lvxDomainEventText") == b"back at or below 8000"


def test_the_alarms_of_a_domain_no_longer_listed_are_cleared() -> None:
    notifier, traps = make(thresholds=(Threshold("lvxDomainMemRssKiB", 1000, 900),))
    notifier.handle(snapshot(domain(mem_rss_kib=2000)))
    assert [named(t) for t in drain(traps)] == ["lvxDomainThresholdCrossed"]
    notifier.handle(snapshot())                         # undefined, or filtered out
    (trap,) = drain(traps)
    assert named(trap) == "lvxDomainThresholdCleared"
    assert (value(trap, "lvxDomainName"), value(trap, "lvxDomainEventValue"),
            value(trap, "lvxDomainSeverity")) == (b"web-1", 2000, 1)
    assert value(trap, "lvxDomainEventText") == b"the domain is no longer listed"
    assert notifier.alarms.active == ()
    notifier.handle(snapshot())
    assert drain(traps) == []                           # cleared once


def test_thresholds_per_metric_and_domain_and_the_kind_switch() -> None:
    thresholds = (Threshold("lvxDomainMemRssKiB", 1000, 1000),
                  Threshold("lvxDomainDataAgeSeconds", 30, 0))
    notifier, traps = make(thresholds=thresholds)
    other = "6a7e0000-0000-4000-8000-000000000002"
    notifier.handle(snapshot(domain(mem_rss_kib=2000, data_age_s=0),
                             domain(uuid=other, name="db-1", mem_rss_kib=10)))
    (trap,) = drain(traps)
    assert (named(trap), value(trap, "lvxDomainName"), value(trap, "lvxDomainEventMetric")) \
        == ("lvxDomainThresholdCrossed", b"web-1", b"lvxDomainMemRssKiB")
    quiet, traps = make(thresholds=thresholds, kinds=frozenset({"state"}))
    quiet.handle(snapshot(domain(mem_rss_kib=2000)))
    assert drain(traps) == []


def test_threshold_metrics_are_gauges_of_the_domain_table_the_builder_fills() -> None:
    columns = LIBVIRT_EXT_MIB.columns("lvxDomainEntry")
    for metric in THRESHOLD_METRICS:
        syntax = MIB.object(metric).syntax
        assert metric in columns, metric
        assert syntax is not None and (syntax.base is ValueType.GAUGE32 or
                                       syntax.tc == "CounterBasedGauge64"), metric


def test_libvirt_lost_and_restored_are_one_pair_per_outage() -> None:
    notifier, traps = make()
    up = snapshot(domain())
    down = SnapshotSeen(dataclasses.replace(
        up.snapshot, host=HostInfo(False, "test:///default", last_error="socket gone")))
    notifier.handle(up)
    assert drain(traps) == []                       # connected from the start: nothing
    for seen in (down, down, down, up, up, down, up):
        notifier.handle(seen)
    sent = drain(traps)
    assert [named(t) for t in sent] == ["lvxLibvirtLost", "lvxLibvirtRestored",
                                        "lvxLibvirtLost", "lvxLibvirtRestored"]
    lost = sent[0]
    assert [vb.name[-1] for vb in lost.varbinds] == [0, 0, 0]       # scalars
    assert (value(lost, "lvxLibvirtConnected"), value(lost, "lvxLibvirtUri"),
            value(lost, "lvxLibvirtLastError")) == (2, b"test:///default", b"socket gone")
    assert value(sent[1], "lvxLibvirtConnected") == 1


def test_an_agent_that_starts_without_libvirt_says_so_once() -> None:
    notifier, traps = make()
    down = SnapshotSeen(Snapshot(HostInfo(False, "qemu:///system", last_error="refused"),
                                 PollInfo(10)))
    notifier.handle(down)
    notifier.handle(down)
    assert [named(t) for t in drain(traps)] == ["lvxLibvirtLost"]
    notifier, traps = make(kinds=frozenset({"state"}))
    notifier.handle(down)
    assert drain(traps) == []                        # [traps] enable without "libvirt"


def test_an_excluded_domain_gets_no_index_and_no_trap() -> None:
    asked: list[str] = []

    def index_of(uuid: str) -> int:
        asked.append(uuid)
        return 42
    traps = TrapQueue(100)
    notifier = Notifier(TrapSettings(exclude=("test-*",)), MIB, traps, index_of)
    other = "6a7e0000-0000-4000-8000-000000000002"
    for record in (Lifecycle(other, "test-1", 3, 0), Lifecycle(other, "test-1", 0, 0),
                   IoError(other, "test-1", "/img.qcow2", "virtio-disk0", 1, "enospc"),
                   JobCompleted(other, "test-1", (("operation", 3),))):
        notifier.handle(record)
    assert drain(traps) == [] and asked == []
    notifier.handle(Lifecycle(UUID, "web-1", 3, 0))            # not excluded
    assert [named(t) for t in drain(traps)] == ["lvxDomainStateChange"] and asked == [UUID]


def test_a_record_the_notifier_has_no_rule_for_is_an_error() -> None:
    notifier, traps = make()
    with pytest.raises(TypeError, match="no rule for a str record"):
        notifier.handle("not a record")
    assert drain(traps) == []


def test_libvirt_mib_notifications_carry_the_state_the_event_says() -> None:
    """libvirt-snmp's libvirtGuestNotif, after LIBVIRT-EXT-MIB's trap for the same event:
    the row's UUID as instance, the event's state, the RowStatus that goes with it."""
    from agentx_virt.mib.libvirt_mib import LIBVIRT_MIB
    guest = LIBVIRT_MIB.load()
    traps = TrapQueue(100)
    notifier = Notifier(TrapSettings(families=frozenset({"LIBVIRT-EXT-MIB", "LIBVIRT-MIB"})),
                        MIB, traps, lambda uuid: 42, family_mibs={"LIBVIRT-MIB": guest})
    notifier.handle(snapshot(domain()))
    notifier.handle(Lifecycle(UUID, "web-1", 3, 0))         # suspended
    notifier.handle(Lifecycle(UUID, "web-1", 5, 1))         # stopped: destroyed
    ext, paused, _ext, stopped = drain(traps)
    assert named(ext) == "lvxDomainStateChange"
    instance = tuple(bytes.fromhex(UUID.replace("-", "")))
    assert paused.trap_oid == guest.notification("libvirtGuestNotif").oid
    by_name = {name: vb for vb in paused.varbinds for name in guest.objects
               if vb.name == guest.object(name).oid + instance}
    assert set(by_name) == {"libvirtGuestName", "libvirtGuestUUID", "libvirtGuestState",
                            "libvirtGuestRowStatus"}
    assert by_name["libvirtGuestUUID"].value == bytes(instance)
    assert (by_name["libvirtGuestState"].value, by_name["libvirtGuestRowStatus"].value) == (3, 1)
    states = [vb.value for vb in stopped.varbinds
              if vb.name[:-16] in (guest.object("libvirtGuestState").oid,
                                   guest.object("libvirtGuestRowStatus").oid)]
    assert states == [5, 2]                                  # shutoff, notInService
    only_guest = Notifier(TrapSettings(families=frozenset({"LIBVIRT-MIB"})), MIB,
                          TrapQueue(10), lambda uuid: 42, family_mibs={"LIBVIRT-MIB": guest})
    only_guest.handle(Lifecycle(UUID, "web-1", 3, 0))
    assert [t.trap_oid for t in drain(only_guest.traps)] == [
        guest.notification("libvirtGuestNotif").oid]
