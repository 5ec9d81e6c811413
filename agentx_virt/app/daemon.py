"""The agent, wired: the poller builds Snapshots and hands each to the sinks (the SNMP
table, then the notifier); snmpd serves the table and relays the traps.

Threads: the partitioner and the readers (libvirt), the notifier, the AgentX session
thread (the only writer to snmpd's socket), libvirt's event-loop thread, and the
main thread, which waits for a stop request or for the session to fail, runs
reloads (``apply``) and tells systemd how the agent is.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from typing import Any, Optional

from agentx_virt import __version__
from agentx_virt.agentx.address import parse_address
from agentx_virt.agentx.session import AgentXSession
from agentx_virt.agentx.session_config import SessionConfig
from agentx_virt.agentx.session_thread import SessionThread
from agentx_virt.agentx.store import ServedStore
from agentx_virt.agentx.traps import TrapQueue
from agentx_virt.app.config import Config, changed_settings, trap_settings
from agentx_virt.app.reload import Reloader, ReloadStatus
from agentx_virt.app.systemd import Systemd, monotonic_usec
from agentx_virt.collector.events import EventWatcher
from agentx_virt.collector.poller import Poller
from agentx_virt.expose.sinks import FanOut
from agentx_virt.expose.snmp import SnmpSink
from agentx_virt.mib.convert import Reject
from agentx_virt.mib.libvirt_ext import LIBVIRT_EXT_MIB
from agentx_virt.mib.model import Mib
from agentx_virt.mib.spec import AgentStatus, MibSpec
from agentx_virt.mib.views import FAMILY_MIB, VIEWS
from agentx_virt.model.alarm import ActiveAlarm
from agentx_virt.model.snapshot import Snapshot, uuid_key
from agentx_virt.notify.alarm_state import ALARM_FILE, load_alarms, save_alarms
from agentx_virt.notify.builder import TrapBuilder
from agentx_virt.notify.rules import Notifier
from agentx_virt.notify.thread import NotifierThread
from agentx_virt.snmp.domain_index import STATE_FILE, DomainIndexRegistry, StateFileError

log = logging.getLogger(__name__)

EVENT_QUEUE = 100000   # libvirt events waiting for the notifier, at most
RESTART_ONLY = ("[agent] state_dir",)   # settings a reload cannot apply


class Agent:
    """Runs until ``stop`` is set; ``run`` returns the process exit code."""

    def __init__(self, config: Config, mib: Optional[Mib] = None,
                 reloader: Optional[Reloader] = None, systemd: Optional[Systemd] = None
                 ) -> None:
        self.config = config
        self.reloader = reloader      # SIGHUP's: the main thread runs its reloads
        if reloader is not None:
            reloader.apply, reloader.refused = self.apply, self._reload_refused
        self.systemd = systemd or Systemd({})
        self.mib = mib or LIBVIRT_EXT_MIB.load()      # the notifications' module
        self.views = self._views(config)
        self.store = ServedStore()
        self.traps = TrapQueue(config.trap_queue)
        self.events: queue.Queue[Any] = queue.Queue(EVENT_QUEUE)
        self.registry = DomainIndexRegistry()
        self._alarm_path = config.state_dir / ALARM_FILE
        self._alarm_save_failed = False
        self.notifier = Notifier(trap_settings(config), self.mib, self.traps, self._index_of,
                                 lambda: self._events_dropped,
                                 family_mibs=self._family_mibs(config),
                                 alarms=load_alarms(self._alarm_path),
                                 alarms_changed=self._alarms_changed)
        self.alarms: dict[str, tuple[ActiveAlarm, ...]] = self.notifier.alarms.by_domain()
        self.notifier_thread = NotifierThread(self.notifier, self.events)
        # The first table waits for every domain's first poll, which a reader's first
        # cycle gives within its interval: two intervals, 30 s to 300 s, bound the wait.
        self.publisher = SnmpSink(self.store, self.views, self._indexes_for, self._status,
                                  first_wait_s=min(300.0, max(30.0, 2 * config.interval_s)))
        # The table first: a trap never names a row the table does not serve yet.
        self.sinks = FanOut([self.publisher, self.notifier_thread])
        self.watcher = EventWatcher(config.uri, self.events, on_overflow=self._event_dropped)
        self.stop_requested = threading.Event()
        self.session: Optional[AgentXSession] = None
        self.session_thread: Optional[SessionThread] = None
        self.poller: Optional[Poller] = None
        self._events_dropped = 0

    def _views(self, config: Config) -> list[tuple[MibSpec, Mib]]:
        """The MIBs served, in the configured order; LIBVIRT-EXT-MIB from self.mib."""
        return [(VIEWS[name], self.mib if VIEWS[name] is LIBVIRT_EXT_MIB
                 else VIEWS[name].load()) for name in config.mibs]

    @staticmethod
    def _family_mibs(config: Config) -> dict[str, Mib]:
        return {name: VIEWS[FAMILY_MIB[name]].load() for name in config.notify
                if name != "LIBVIRT-EXT-MIB"}

    def stop(self) -> None:
        self.stop_requested.set()

    def _index_of(self, uuid: str) -> int:
        return self.registry.assign([uuid], time.time())[uuid_key(uuid)]

    def _indexes_for(self, snapshot: Snapshot) -> dict[str, int]:
        return self.registry.index_domains(snapshot.domains, time.time())

    def _status(self) -> AgentStatus:
        """The agent's own counters and health, merged into the table at publish time."""
        stats = self.traps.stats()
        reload = self.reloader.status if self.reloader is not None else None
        return AgentStatus(
            index_state_error=self.registry.save_error, traps_sent=stats.sent,
            traps_dropped=(stats.dropped + stats.refused + self._events_dropped +
                           self.notifier.failed),
            vm_notifications="VM-MIB" in self.config.notify and "state" in self.config.traps,
            vm_bulk_notifications="VM-MIB-BULK" in self.config.notify
            and "state" in self.config.traps,
            config_loaded_at=reload.loaded_at if reload else None,
            config_reloads=reload.reloads if reload else 0,
            config_reload_failures=reload.failures if reload else 0,
            config_last_error=reload.last_error if reload else "",
            alarms=self.alarms)

    def _event_dropped(self, record: object) -> None:
        # libvirt's event thread: count only; the notifier reports drops in the MIB.
        self._events_dropped += 1

    def _alarms_changed(self, active: tuple[ActiveAlarm, ...], news: bool) -> None:
        """The notifier thread: the active alarms, served from the next table; when one
        was raised or cleared (``news``) they are saved and the table built at once."""
        by_domain: dict[str, list[ActiveAlarm]] = {}
        for alarm in active:
            by_domain.setdefault(alarm.uuid, []).append(alarm)
        self.alarms = {uuid: tuple(alarms) for uuid, alarms in by_domain.items()}
        if not news:
            return
        try:
            save_alarms(self._alarm_path, active)
            self._alarm_save_failed = False
        except OSError as exc:
            if not self._alarm_save_failed:
                log.error("cannot save the active alarms to %s (%s): after a restart a "
                          "crossing may be sent again", self._alarm_path, exc)
            self._alarm_save_failed = True
        if self.poller is not None:
            self.poller.republish()

    # ------------------------------------------------------------ reload

    def apply(self, old: Config, new: Config) -> tuple[Config, list[str]]:
        """Apply a valid reloaded configuration (the main thread); returns the one in
        force and the settings that wait for a restart."""
        changed = set(changed_settings(old, new))
        later = [name for name in RESTART_ONLY if name in changed]
        new = dataclasses.replace(new, state_dir=old.state_dir) if later else new
        logging.getLogger().setLevel(new.log_level)
        self.traps.capacity = new.trap_queue
        if new.mibs != old.mibs:
            self.views = self._views(new)
            self.publisher.views = tuple(self.views)
        if (new.traps, new.persistent_traps, new.hold_down_s, new.stall_cycles,
                new.interval_s, new.thresholds, new.include, new.exclude, new.notify) != (
                old.traps, old.persistent_traps, old.hold_down_s, old.stall_cycles,
                old.interval_s, old.thresholds, old.include, old.exclude, old.notify):
            if not self.notifier_thread.reconfigure(trap_settings(new), self._family_mibs(new)):
                log.error("reload: the notifier's queue stayed full; its trap settings and "
                          "thresholds stay as they were")
        self.config = new
        if self.poller is not None:
            self.poller.reconfigure(new)
            self.poller.republish()
        if new.uri != old.uri:
            self.watcher.stop()
            self.watcher = EventWatcher(new.uri, self.events, on_overflow=self._event_dropped)
            if self.poller is not None:
                self.watcher.on_layout_change = self.poller.layout_changed
            self.watcher.start()
        if new.agentx != old.agentx:
            self._open_session(new)
        elif new.mibs != old.mibs and self.session is not None:
            self.session.serve(tuple(mib.root for _, mib in self.views), new.mibs)
        return new, later

    def _reload_refused(self, status: ReloadStatus) -> None:
        """lvxConfigReloadFailed, and the status scalars served at once."""
        if "config" in self.config.traps and "LIBVIRT-EXT-MIB" in self.config.notify:
            try:
                self.traps.put(TrapBuilder(self.mib).host_trap("lvxConfigReloadFailed", {
                    "lvxConfigReloadFailures": status.failures,
                    "lvxConfigLastError": status.last_error}))
            except Reject as exc:
                log.error("cannot build lvxConfigReloadFailed: %s", exc)
        if self.poller is not None:
            self.poller.republish()

    def _open_session(self, config: Config) -> None:
        """A session with the master at ``config.agentx``; an open one is closed first
        (its unacknowledged traps go back to the queue the new one sends)."""
        if self.session_thread is not None and self.session_thread.thread.is_alive():
            log.info("reload: leaving the AgentX master for %s", config.agentx)
            try:
                self.session_thread.stop()
            except RuntimeError as exc:     # its thread is a daemon: it ends with us
                log.error("reload: %s; opening the new session anyway", exc)
        self.session = AgentXSession(
            SessionConfig(parse_address(config.agentx), tuple(mib.root for _, mib in self.views),
                          subtree_names=config.mibs, ident=self.mib.root,
                          description=f"agentx-virt {__version__}"),
            self.store, self.traps)
        self.session_thread = SessionThread(self.session).start()

    # ------------------------------------------------------------ running

    def _tell_systemd(self, ready: bool) -> bool:
        """READY=1 once the first table is served, STATUS= and the watchdog; returns
        whether READY=1 has been sent."""
        systemd = self.systemd
        if not systemd.enabled:
            return ready
        if not ready and self.publisher.serving:
            systemd.notify(READY=1, STATUS="serving")
            ready = True
        now = time.monotonic()
        session = self.session_thread
        healthy = (self.poller is not None and self.poller.healthy(now) and
                   session is not None and session.thread.is_alive())
        systemd.watchdog(healthy, now)
        if ready:
            systemd.status(self._status_line())
        return ready

    def _status_line(self) -> str:
        snapshot = self.publisher.last_snapshot
        if snapshot is None:
            return "waiting for the first poll"
        start = snapshot.poll.last_poll_start
        serving = self.session is not None and self.session.serving.is_set()
        return (f"{len(snapshot.domains)} domains, last poll "
                f"{start.strftime('%H:%M:%S') if start else 'none'}, "
                f"{'serving snmpd' if serving else 'not connected to snmpd'}")

    def run(self) -> int:
        config = self.config
        state_path = config.state_dir / STATE_FILE
        try:
            registry = DomainIndexRegistry.load(state_path)
            registry.save()       # the directory takes writes: indexes can stay stable
        except StateFileError as exc:
            log.critical("%s: without it domain indexes could not stay stable across "
                         "restarts; fix the state directory (--state-dir, [agent] "
                         "state_dir) and start again", exc)
            return 1
        self.registry = registry
        self.poller = poller = Poller(config, self.sinks.publish)
        self.watcher.on_layout_change = poller.layout_changed
        self._open_session(config)
        log.info("agentx-virt %s: polling %s every %g s with %d reader(s); AgentX master %s",
                 __version__, config.uri, config.interval_s, config.instances, config.agentx)
        ready = False
        try:
            self.watcher.start()     # events first, so no change after the first poll is missed
            self.notifier_thread.start()
            poller.start()
            while not self.stop_requested.is_set():
                assert self.session_thread is not None
                if self.session_thread.ended.wait(0.2):
                    break
                if self.reloader is not None and self.reloader.requested.is_set():
                    self.systemd.notify(RELOADING=1, MONOTONIC_USEC=monotonic_usec())
                    self.reloader.reload_if_requested()
                    if ready:
                        self.systemd.notify(READY=1)
                ready = self._tell_systemd(ready)
        finally:
            self.systemd.notify(STOPPING=1)
            poller.stop()
            self.watcher.stop()
            self.notifier_thread.stop()
            if self.session_thread is not None and self.session_thread.thread.is_alive():
                self.session_thread.stop()
            registry.flush()
            self.systemd.close()
        error = self.session_thread.error if self.session_thread is not None else None
        if error is not None:
            log.critical("stopping: the AgentX session failed: %s", error)
            return 1
        log.info("agentx-virt stopped")
        return 0
