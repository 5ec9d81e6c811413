"""The agent, wired: the poller builds Snapshots and hands each to the sinks (the SNMP
table, then the notifier); snmpd serves the table and relays the traps.

Threads: the partitioner and the readers (libvirt), the notifier, the AgentX session
thread (the only writer to snmpd's socket), libvirt's event-loop thread, and the
main thread, which waits for a stop request or for the session to fail.
"""

from __future__ import annotations

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
from agentx_virt.app.config import Config, trap_settings
from agentx_virt.app.reload import Reloader
from agentx_virt.collector.events import EventWatcher
from agentx_virt.collector.poller import Poller
from agentx_virt.expose.sinks import FanOut
from agentx_virt.expose.snmp import SnmpSink
from agentx_virt.mib.libvirt_ext import LIBVIRT_EXT_MIB
from agentx_virt.mib.model import Mib
from agentx_virt.mib.spec import AgentStatus
from agentx_virt.mib.views import FAMILY_MIB, VIEWS
from agentx_virt.model.snapshot import Snapshot, uuid_key
from agentx_virt.notify.rules import Notifier
from agentx_virt.notify.thread import NotifierThread
from agentx_virt.snmp.domain_index import STATE_FILE, DomainIndexRegistry, StateFileError

log = logging.getLogger(__name__)

EVENT_QUEUE = 100000   # libvirt events waiting for the notifier, at most


class Agent:
    """Runs until ``stop`` is set; ``run`` returns the process exit code."""

    def __init__(self, config: Config, mib: Optional[Mib] = None,
                 reloader: Optional[Reloader] = None) -> None:
        self.config = config
        self.reloader = reloader      # SIGHUP's: the main thread runs its reloads
        self.mib = mib or LIBVIRT_EXT_MIB.load()      # the notifications' module
        # The MIBs served, in the configured order; LIBVIRT-EXT-MIB from self.mib.
        self.views = [(VIEWS[name], self.mib if VIEWS[name] is LIBVIRT_EXT_MIB
                       else VIEWS[name].load()) for name in config.mibs]
        self.store = ServedStore()
        self.traps = TrapQueue(config.trap_queue)
        self.events: queue.Queue[Any] = queue.Queue(EVENT_QUEUE)
        self.registry = DomainIndexRegistry()
        self.notifier = Notifier(trap_settings(config), self.mib, self.traps, self._index_of,
                                 lambda: self._events_dropped,
                                 family_mibs={name: VIEWS[FAMILY_MIB[name]].load()
                                              for name in config.notify
                                              if name != "LIBVIRT-EXT-MIB"})
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
        self._events_dropped = 0

    def stop(self) -> None:
        self.stop_requested.set()

    def _index_of(self, uuid: str) -> int:
        return self.registry.assign([uuid], time.time())[uuid_key(uuid)]

    def _indexes_for(self, snapshot: Snapshot) -> dict[str, int]:
        return self.registry.index_domains(snapshot.domains, time.time())

    def _status(self) -> AgentStatus:
        """The agent's own counters and health, merged into the table at publish time."""
        stats = self.traps.stats()
        return AgentStatus(
            index_state_error=self.registry.save_error, traps_sent=stats.sent,
            traps_dropped=(stats.dropped + stats.refused + self._events_dropped +
                           self.notifier.failed),
            vm_notifications="VM-MIB" in self.config.notify and "state" in self.config.traps,
            vm_bulk_notifications="VM-MIB-BULK" in self.config.notify
            and "state" in self.config.traps)

    def _event_dropped(self, record: object) -> None:
        # libvirt's event thread: count only; the notifier reports drops in the MIB.
        self._events_dropped += 1

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
        session = AgentXSession(
            SessionConfig(parse_address(config.agentx), tuple(mib.root for _, mib in self.views),
                          subtree_names=config.mibs, ident=self.mib.root,
                          description=f"agentx-virt {__version__}"),
            self.store, self.traps)
        self.session = session
        poller = Poller(config, self.sinks.publish)
        self.watcher.on_layout_change = poller.layout_changed
        session_thread = SessionThread(session).start()
        log.info("agentx-virt %s: polling %s every %g s with %d reader(s); AgentX master %s",
                 __version__, config.uri, config.interval_s, config.instances, config.agentx)
        try:
            self.watcher.start()     # events first, so no change after the first poll is missed
            self.notifier_thread.start()
            poller.start()
            while not self.stop_requested.is_set():
                if session_thread.ended.wait(0.2):
                    break
                if self.reloader is not None:
                    self.reloader.reload_if_requested()
        finally:
            poller.stop()
            self.watcher.stop()
            self.notifier_thread.stop()
            if session_thread.thread.is_alive():
                session_thread.stop()
            registry.flush()
        if session_thread.error is not None:
            log.critical("stopping: the AgentX session failed: %s", session_thread.error)
            return 1
        log.info("agentx-virt stopped")
        return 0
