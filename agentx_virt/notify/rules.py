"""Notifications: libvirt events and poll results → LIBVIRT-EXT-MIB traps.

The rules: ``Notifier.handle`` turns one record (a libvirt event, or a new
snapshot) into traps on the AgentX session's queue, and ``Notifier.tick`` sends
what a hold-down released; the clocks are injected.  No thread here:
``notifier_thread.NotifierThread`` feeds the records in arrival order (libvirt's
event-loop thread and the poller only enqueue them), so the traps of one domain
leave in the order libvirt reported the changes; only the session thread writes
to snmpd.

What it sends:

* lvxDomainStateChange for every lifecycle event, with the new state and reason
  taken from the event itself (never queried again) and the previous state it
  knew; after the event connection was lost, the first fresh poll is compared
  with what it knew and a trap is sent for every change it missed.
* lvxDomainDefined / lvxDomainUndefined for definition changes (not a fake
  "nostate" state change).
* lvxDomainIoError (severity failure) for I/O error events.
* lvxDomainJobCompleted from the job-completed event; lvxDomainJobFailed when a
  poll finds a new failed or cancelled job in the completed slot.
* lvxDomainPollStalled (warning) once a domain's data is ``stall_cycles`` polls
  old, lvxDomainPollRecovered (okay) when it is fresh again.
* lvxLibvirtLost (failure) when a snapshot first says libvirt cannot be reached
  (at start too), lvxLibvirtRestored (okay) when one says it can again: one pair
  per outage, however many polls it lasts.
* lvxDomainThresholdCrossed / Cleared as ``alarms.py`` judges each freshly polled
  domain against the threshold rules: one trap per crossing, however many polls it
  stays there, and none again after a reload or restart; a domain no longer listed
  has its alarms cleared.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from agentx_virt.agentx.traps import Trap, TrapQueue
from agentx_virt.mib.convert import Reject
from agentx_virt.mib.model import Mib
from agentx_virt.model.alarm import ActiveAlarm
from agentx_virt.model.events import (
    EventsLost,
    IoError,
    JobCompleted,
    Lifecycle,
    Reconnected,
)
from agentx_virt.model.libvirt_names import (
    DEFINED_DETAILS,
    EVENT_DEFINED,
    EVENT_UNDEFINED,
    IO_ERROR_ACTIONS,
    UNDEFINED_DETAILS,
    detail_name,
    event_state,
    reason_name,
    severity,
)
from agentx_virt.model.record import slotted
from agentx_virt.model.selection import selected
from agentx_virt.model.snapshot import DomainStats, PollStatus, Snapshot, uuid_key
from agentx_virt.notify.alarms import AlarmBook, AlarmChange
from agentx_virt.notify.builder import TrapBuilder
from agentx_virt.notify.families import FamilyTraps
from agentx_virt.notify.sender import TrapSender
from agentx_virt.notify.settings import TrapSettings

log = logging.getLogger(__name__)

_FAILED_JOB_TYPES = {4, 5}       # virDomainJobType failed, cancelled
# The job objects in job notifications are those of the job table's completed slot.
_COMPLETED_SLOT = {"lvxJobType": "completed", "lvxJobOperation": "completed"}


@dataclass(frozen=True)
class SnapshotSeen:
    snapshot: Snapshot
    at: float = field(default_factory=time.monotonic)


@slotted
@dataclass
class _Domain:
    name: str
    state: Optional[int]
    reason: Optional[int]
    sent_at: float = float("-inf")              # last state trap (hold-down)
    pending: Optional[tuple[int, int]] = None   # a held-down state waiting to be sent
    pending_previous: tuple[Optional[int], Optional[int]] = (None, None)
    stalled: bool = False
    failed_job: Optional[tuple[Any, ...]] = None
    persistent_at: float = float("-inf")


class Notifier:
    def __init__(self, settings: TrapSettings, mib: Mib, traps: TrapQueue,
                 index_of: Callable[[str], int],
                 events_dropped: Callable[[], int] = lambda: 0,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time,
                 family_mibs: Optional[Mapping[str, Mib]] = None,
                 alarms: Sequence[ActiveAlarm] = (),
                 alarms_changed: Callable[[tuple[ActiveAlarm, ...], bool], None] =
                 lambda _active, _news: None,
                 ) -> None:
        """``clock`` is the monotonic time events are stamped with (``Lifecycle.at``) and
        hold-downs are counted in; ``wall`` the time poll starts are compared with;
        ``family_mibs`` are the other MIBs whose state notifications are sent, by name;
        ``alarms`` those a previous run left active, and ``alarms_changed`` is told the
        active ones after each snapshot that has any, and whether one was raised or
        cleared."""
        self.settings = settings
        self._clock = clock
        self._wall = wall
        self.mib = mib
        self.traps = traps
        self._index_of = index_of
        self._domains: dict[str, _Domain] = {}
        self._catch_up_after: Optional[float] = None   # wall time events resumed
        self._libvirt_connected: Optional[bool] = None  # as the last snapshot said
        self._events_dropped = events_dropped           # counted on libvirt's thread
        self._dropped_reported = 0
        self._sender = TrapSender(TrapBuilder(mib), traps, index_of, lambda: self.settings)
        self._send, self._send_host = self._sender.domain, self._sender.host
        self._family_mibs = dict(family_mibs or {})
        self._families = FamilyTraps({name: mib for name, mib in self._family_mibs.items()
                                      if name in settings.families})
        self.alarms = AlarmBook(settings.thresholds, alarms, wall)
        self._alarms_changed = alarms_changed

    def reconfigure(self, settings: TrapSettings, family_mibs: Mapping[str, Mib]) -> None:
        """A reload's trap settings and thresholds (the notifier thread, in turn with the
        records): known states, hold-downs and active alarms stay."""
        if settings.families != self.settings.families or family_mibs.keys() != \
                self._family_mibs.keys():
            self._family_mibs = dict(family_mibs)
            self._families = FamilyTraps({name: mib for name, mib in family_mibs.items()
                                          if name in settings.families})
        self.settings = settings
        self.alarms.reconfigure(settings.thresholds)

    @property
    def failed(self) -> int:
        """Notifications that could not be built (a value the MIB does not allow)."""
        return self._sender.failed

    def tick(self) -> None:
        """What is due by now without a new record: the states a hold-down held back, and
        a log line for libvirt events lost since the last one."""
        self._send_held_down()
        for trap in self._families.due(self._clock()):
            self.traps.put(trap)
        self._report_dropped_events()

    def _report_dropped_events(self) -> None:
        dropped = self._events_dropped()
        if dropped > self._dropped_reported:
            log.warning("the libvirt event queue was full: %d event(s) lost (%d since "
                        "start); counted in lvxTrapsDropped", dropped - self._dropped_reported,
                        dropped)
            self._dropped_reported = dropped

    def handle(self, record: object) -> None:
        """Turn one queued record into traps (the notifier thread; tests call it too)."""
        if isinstance(record, (Lifecycle, IoError, JobCompleted)) and not selected(
                record.name, record.uuid, self.settings.include, self.settings.exclude):
            return      # an excluded domain: no index, no trap
        if isinstance(record, Lifecycle):
            self._lifecycle(record)
        elif isinstance(record, SnapshotSeen):
            self._snapshot(record.snapshot)
        elif isinstance(record, IoError):
            self._io_error(record)
        elif isinstance(record, JobCompleted):
            self._job_completed(record)
        elif isinstance(record, EventsLost):
            pass   # no state is trusted from snapshots until Reconnected: nothing to do yet
        elif isinstance(record, Reconnected):
            self._catch_up_after = self._wall()
            log.info("libvirt events resumed; the next poll is compared with the last known "
                     "states to send the changes missed meanwhile")
        else:
            raise TypeError(f"the notifier has no rule for a {type(record).__name__} record")

    # ------------------------------------------------------------ records

    def _domain(self, uuid: str, name: str) -> _Domain:
        domain = self._domains.get(uuid)
        if domain is None:
            domain = self._domains[uuid] = _Domain(name, None, None)
        domain.name = name
        return domain

    def _lifecycle(self, event: Lifecycle) -> None:
        uuid = uuid_key(event.uuid)
        if event.event == EVENT_DEFINED:
            self._domain(uuid, event.name)
            self._send("define", "lvxDomainDefined", uuid, event.name, {
                "lvxDomainEventText": detail_name(DEFINED_DETAILS, event.detail)})
            return
        if event.event == EVENT_UNDEFINED:
            self._send("define", "lvxDomainUndefined", uuid, event.name, {
                "lvxDomainEventText": detail_name(UNDEFINED_DETAILS, event.detail)})
            known = self._domains.pop(uuid, None)
            if "define" in self.settings.kinds and self._families.enabled:
                self._send_families(event.name, lambda: self._families.deleted(
                    uuid, event.name, lambda: self._index_of(uuid),
                    (None, None) if known is None else (known.state, known.reason), event.at))
            return
        found = event_state(event.event, event.detail)
        if found is None:
            log.info("lifecycle event %d/%d of %s has no state mapping; no trap", event.event,
                     event.detail, event.name)
            return
        state, reason = found
        domain = self._domain(uuid, event.name)
        previous = (domain.state, domain.reason)
        domain.state, domain.reason = state, reason
        self._state_change(uuid, domain, state, reason, previous, event.at)

    def _state_change(self, uuid: str, domain: _Domain, state: int, reason: int,
                      previous: tuple[Optional[int], Optional[int]], at: float) -> None:
        hold = self.settings.hold_down_s
        if hold > 0 and at - domain.sent_at < hold:
            if domain.pending is None:
                domain.pending_previous = previous
            domain.pending = (state, reason)
            return
        domain.sent_at = at
        self._send_state(uuid, domain, state, reason, previous, at)

    def _send_state(self, uuid: str, domain: _Domain, state: int, reason: int,
                    previous: tuple[Optional[int], Optional[int]], at: float) -> None:
        self._send("state", "lvxDomainStateChange", uuid, domain.name, {
            "lvxDomainState": state,
            "lvxDomainStateReason": reason,
            "lvxDomainStateReasonText": reason_name(state, reason),
            "lvxDomainPreviousState": previous[0] or 0,
            "lvxDomainSeverity": severity(state),
        })
        if "state" in self.settings.kinds and self._families.enabled:
            self._send_families(domain.name, lambda: self._families.state_changed(
                uuid, domain.name, lambda: self._index_of(uuid), state, reason, previous, at))

    def _send_families(self, name: str, build: Callable[[], list[Trap]]) -> None:
        """The other served MIBs' notifications for the same change (``families.py``)."""
        try:
            traps = build()
        except (Reject, KeyError) as exc:
            self._sender.failed += 1
            log.error("cannot build a state notification for %s: %s", name, exc)
            return
        for trap in traps:
            self.traps.put(trap)

    def next_due(self) -> float:
        """Seconds until ``tick`` has something to send (at most 0.5)."""
        hold, now = self.settings.hold_down_s, self._clock()
        dues = [d.sent_at + hold - now for d in self._domains.values() if d.pending is not None]
        bulk = self._families.next_due(now)
        return max(0.0, min([0.5, *dues] + ([] if bulk is None else [bulk])))

    def _send_held_down(self) -> None:
        if self.settings.hold_down_s <= 0:
            return
        now = self._clock()
        for uuid, domain in list(self._domains.items()):
            if domain.pending is not None and now - domain.sent_at >= self.settings.hold_down_s:
                (state, reason), previous = domain.pending, domain.pending_previous
                domain.pending, domain.pending_previous = None, (None, None)
                domain.sent_at = now
                self._send_state(uuid, domain, state, reason, previous, now)

    def _io_error(self, event: IoError) -> None:
        uuid = uuid_key(event.uuid)
        domain = self._domain(uuid, event.name)
        action = detail_name(IO_ERROR_ACTIONS, event.action)
        self._send("io_error", "lvxDomainIoError", uuid, domain.name, {
            "lvxDomainEventDevice": event.alias or event.source,
            "lvxDomainEventText": f"{event.reason or 'I/O error'} on {event.source or '?'}; "
                                  f"action {action}",
            "lvxDomainSeverity": "failure",
        })

    def _job_completed(self, event: JobCompleted) -> None:
        uuid = uuid_key(event.uuid)
        stats = dict(event.stats)
        elapsed = stats.get("time_elapsed")
        self._send("job", "lvxDomainJobCompleted", uuid, event.name, {
            "lvxJobType": "completed",
            "lvxJobOperation": int(stats.get("operation", 0)),
            "lvxDomainEventText": "completed" + (f" in {elapsed} ms" if elapsed else ""),
        }, _COMPLETED_SLOT)

    def _libvirt_health(self, snapshot: Snapshot) -> None:
        host = snapshot.host
        was, self._libvirt_connected = self._libvirt_connected, host.libvirt_connected
        if host.libvirt_connected and was is False:
            self._send_host("libvirt", "lvxLibvirtRestored", {
                "lvxLibvirtConnected": True, "lvxLibvirtUri": host.uri})
        elif not host.libvirt_connected and was is not False:
            self._send_host("libvirt", "lvxLibvirtLost", {
                "lvxLibvirtConnected": False, "lvxLibvirtUri": host.uri,
                "lvxLibvirtLastError": host.last_error or "unreachable"})

    def _snapshot(self, snapshot: Snapshot) -> None:
        self._libvirt_health(snapshot)
        catch_up = (self._catch_up_after is not None and snapshot.host.libvirt_connected and
                    snapshot.poll.last_poll_start is not None and
                    snapshot.poll.last_poll_start.timestamp() > self._catch_up_after)
        now = self._clock()
        stall_s = self.settings.stall_cycles * self.settings.interval_s
        watching, news = self.alarms.watching, False     # news: an alarm raised or cleared
        for d in snapshot.domains:
            uuid = uuid_key(d.uuid)
            known = self._domains.get(uuid)
            if known is None:
                known = self._domains[uuid] = _Domain(d.name, d.state, d.state_reason,
                                                      failed_job=_failed_job(d))
                if self.alarms.watching and d.poll_status == PollStatus.OK:
                    news |= self._check_thresholds(uuid, d)   # already above: say so
                continue
            known.name = d.name
            if known.state is None and d.state is not None:
                known.state, known.reason = d.state, d.state_reason
            elif catch_up and d.poll_status == PollStatus.OK and d.state is not None and \
                    d.state != known.state:
                previous = (known.state, known.reason)
                known.state, known.reason = d.state, d.state_reason
                self._state_change(uuid, known, d.state, d.state_reason or 0, previous, now)
            self._poll_health(uuid, known, d, stall_s)
            failed = _failed_job(d)
            if failed is not None and failed != known.failed_job:
                job = next(j for j in d.jobs if j.slot == "completed")
                self._send("job", "lvxDomainJobFailed", uuid, d.name, {
                    "lvxJobType": job.type, "lvxJobOperation": job.operation or 0,
                    "lvxDomainEventText": job.error_message or "failed",
                }, _COMPLETED_SLOT)
            known.failed_job = failed
            if self.alarms.watching and d.poll_status == PollStatus.OK:
                news |= self._check_thresholds(uuid, d)
            if self.settings.persistent and known.state is not None and \
                    now - known.persistent_at >= self.settings.interval_s:
                known.persistent_at = now
                self._send_state(uuid, known, known.state, known.reason or 0,
                                 (known.state, known.reason), now)
        if catch_up:
            self._catch_up_after = None
        if snapshot.host.libvirt_connected and self.alarms.watching:
            gone = self.alarms.forget(uuid_key(d.uuid) for d in snapshot.domains)
            for alarm in gone:       # cleared, or an NMS would keep it open for ever
                self._send_alarm(alarm.uuid, alarm.domain, AlarmChange(
                    alarm, True, alarm.value, alarm.threshold, "the domain is no longer listed"))
            news |= bool(gone)
        if watching or news:     # values and rules move while alarms stay: served too
            self._alarms_changed(self.alarms.active, news)

    def _poll_health(self, uuid: str, known: _Domain, d: DomainStats, stall_s: float) -> None:
        if d.poll_status == PollStatus.TIMED_OUT and (d.data_age_s or 0) >= stall_s and \
                not known.stalled:
            known.stalled = True
            self._send("poll", "lvxDomainPollStalled", uuid, d.name, {
                "lvxDomainPollStatus": d.poll_status,
                "lvxDomainDataAgeSeconds": d.data_age_s or 0,
                "lvxDomainEventText": f"no statistics for {d.data_age_s} s "
                                      f"(severity warning)",
            })
        elif d.poll_status == PollStatus.OK and known.stalled:
            known.stalled = False
            self._send("poll", "lvxDomainPollRecovered", uuid, d.name, {
                "lvxDomainPollStatus": d.poll_status,
                "lvxDomainDataAgeSeconds": d.data_age_s or 0,
            })

    def _check_thresholds(self, uuid: str, d: DomainStats) -> bool:
        changes = self.alarms.observe(d)
        for change in changes:
            self._send_alarm(uuid, d.name, change)
        return bool(changes)

    def _send_alarm(self, uuid: str, name: str, change: AlarmChange) -> None:
        notification = ("lvxDomainThresholdCleared" if change.cleared
                        else "lvxDomainThresholdCrossed")
        self._send("threshold", notification, uuid, name, {
            "lvxDomainEventMetric": change.alarm.metric,
            "lvxDomainEventValue": change.value,
            "lvxDomainEventThreshold": change.threshold,
            "lvxDomainSeverity": "okay" if change.cleared else change.alarm.severity,
            "lvxDomainEventText": change.text,
        }, extra=("lvxDomainSeverity", "lvxDomainEventText"))

def _failed_job(d: DomainStats) -> Optional[tuple[Any, ...]]:
    for job in d.jobs:
        if job.slot == "completed" and job.type in _FAILED_JOB_TYPES:
            return (job.type, job.operation, job.time_elapsed_ms, job.error_message)
    return None
