"""The AgentX session driver: the short socket loop around ``protocol.AgentXProtocol``.

It is the only code that touches the master's socket. One thread runs
``AgentXSession.run``, which loops over connections: each gets a new protocol
object (the states and what is legal in each are in ``protocol.py``), reads with
``poll`` and writes what the protocol returns.

A refusal of Open or Register (e.g. duplicateRegistration) is fatal:
``SessionFatal`` leaves ``run`` and the process must exit non-zero. Losing the
connection is not: the driver reconnects with capped exponential backoff (first
retry after ``backoff_first`` seconds); traps that were sent but not acknowledged
go back to the front of the queue (at-least-once delivery). On ``stop()`` it sends
Close and waits up to 1 s for its Response.
"""

from __future__ import annotations

import dataclasses
import logging
import select
import socket
import threading
import time
from typing import Callable, Optional

from agentx_virt.agentx import pdu as p
from agentx_virt.agentx.address import kernel_timeouts, peer, unreachable
from agentx_virt.agentx.constants import CloseReason, ErrorCode, error_name
from agentx_virt.agentx.errors import ConnectionLost, EncodeError, SessionFatal
from agentx_virt.agentx.protocol import (
    AgentXProtocol,
    Answered,
    EndOfStream,
    Event,
    Ignored,
    Malformed,
    MasterClosed,
    NeedData,
    Opened,
    Refused,
    Registered,
    Request,
    State,
    Stray,
    Unframeable,
    Unregistered,
)
from agentx_virt.agentx.session_config import SessionConfig
from agentx_virt.agentx.store import ServedStore
from agentx_virt.agentx.traps import Trap, TrapQueue
from agentx_virt.oid import OID, format_oid
from agentx_virt.ratelog import RateLimitedLog

log = logging.getLogger(__name__)

STILL_DOWN_LOG_INTERVAL = 60.0


