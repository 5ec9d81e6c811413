"""The fan-out: every sink gets the same Snapshots; one that raises stops no other."""

from __future__ import annotations

import logging

import pytest

from agentx_virt.sinks import FanOut
from agentx_virt.snapshot import HostInfo, PollInfo, Snapshot


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
    with caplog.at_level(logging.ERROR, logger="agentx_virt.sinks"):
        for snapshot in sent:
            fan.publish(snapshot)
    assert before.seen == after.seen == sent
    (record,) = caplog.records
    assert "sink Broken failed" in record.getMessage()
    assert record.exc_info is not None and "this sink is broken" in str(record.exc_info[1])
