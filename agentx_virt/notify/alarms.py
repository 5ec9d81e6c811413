"""Thresholds → alarms: which rule watches which domain's metric, and when it is crossed.

Pure, with the wall clock injected.  ``AlarmBook.observe`` takes one freshly polled
domain and returns the crossings and clears it caused:

* a gauge is read from the domain's row; a rate (NIC bits/s, disk bytes/s, disk
  requests/s) is the growth of the device counters since the domain's previous good
  poll over the time between the two, summed over the devices present in both (a
  counter that went back, as after a restart, gives no rate that poll);
* of the rules for one metric that apply to the domain, the most specific wins
  (``Threshold.specificity``; of equals, the last configured);
* a value above ``rising`` for ``for_polls`` polls in a row is a crossing; an alarm
  clears once the value is at or below ``falling``, or when no rule watches its
  metric any more (a reload removed or narrowed it);
* an active alarm is never raised twice: the book can start from the alarms a
  previous run left (``alarm_state.py``), so a restart sends no duplicate crossing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from agentx_virt.model.alarm import GAUGE_METRICS, LATER_GAUGES, RATE_METRICS, ActiveAlarm
from agentx_virt.model.snapshot import DomainStats, uuid_key
from agentx_virt.notify.settings import Threshold

# Rate metric -> (device list, counter field, factor): bits are bytes times 8.
_RATES: Mapping[str, tuple[str, str, int]] = {
    "nicRxBitsPerSecond": ("interfaces", "rx_bytes", 8),
    "nicTxBitsPerSecond": ("interfaces", "tx_bytes", 8),
    "diskReadBytesPerSecond": ("disks", "read_bytes", 1),
    "diskWriteBytesPerSecond": ("disks", "write_bytes", 1),
    "diskReadIops": ("disks", "read_requests", 1),
    "diskWriteIops": ("disks", "write_requests", 1),
}
assert tuple(_RATES) == RATE_METRICS
# Gauge metric -> DomainStats field.
_GAUGES: Mapping[str, str] = dict(zip(GAUGE_METRICS + LATER_GAUGES, (
    "cpu_util_vcpus", "cpu_util_host", "mem_rss_kib", "memory_current_kib",
    "memory_maximum_kib", "balloon_actual_kib", "mem_unused_kib", "mem_usable_kib",
    "mem_available_kib", "vcpus_current", "vcpus_maximum", "data_age_s", "mem_used_kib")))


@dataclass(frozen=True)
class AlarmChange:
    """A crossing (``cleared`` False) or a clear, for the notifier to send."""

    alarm: ActiveAlarm
    cleared: bool
    value: int
    threshold: int      # rising for a crossing, falling for a clear
    text: str


_Counters = dict[str, dict[str, int]]     # metric -> device target -> counter


class AlarmBook:
    def __init__(self, rules: Iterable[Threshold], active: Iterable[ActiveAlarm] = (),
                 wall: Callable[[], float] = time.time) -> None:
        self._wall = wall
        self._rules: tuple[Threshold, ...] = ()
        self._metrics: tuple[str, ...] = ()
        self._rates = False
        self._chosen: dict[tuple[str, str, str], dict[str, Threshold]] = {}
        self._active: dict[tuple[str, str], ActiveAlarm] = {
            (a.uuid, a.metric): a for a in active}
        self._pending: dict[tuple[str, str], int] = {}     # polls above rising so far
        self._last: dict[str, tuple[float, _Counters]] = {}  # uuid -> (sampled, counters)
        self._stamps: dict[str, float] = {}                  # uuid -> last sample judged
        self.reconfigure(rules)

    def reconfigure(self, rules: Iterable[Threshold]) -> None:
        """New rules (a reload); active alarms stay, and are judged by the new rules at
        the domain's next poll."""
        self._rules = tuple(rules)
        self._metrics = tuple(dict.fromkeys(r.metric for r in self._rules))
        self._rates = any(m in _RATES for m in self._metrics)
        self._chosen.clear()
        self._pending.clear()

    @property
    def watching(self) -> bool:
        """Whether any rule or alarm needs the domains' values."""
        return bool(self._rules or self._active)

    @property
    def active(self) -> tuple[ActiveAlarm, ...]:
        return tuple(self._active.values())

    def by_domain(self) -> dict[str, tuple[ActiveAlarm, ...]]:
        found: dict[str, list[ActiveAlarm]] = {}
        for alarm in self._active.values():
            found.setdefault(alarm.uuid, []).append(alarm)
        return {uuid: tuple(alarms) for uuid, alarms in found.items()}

    def rules_for(self, uuid: str, name: str, tag: str) -> Mapping[str, Threshold]:
        """The winning rule of each metric for this domain."""
        key = (uuid, name, tag)
        chosen = self._chosen.get(key)
        if chosen is None:
            best: dict[str, tuple[int, Threshold]] = {}
            for rule in self._rules:
                rank = rule.specificity(uuid, name, tag)
                if rank is not None and (rule.metric not in best or
                                         rank >= best[rule.metric][0]):
                    best[rule.metric] = (rank, rule)
            chosen = self._chosen[key] = {m: rule for m, (_, rule) in best.items()}
        return chosen

    def observe(self, d: DomainStats) -> list[AlarmChange]:
        """The crossings and clears of a freshly polled domain (poll status ok)."""
        uuid = uuid_key(d.uuid)
        if d.sampled_at is not None:
            # Snapshots repeat a domain's sample until its reader polls it again: each
            # sample counts once (``for`` counts polls, not snapshots).
            stamp = d.sampled_at.timestamp()
            if self._stamps.get(uuid) == stamp:
                return []
            self._stamps[uuid] = stamp
        rules = self.rules_for(uuid, d.name, d.partition_tag or "")
        rates = self._rates_of(uuid, d) if self._rates else {}
        changes: list[AlarmChange] = []
        for metric, rule in rules.items():
            value = rates.get(metric) if metric in _RATES else getattr(d, _GAUGES[metric])
            if isinstance(value, int):
                self._judge(uuid, d.name, metric, rule, value, changes)
        for (alarm_uuid, metric), alarm in list(self._active.items()):
            if alarm_uuid == uuid and metric not in rules:
                del self._active[(uuid, metric)]
                changes.append(AlarmChange(alarm, True, alarm.value, alarm.threshold,
                                           "no threshold watches this metric any more"))
        return changes

    def forget(self, present: Iterable[str]) -> list[ActiveAlarm]:
        """Drop what is kept for domains no longer listed; returns their alarms."""
        keep = set(present)
        for uuid in set(self._last) - keep:
            del self._last[uuid]
        for uuid in set(self._stamps) - keep:
            del self._stamps[uuid]
        self._pending = {k: v for k, v in self._pending.items() if k[0] in keep}
        gone = [a for k, a in self._active.items() if k[0] not in keep]
        for alarm in gone:
            del self._active[(alarm.uuid, alarm.metric)]
        if len(self._chosen) > 4 * (len(keep) + 1):
            self._chosen.clear()
        return gone

    def _judge(self, uuid: str, name: str, metric: str, rule: Threshold, value: int,
               changes: list[AlarmChange]) -> None:
        key = (uuid, metric)
        alarm = self._active.get(key)
        if alarm is not None:
            if value <= rule.falling:
                del self._active[key]
                changes.append(AlarmChange(replace(alarm, value=value), True, value,
                                           rule.falling, f"back at or below {rule.falling}"
                                           f"{_where(rule)}"))
            else:
                self._active[key] = replace(alarm, domain=name, value=value,
                                            threshold=rule.rising, severity=rule.severity,
                                            rule=rule.origin)
            return
        if value <= rule.rising:
            self._pending.pop(key, None)
            return
        polls = self._pending.get(key, 0) + 1
        if polls < rule.for_polls:
            self._pending[key] = polls
            return
        self._pending.pop(key, None)
        alarm = self._active[key] = ActiveAlarm(
            uuid, name, metric, value, rule.rising, rule.severity,
            datetime.fromtimestamp(self._wall(), timezone.utc), rule.origin)
        polls_text = f" for {rule.for_polls} polls" if rule.for_polls > 1 else ""
        changes.append(AlarmChange(alarm, False, value, rule.rising,
                                   f"above {rule.rising}{polls_text}{_where(rule)}"))

    def _rates_of(self, uuid: str, d: DomainStats) -> dict[str, int]:
        if d.sampled_at is None:
            return {}
        now = d.sampled_at.timestamp()
        counters: _Counters = {}
        for metric, (devices, counter, _) in _RATES.items():
            counters[metric] = {dev.target: value for dev in getattr(d, devices)
                                if isinstance(value := getattr(dev, counter), int)}
        previous = self._last.get(uuid)
        self._last[uuid] = (now, counters)
        if previous is None or now <= previous[0]:
            return {}
        seconds = now - previous[0]
        rates: dict[str, int] = {}
        for metric, (_, _, factor) in _RATES.items():
            before, after = previous[1][metric], counters[metric]
            deltas = [after[t] - before[t] for t in after.keys() & before.keys()]
            if deltas and min(deltas) >= 0:
                rates[metric] = int(sum(deltas) * factor / seconds)
        return rates


def _where(rule: Threshold) -> str:
    return f" ({rule.origin})" if rule.origin else ""


def alarm_record(alarm: ActiveAlarm) -> dict[str, Any]:
    """An alarm as JSON data (``alarm_state.py``)."""
    return {"uuid": alarm.uuid, "domain": alarm.domain, "metric": alarm.metric,
            "value": alarm.value, "threshold": alarm.threshold, "severity": alarm.severity,
            "since": alarm.since.isoformat(), "rule": alarm.rule}


def restored(record: Mapping[str, Any]) -> Optional[ActiveAlarm]:
    """An alarm from its JSON data; None when any field is missing or odd."""
    try:
        alarm = ActiveAlarm(
            uuid_key(str(record["uuid"])), str(record["domain"]), str(record["metric"]),
            int(record["value"]), int(record["threshold"]), str(record["severity"]),
            datetime.fromisoformat(str(record["since"])), str(record.get("rule", "")))
    except (KeyError, TypeError, ValueError):
        return None
    if alarm.since.tzinfo is None or alarm.metric not in _GAUGES.keys() | _RATES.keys():
        return None
    return alarm
