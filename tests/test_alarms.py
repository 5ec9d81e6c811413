"""The alarm book (thresholds → crossings and clears) and its state file, without I/O
beyond a temp dir."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from agentx_virt.mib.libvirt_ext import LIBVIRT_EXT_MIB
from agentx_virt.model.alarm import ALARM_METRICS, metric_number
from agentx_virt.model.snapshot import DiskStats, DomainStats, InterfaceStats, PollStatus
from agentx_virt.notify.alarm_state import load_alarms, save_alarms
from agentx_virt.notify.alarms import AlarmBook
from agentx_virt.notify.settings import Threshold

UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"
T0 = datetime(2026, 12, 2, 12, 0, 0, tzinfo=timezone.utc)


def dom(seconds: float = 0, rx: int = 0, writes: int = 0, name: str = "cust-a-web",
        tag: str = "", **fields: Any) -> DomainStats:
    return DomainStats(uuid=UUID, name=name, partition_tag=tag, poll_status=PollStatus.OK,
                       sampled_at=T0 + timedelta(seconds=seconds),
                       interfaces=(InterfaceStats("tap0", rx_bytes=rx),),
                       disks=(DiskStats("vda", write_requests=writes),), **fields)


def seen(book: AlarmBook, d: DomainStats) -> list[tuple[str, int, int]]:
    return [("cleared" if c.cleared else "crossed", c.value, c.threshold)
            for c in book.observe(d)]


def test_the_alarm_metric_enumeration_is_the_list_the_config_accepts() -> None:
    syntax = LIBVIRT_EXT_MIB.load().object("lvxAlarmMetric").syntax
    assert syntax is not None
    labels = {number: label for label, number in syntax.enum.items()}
    for metric in ALARM_METRICS:
        label = labels[metric_number(metric)]
        assert metric.endswith(label[0].upper() + label[1:]) or metric == label


def test_a_rate_crosses_after_for_polls_and_clears_only_at_falling() -> None:
    # 5 Gb/s rising, 4 Gb/s falling, 2 polls in a row; 10 s between polls.
    book = AlarmBook([Threshold("nicRxBitsPerSecond", 5 * 10**9, 4 * 10**9, for_polls=2)],
                     wall=lambda: T0.timestamp())
    gbit_10s = 10**9 * 10 // 8          # bytes that make 1 Gb/s over 10 s
    assert seen(book, dom(0, rx=0)) == []                 # no previous sample: no rate
    assert seen(book, dom(10, rx=20 * gbit_10s)) == []    # 20 Gb/s, first poll of two
    assert seen(book, dom(20, rx=40 * gbit_10s)) == [("crossed", 20 * 10**9, 5 * 10**9)]
    assert seen(book, dom(30, rx=int(44.5 * gbit_10s))) == []  # 4.5 Gb/s: inside the hysteresis
    assert [a.value for a in book.active] == [4_500_000_000]
    assert seen(book, dom(40, rx=48 * gbit_10s)) == [("cleared", 3_500_000_000, 4 * 10**9)]
    assert seen(book, dom(50, rx=100 * gbit_10s)) == []   # above again: counting restarts
    assert seen(book, dom(60, rx=101 * gbit_10s)) == []   # one poll above, then below
    assert seen(book, dom(70, rx=200 * gbit_10s)) == []
    assert seen(book, dom(80, rx=10)) == []               # counter went back: no rate


def test_the_most_specific_rule_wins() -> None:
    rules = [Threshold("diskWriteIops", 1000, 1000, origin="everyone"),
             Threshold("diskWriteIops", 500, 500, tags=("virt-1",), origin="tag"),
             Threshold("diskWriteIops", 200, 200, names=("cust-a-*",), origin="pattern"),
             Threshold("diskWriteIops", 100, 100, names=("cust-a-db",), origin="name"),
             Threshold("diskWriteIops", 50, 50, uuids=(UUID,), origin="uuid")]
    book = AlarmBook(rules)
    chosen = [book.rules_for(UUID, "cust-a-db", "virt-1")["diskWriteIops"].origin,
              book.rules_for("0000", "cust-a-db", "virt-1")["diskWriteIops"].origin,
              book.rules_for("0000", "cust-a-web", "virt-1")["diskWriteIops"].origin,
              book.rules_for("0000", "cust-b-web", "virt-1")["diskWriteIops"].origin,
              book.rules_for("0000", "cust-b-web", "")["diskWriteIops"].origin]
    assert chosen == ["uuid", "name", "pattern", "tag", "everyone"]
    # Of equally specific rules the last configured wins.
    book = AlarmBook([Threshold("diskWriteIops", 1, 1, origin="first"),
                      Threshold("diskWriteIops", 2, 2, origin="second")])
    assert book.rules_for(UUID, "x", "")["diskWriteIops"].origin == "second"
    # A scoped rule does not touch other domains.
    book = AlarmBook([Threshold("diskWriteIops", 1, 1, names=("db-*",))])
    assert book.rules_for(UUID, "web", "virt-1") == {}


def test_write_iops_cross_and_a_reload_that_removes_the_rule_clears_the_alarm() -> None:
    book = AlarmBook([Threshold("diskWriteIops", 100, 50, severity="failure", origin="f:3")])
    seen(book, dom(0, writes=0))
    (change,) = book.observe(dom(10, writes=2000))           # 200 IOPS
    assert (change.cleared, change.alarm.severity, change.text) == (
        False, "failure", "above 100 (f:3)")
    book.reconfigure([Threshold("diskWriteIops", 500, 150)])  # moved, still above falling
    assert seen(book, dom(20, writes=4000)) == []
    assert [(a.threshold, a.severity) for a in book.active] == [(500, "warning")]
    book.reconfigure([])
    assert book.watching
    assert seen(book, dom(30, writes=6000)) == [("cleared", 200, 500)]
    assert book.active == ()
    assert not book.watching


def test_a_gauge_crosses_at_the_first_poll_and_restored_alarms_are_not_raised_again() -> None:
    rule = Threshold("lvxDomainMemRssKiB", 1000, 900)
    book = AlarmBook([rule], wall=lambda: T0.timestamp())
    assert seen(book, dom(mem_rss_kib=2000)) == [("crossed", 2000, 1000)]
    again = AlarmBook([rule], book.active)          # a restart with the saved alarms
    assert seen(again, dom(10, mem_rss_kib=2500)) == []
    assert seen(again, dom(20, mem_rss_kib=800)) == [("cleared", 800, 900)]


def test_alarms_of_domains_no_longer_listed_are_dropped() -> None:
    book = AlarmBook([Threshold("lvxDomainMemRssKiB", 1, 1)])
    seen(book, dom(mem_rss_kib=5))
    assert [a.uuid for a in book.forget(["another"])] == [UUID]
    assert book.active == ()


def test_the_state_file_round_trips_and_a_bad_one_is_reported(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    book = AlarmBook([Threshold("lvxDomainMemRssKiB", 1, 1, origin="here")],
                     wall=lambda: T0.timestamp())
    seen(book, dom(mem_rss_kib=5))
    path = tmp_path / "alarms.json"
    save_alarms(path, book.active)
    assert load_alarms(path) == book.active
    assert load_alarms(tmp_path / "missing.json") == ()
    caplog.set_level(logging.WARNING)
    for text in ("{not json", '{"version": 9, "alarms": []}', '[1, 2]'):
        path.write_text(text)
        assert load_alarms(path) == ()
    assert sum("unusable" in r.message and str(path) in r.message
               for r in caplog.records) == 3
    good = {"uuid": UUID.upper(), "domain": "d", "metric": "lvxDomainMemRssKiB", "value": 5,
            "threshold": 1, "severity": "warning", "since": "2026-12-02T12:00:00+00:00"}
    path.write_text(json.dumps({"version": 1, "alarms": [{"uuid": "x"}, good]}))
    (alarm,) = load_alarms(path)
    assert (alarm.uuid, alarm.value, alarm.since) == (UUID, 5, T0)
    assert "1 record(s) unusable" in caplog.records[-1].message


def test_a_sample_seen_again_in_a_later_snapshot_counts_once() -> None:
    book = AlarmBook([Threshold("lvxDomainMemRssKiB", 1, 1, for_polls=2)])
    assert seen(book, dom(0, mem_rss_kib=5)) == []
    assert seen(book, dom(0, mem_rss_kib=5)) == []     # the same poll, republished
    assert seen(book, dom(10, mem_rss_kib=5)) == [("crossed", 5, 1)]
