"""Where snapshots go: the fan-out to the sinks, and the publisher that coalesces builds."""

from __future__ import annotations

import logging
import threading

import pytest

from agentx_virt.collector.publisher import LatestPublisher
from agentx_virt.expose.sinks import FanOut
from agentx_virt.expose.snmp import SnmpSink
from agentx_virt.model.snapshot import HostInfo, PollInfo, Snapshot

from .conftest import wait_for


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Snapshot] = []

    def publish(self, snapshot: Snapshot) -> None:
        self.seen.append(snapshot)


class Broken:
    def publish(self, snapshot: Snapshot) -> None:
        raise RuntimeError("this sink is broken")


def snapshots(count: int) -> list[Snapshot]:
    return [Snapshot(HostInfo(True, "test:///default"), PollInfo(n)) for n in range(count)]


def test_two_sinks_receive_the_same_snapshots_in_order() -> None:
    first, second = Recorder(), Recorder()
    fan = FanOut([first, second])
    sent = snapshots(3)
    for snapshot in sent:
        fan.publish(snapshot)
    assert first.seen == second.seen == sent
    assert all(a is b for a, b in zip(first.seen, second.seen))     # the same objects


def test_a_sink_that_raises_does_not_stop_the_others_and_is_logged_once(
        caplog: pytest.LogCaptureFixture) -> None:
    before, after = Recorder(), Recorder()
    fan = FanOut([before, Broken(), after])
    sent = snapshots(4)
    with caplog.at_level(logging.ERROR, logger="agentx_virt.expose.sinks"):
        for snapshot in sent:
            fan.publish(snapshot)
    assert before.seen == after.seen == sent
    (record,) = caplog.records
    assert "sink Broken failed" in record.getMessage()
    assert record.exc_info is not None and "this sink is broken" in str(record.exc_info[1])


def test_requests_made_while_a_snapshot_is_built_coalesce_into_one_more_build() -> None:
    state = [0]                           # what the collector knows, as a number
    built: list[int] = []
    delivered: list[Snapshot] = []
    release = threading.Event()

    def build() -> Snapshot:
        built.append(state[0])
        return Snapshot(HostInfo(True, "test:///default"), PollInfo(state[0]))

    def deliver(snapshot: Snapshot) -> None:
        delivered.append(snapshot)
        release.wait(10)                  # a slow sink: the first build holds the thread

    publisher = LatestPublisher(build, deliver)
    publisher.start()
    try:
        publisher.request()
        wait_for(lambda: len(delivered) == 1)
        for n in range(1, 51):            # fifty readers finish while it is busy
            state[0] = n
            publisher.request()
        release.set()
        wait_for(lambda: len(delivered) == 2)
    finally:
        publisher.stop()
    assert built == [0, 50]               # one more build, of the latest state
    assert [s.poll.interval_s for s in delivered] == [0, 50]


def test_before_start_a_request_publishes_at_once_on_the_callers_thread() -> None:
    delivered: list[str] = []
    publisher = LatestPublisher(
        lambda: Snapshot(HostInfo(True, "test:///default"), PollInfo(1)),
        lambda _snapshot: delivered.append(threading.current_thread().name))
    publisher.request()
    publisher.request()
    assert delivered == [threading.current_thread().name] * 2


def test_dump_is_a_sink_beside_the_others() -> None:
    """The dump sink prints what it gets, each domain at the index it is served at."""
    import io
    import json

    from agentx_virt.expose.dump import DumpSink

    from .snapshots import INDEXES, full_snapshot
    out = io.StringIO()
    recorder = Recorder()
    FanOut([DumpSink(out, "json", lambda _s: INDEXES), recorder]).publish(full_snapshot())
    printed = json.loads(out.getvalue())
    assert recorder.seen == [full_snapshot()]
    assert {d["uuid"]: d["index"] for d in printed["domains"]} == {
        d.uuid: INDEXES[d.uuid.lower()] for d in full_snapshot().domains}
    with pytest.raises(ValueError, match="unknown dump format 'xml'"):
        DumpSink(out, "xml", lambda _s: INDEXES)


def test_the_first_table_waits_for_every_domains_first_poll(
        caplog: pytest.LogCaptureFixture) -> None:
    from agentx_virt.agentx.store import ServedStore
    from agentx_virt.mib.libvirt_ext import LIBVIRT_EXT_MIB
    from agentx_virt.model.snapshot import DomainStats, PollStatus

    now = [0.0]
    store = ServedStore()
    sink = SnmpSink(store, [(LIBVIRT_EXT_MIB, LIBVIRT_EXT_MIB.load())],
                    lambda s: {d.uuid: n for n, d in enumerate(s.domains, 1)},
                    first_wait_s=10, clock=lambda: now[0])
    host = HostInfo(True, "test:///default")
    a = DomainStats("6a7e0000-0000-4000-8000-000000000001", "a", poll_status=PollStatus.OK)
    b = DomainStats("6a7e0000-0000-4000-8000-000000000002", "b")          # not polled yet
    sink.publish(Snapshot(host, PollInfo(5), (a, b)))
    assert not serving(sink) and len(store.table.varbinds) == 0
    now[0] = 9.9
    sink.publish(Snapshot(host, PollInfo(5), (a, b)))
    assert not serving(sink)
    timed_out = DomainStats(b.uuid, "b", poll_status=PollStatus.TIMED_OUT)
    sink.publish(Snapshot(host, PollInfo(5), (a, timed_out)))     # polled: at once
    assert serving(sink) and sink.all_polled.is_set() and len(store.table.varbinds) > 0

    late = SnmpSink(ServedStore(), sink.views, lambda s: {d.uuid: 1 for d in s.domains},
                    first_wait_s=10, clock=lambda: now[0])
    late.publish(Snapshot(host, PollInfo(5), (b,)))
    now[0] = 20.0
    with caplog.at_level(logging.WARNING):
        late.publish(Snapshot(host, PollInfo(5), (b,)))      # the wait is bounded
    assert serving(late) and not late.all_polled.is_set()
    assert "1 of 1 domains not polled yet after 10 s" in caplog.text
    empty = SnmpSink(ServedStore(), sink.views, lambda s: {}, first_wait_s=10, clock=lambda: now[0])
    empty.publish(Snapshot(HostInfo(False, "qemu:///system"), PollInfo(5)))
    assert serving(empty)                       # libvirt lists nothing: the scalars at once


def serving(sink: SnmpSink) -> bool:
    """Whether the sink has swapped its first table in (a call, so that mypy does not
    keep a narrowed value across publish)."""
    return sink.serving