class AgentXSession:
    """Connects, registers and serves ``store`` to the master until ``stop()``."""

    def __init__(
        self,
        config: SessionConfig,
        store: ServedStore,
        traps: Optional[TrapQueue] = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not config.subtrees:
            raise ValueError("an AgentX session needs at least one subtree to register")
        self.config = config
        self.store = store
        self.traps = traps if traps is not None else TrapQueue()
        self._clock = clock
        self._started = clock()
        self._stop = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._wake_fd = self._wake_r.fileno()
        self._poller = select.poll()  # replaced per connection in _conversation
        self.traps.set_waker(self.wake)
        self.serving = threading.Event()   # set while registered and answering
        self.session_id = 0
        self.connections = 0               # sessions opened since start
        self.refused: tuple[OID, ...] = ()   # subtrees the master would not register
        self._in_flight: dict[int, Trap] = {}   # Notify packetID -> its trap, unacknowledged
        self._odd = RateLimitedLog(log, clock=clock)   # stray and malformed PDUs

    # ------------------------------------------------------------ other threads

    def wake(self) -> None:
        """Make the session thread look at its queue and stop flag now (any thread)."""
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # a wake-up is already pending, or we are shutting down

    def stop(self) -> None:
        """Ask ``run`` to send Close and return (any thread)."""
        self._stop.set()
        self.wake()

    def serve(self, subtrees: tuple[OID, ...], names: tuple[str, ...]) -> None:
        """From now on serve these subtrees (any thread): the open connection registers
        the new ones and unregisters those left out, one at a time, in the same session;
        a later connection registers them from the start."""
        if not subtrees:
            raise ValueError("an AgentX session needs at least one subtree to register")
        self.config = dataclasses.replace(self.config, subtrees=subtrees,
                                          subtree_names=names)
        self.wake()

    def sys_uptime(self) -> int:
        """Hundredths of a second since this session object was made, as TimeTicks."""
        return int((self._clock() - self._started) * 100) & 0xFFFFFFFF

    # ------------------------------------------------------------ the thread

    def run(self) -> None:
        """Serve until ``stop()``.

        Raises:
            SessionFatal: the master refused Open or a registration.
        """
        delay = self.config.backoff_first
        failures = 0
        last_failure_log = float("-inf")
        try:
            while not self._stop.is_set():
                served_before = self.connections
                try:
                    sock = self.config.address.connect(self.config.connect_timeout)
                except OSError as exc:
                    problem: Optional[str] = unreachable(self.config.address, exc)
                else:
                    try:
                        self._conversation(sock)
                        problem = None
                    except (ConnectionLost, OSError) as exc:
                        problem = f"AgentX session with {self.config.address} lost: {exc}"
                    finally:
                        self.serving.clear()
                        self._requeue_unacknowledged()
                        sock.close()
                if problem is None:
                    continue                   # stopped cleanly; the loop condition ends it
                if self.connections > served_before:
                    # It was serving: come back quickly, and say so every time.
                    log.warning("%s; reconnecting", problem)
                    failures = 0
                    delay = self.config.backoff_first
                else:
                    # It never got to serve: back off, and log the first failure and then
                    # one line a minute, not one per attempt.
                    failures += 1
                    now = self._clock()
                    if failures == 1 or now - last_failure_log >= STILL_DOWN_LOG_INTERVAL:
                        log.warning("%s; retrying (attempt %d)", problem, failures)
                        last_failure_log = now
                self._sleep(delay)
                if failures:
                    delay = min(delay * 2, self.config.backoff_max)
        finally:
            self._wake_r.close()
            self._wake_w.close()

    def _sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _requeue_unacknowledged(self) -> None:
        unacked = [trap for _, trap in sorted(self._in_flight.items())]
        self._in_flight.clear()
        if unacked:
            log.info("requeued %d trap(s) the master had not acknowledged", len(unacked))
            self.traps.requeue(unacked)

    # ------------------------------------------------------------ one connection

    def _conversation(self, sock: socket.socket) -> None:
        cfg = self.config
        # Blocking, with the timeouts in the kernel: a Python timeout would add a poll()
        # before every recv and send, two of five system calls per request.
        kernel_timeouts(sock, cfg.response_timeout)
        # Registered once per connection: cheaper per request than select.select().
        self._poller = select.poll()
        self._poller.register(sock, select.POLLIN)
        self._poller.register(self._wake_fd, select.POLLIN)
        protocol = AgentXProtocol(cfg, self.sys_uptime, self._clock)
        sock.sendall(protocol.send(p.Open(
            timeout=cfg.open_timeout, id=cfg.ident, description=cfg.description.encode())))
        while True:
            if self._stop.is_set():
                self._close(sock, protocol)
                return
            if protocol.state is State.SERVING:
                self._change_subtrees(sock, protocol)
                if self.traps.waiting:
                    self._send_traps(sock, protocol)
            now = self._clock()
            late = protocol.overdue(now)
            if late:
                raise ConnectionLost(late)
            self._receive(sock, protocol, self._wait(sock, protocol, now))
            self._handle_events(sock, protocol)
            self.traps.report_drops()
            self._odd.flush()

    def _wait(self, sock: socket.socket, protocol: AgentXProtocol, now: float) -> float:
        """How long to wait for the master: until a Ping is due (sent now when it is),
        or an awaited Response is late, whichever comes first."""
        wait = self.config.response_timeout
        if protocol.state is State.SERVING:
            ping_due = protocol.ping_due()
            if now >= ping_due and not protocol.ping_awaited():
                sock.sendall(protocol.send(p.Ping()))
            elif now < ping_due:
                wait = ping_due - now
        deadline = protocol.next_deadline()
        if deadline is not None:
            wait = min(wait, deadline - now)
        return max(0.0, wait)

    def _receive(self, sock: socket.socket, protocol: AgentXProtocol, timeout: float) -> None:
        """Wait up to ``timeout`` for data and give it to the protocol."""
        data_ready = False
        for fd, _ in self._poller.poll(timeout * 1000):
            if fd == self._wake_fd:
                try:
                    self._wake_r.recv(4096)
                except BlockingIOError:
                    pass
            else:
                data_ready = True
        if data_ready:
            protocol.receive_data(sock.recv(65536))

    def _handle_events(self, sock: socket.socket, protocol: AgentXProtocol) -> None:
        while True:
            event = protocol.next_event()
            if isinstance(event, NeedData):
                return
            self._handle(sock, protocol, event)

    def _handle(self, sock: socket.socket, protocol: AgentXProtocol, event: Event) -> None:
        cfg = self.config
        if isinstance(event, Request):
            sock.sendall(protocol.answer(event.pdu, self.store.table))
        elif isinstance(event, Answered):
            self._on_answered(event)
        elif isinstance(event, Opened):
            self.session_id = event.session_id
            sock.sendall(protocol.send(p.Register(timeout=0, priority=cfg.priority,
                                                  subtree=cfg.subtrees[0])))
        elif isinstance(event, Registered) and self.serving.is_set():
            log.info("AgentX session %d now serves %s too", self.session_id,
                     self._subtree_name(event.subtree))
        elif isinstance(event, Registered):
            self._registration_answered(sock, protocol, event.remaining)
        elif isinstance(event, Refused):
            if event.subtree is None or protocol.state is State.CLOSED:
                raise SessionFatal(self._refusal(event))
            log.error("%s; the other subtrees are served", self._refusal(event))
            if not self.serving.is_set():
                self._registration_answered(sock, protocol, event.remaining)
        elif isinstance(event, Unregistered):
            if event.error:
                log.warning("the AgentX master would not unregister %s: %s",
                            format_oid(event.subtree), error_name(event.error))
            else:
                log.info("AgentX session %d no longer serves %s", self.session_id,
                         format_oid(event.subtree))
        elif isinstance(event, Malformed):
            self._odd.warning("malformed PDUs", "parse error in a PDU from the master: %s",
                              event.message)
            sock.sendall(event.reply)
        elif isinstance(event, Stray):
            self._odd.warning("stray Responses", "Response for unknown packetID %d from the "
                              "master ignored", event.packet_id)
        elif isinstance(event, Ignored):
            self._odd.warning("requests out of turn", "%s from the master while %s ignored",
                              type(event.pdu).__name__, protocol.state.value)
        else:
            self._lost(sock, event)

    def _registration_answered(self, sock: socket.socket, protocol: AgentXProtocol,
                               remaining: tuple[OID, ...]) -> None:
        """Register the next subtree, or, when all are answered, start serving."""
        cfg = self.config
        if remaining:
            sock.sendall(protocol.send(p.Register(timeout=0, priority=cfg.priority,
                                                  subtree=remaining[0])))
            return
        self.connections += 1
        self.refused = protocol.refused
        served = [self._subtree_name(s) for s in cfg.subtrees if s not in protocol.refused]
        log.info("AgentX session %d open at %s; serving %s", self.session_id,
                 peer(sock, cfg.address), ", ".join(served))
        self.serving.set()

    def _change_subtrees(self, sock: socket.socket, protocol: AgentXProtocol) -> None:
        """Register or unregister the next subtree that ``serve`` changed, if none is
        awaiting its answer."""
        if protocol.config.subtrees == self.config.subtrees or \
                protocol.registration_awaited():
            return
        register, unregister = protocol.change_subtrees(self.config.subtrees)
        if unregister:
            sock.sendall(protocol.send(p.Unregister(priority=self.config.priority,
                                                    subtree=unregister[0])))
        elif register:
            sock.sendall(protocol.send(p.Register(timeout=0, priority=self.config.priority,
                                                  subtree=register[0])))
        else:
            protocol.config = self.config     # nothing left to change on this connection

    def _subtree_name(self, subtree: OID) -> str:
        names = dict(zip(self.config.subtrees, self.config.subtree_names))
        name = names.get(subtree)
        return f"{name} ({format_oid(subtree)})" if name else format_oid(subtree)

    def _lost(self, sock: socket.socket, event: Event) -> None:
        """The connection is over: say why."""
        if isinstance(event, MasterClosed):
            raise ConnectionLost(f"the master closed session {self.session_id} "
                                 f"(reason {event.reason})")
        if isinstance(event, EndOfStream):
            raise ConnectionLost(f"the master closed the connection (while {event.during.value})")
        if isinstance(event, Unframeable):
            try:
                sock.sendall(event.close_bytes)
            except OSError:
                pass
            raise ConnectionLost(f"unparseable stream from the master: {event.message}")
        raise AssertionError(f"unhandled AgentX event {event!r}")

    def _refusal(self, event: Refused) -> str:
        address = self.config.address
        if event.subtree is None:
            return f"the AgentX master at {address} refused Open: {error_name(event.error)}"
        hint = (" (another subagent already serves it at this priority: stop that one, or "
                "leave this MIB out of [mibs] serve / --mibs)"
                if event.error == ErrorCode.DUPLICATE_REGISTRATION else "")
        return (f"the AgentX master at {address} refused to register "
                f"{self._subtree_name(event.subtree)}: {error_name(event.error)}{hint}")

    def _send_traps(self, sock: socket.socket, protocol: AgentXProtocol) -> None:
        while protocol.awaited < self.config.notify_window:
            trap = self.traps.pop()
            if trap is None:
                return
            try:
                data = protocol.send(p.Notify(varbinds=trap.notify_varbinds()))
            except EncodeError as exc:
                log.error("trap %s cannot be encoded and is refused: %s",
                          format_oid(trap.trap_oid), exc)
                self.traps.mark_refused()
                continue
            self._in_flight[protocol.last_packet_id] = trap
            sock.sendall(data)

    def _on_answered(self, event: Answered) -> None:
        trap = self._in_flight.pop(event.packet_id, None)
        if trap is not None:
            if event.error:
                self.traps.mark_refused()
                log.error("the master refused trap %s: %s", format_oid(trap.trap_oid),
                          error_name(event.error))
            else:
                self.traps.mark_sent()
        elif event.error:
            log.warning("the master answered our %s with %s", event.kind,
                        error_name(event.error))

    # ------------------------------------------------------------ shutdown

    def _close(self, sock: socket.socket, protocol: AgentXProtocol) -> None:
        if protocol.state in (State.IDLE, State.CLOSED):
            return
        try:
            sock.sendall(protocol.send(p.Close(reason=CloseReason.SHUTDOWN)))
            deadline = self._clock() + min(1.0, self.config.response_timeout)
            while protocol.state is State.CLOSING and self._clock() < deadline:
                self._receive(sock, protocol, max(0.0, deadline - self._clock()))
                while protocol.state is State.CLOSING:
                    event = protocol.next_event()
                    if isinstance(event, NeedData):
                        break
                    if isinstance(event, Answered):
                        self._on_answered(event)
                    elif isinstance(event, (MasterClosed, EndOfStream, Unframeable)):
                        self._lost(sock, event)
            if protocol.state is State.CLOSED:
                log.info("AgentX session %d closed", self.session_id)
        except (OSError, ConnectionLost) as exc:
            log.info("AgentX session %d ended while closing: %s", self.session_id, exc)
