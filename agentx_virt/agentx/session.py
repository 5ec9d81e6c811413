"""The AgentX session driver: the only code that touches the master's socket.

Theory of operation
-------------------
One thread runs ``AgentXSession.run``.  It loops over connections::

    DISCONNECTED --connect ok--> OPENING --Open ok--> REGISTERING --all ok--> SERVING
         ^                          |                      |                     |
         +---- lost (EOF, reset, Close from master, Ping or response timeout) --+
    SERVING --stop()--> CLOSING (Close sent, Response awaited ≤ 1 s) --> done

What is legal where:

* OPENING: we send Open and accept only its Response; nothing is registered,
  so the master cannot send requests yet.
* REGISTERING: we send one Register per subtree and wait for each Response;
  requests for subtrees already registered may arrive and are served.
* SERVING: Get/GetNext/GetBulk are answered from the table read once per
  request; TestSet is refused notWritable (read-only agent); CleanupSet gets
  no answer; Notify and Ping go out and their Responses are matched by
  packetID; a Close from the master ends the connection.

A refusal of Open or Register (e.g. duplicateRegistration) is fatal:
``SessionFatal`` leaves ``run`` and the process must exit non-zero.  Losing the
connection is not: the driver reconnects with capped exponential backoff
(first retry after ``backoff_first`` seconds) and a reconnect resets the
session ID, packet IDs, decoder and pending requests; traps that were sent but
not acknowledged go back to the front of the queue (at-least-once delivery).
"""

from __future__ import annotations

import logging
import select
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

from agentx_virt.agentx import pdu as p
from agentx_virt.agentx.constants import CloseReason, ErrorCode, error_name
from agentx_virt.agentx.decoder import Decoder
from agentx_virt.agentx.encoder import encode
from agentx_virt.agentx.errors import (
    ConnectionLost,
    EncodeError,
    FramingError,
    MalformedPDU,
    SessionFatal,
)
from agentx_virt.agentx.responder import encoded_answer
from agentx_virt.agentx.session_config import SessionConfig
from agentx_virt.agentx.store import ServedStore
from agentx_virt.agentx.traps import Trap, TrapQueue
from agentx_virt.oid import format_oid
from agentx_virt.ratelog import RateLimitedLog

log = logging.getLogger(__name__)

STILL_DOWN_LOG_INTERVAL = 60.0


@dataclass
class _Pending:
    kind: str
    deadline: float
    trap: Optional[Trap] = None


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
        self._packet_id = 0
        self._pending: dict[int, _Pending] = {}
        self._last_rx = 0.0
        self._odd = RateLimitedLog(log, clock=clock)   # stray and malformed PDUs
        self._backlog: list[p.PDU] = []   # received with an awaited Response, not yet handled

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
                    problem: Optional[str] = (
                        f"cannot reach the AgentX master at {self.config.address} ({exc})")
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

    def _next_packet_id(self) -> int:
        self._packet_id = (self._packet_id + 1) & 0xFFFFFFFF
        return self._packet_id

    def _requeue_unacknowledged(self) -> None:
        unacked = [item.trap for _, item in sorted(self._pending.items())
                   if item.trap is not None]
        self._pending.clear()
        if unacked:
            log.info("requeued %d trap(s) the master had not acknowledged", len(unacked))
            self.traps.requeue(unacked)

    # ------------------------------------------------------------ one connection

    def _conversation(self, sock: socket.socket) -> None:
        cfg = self.config
        sock.settimeout(cfg.response_timeout)
        # Registered once per connection: cheaper per request than select.select().
        self._poller = select.poll()
        self._poller.register(sock, select.POLLIN)
        self._poller.register(self._wake_fd, select.POLLIN)
        decoder = Decoder()
        self._packet_id = 0
        self._pending.clear()
        self._backlog.clear()
        self._last_rx = self._clock()

        opened = self._transact(sock, decoder, p.Open(
            timeout=cfg.open_timeout, id=cfg.ident, description=cfg.description.encode(),
            packet_id=self._next_packet_id()), "Open")
        if opened.error:
            raise SessionFatal(f"the AgentX master at {cfg.address} refused Open: "
                               f"{error_name(opened.error)}")
        self.session_id = opened.session_id
        for subtree in cfg.subtrees:
            registered = self._transact(sock, decoder, p.Register(
                session_id=self.session_id, packet_id=self._next_packet_id(),
                timeout=0, priority=cfg.priority, subtree=subtree), "Register")
            if registered.error:
                hint = (" (another subagent already serves it at this priority)"
                        if registered.error == ErrorCode.DUPLICATE_REGISTRATION else "")
                raise SessionFatal(f"the AgentX master at {cfg.address} refused to register "
                                   f"{format_oid(subtree)}: {error_name(registered.error)}{hint}")
        self.connections += 1
        log.info("AgentX session %d open at %s; serving %s", self.session_id, cfg.address,
                 ", ".join(format_oid(s) for s in cfg.subtrees))
        self.serving.set()
        backlog, self._backlog = self._backlog, []
        for pdu in backlog:
            self._dispatch(sock, pdu)
        self._serve(sock, decoder)

    def _transact(self, sock: socket.socket, decoder: Decoder, request: p.PDU,
                  what: str) -> p.Response:
        """Send a request and wait for its Response, serving what arrives meanwhile."""
        sock.sendall(encode(request))
        deadline = self._clock() + self.config.response_timeout
        while True:
            # What arrives before the awaited Response is handled now; what arrives with
            # or after it waits in the backlog, so that a Close right behind the last
            # Register Response ends a session that was registered (no backoff).
            pdus = self._receive(sock, decoder, deadline - self._clock(), what)
            for k, pdu in enumerate(pdus):
                if isinstance(pdu, p.Response) and pdu.packet_id == request.packet_id:
                    self._backlog.extend(pdus[k + 1:])
                    return pdu
                self._dispatch(sock, pdu)
            if self._clock() >= deadline:
                raise ConnectionLost(f"no answer to {what} within "
                                     f"{self.config.response_timeout:g} s")

    def _receive(self, sock: socket.socket, decoder: Decoder, timeout: float,
                 what: str) -> list[p.PDU]:
        """Wait up to ``timeout`` for data; return the whole PDUs it completes."""
        data_ready = False
        for fd, _ in self._poller.poll(max(0.0, timeout) * 1000):
            if fd == self._wake_fd:
                try:
                    self._wake_r.recv(4096)
                except BlockingIOError:
                    pass
            else:
                data_ready = True
        if not data_ready:
            return []
        data = sock.recv(65536)
        if not data:
            raise ConnectionLost(f"the master closed the connection (while {what})")
        self._last_rx = self._clock()
        decoder.feed(data)
        pdus: list[p.PDU] = []
        while True:
            try:
                pdu = decoder.next_pdu()
            except MalformedPDU as exc:
                self._odd.warning("malformed PDUs", "parse error in a PDU from the master: %s",
                                  exc)
                sock.sendall(encode(p.Response(
                    session_id=exc.session_id, transaction_id=exc.transaction_id,
                    packet_id=exc.packet_id, big_endian=exc.big_endian,
                    sys_uptime=self.sys_uptime(), error=ErrorCode.PARSE_ERROR)))
                continue
            except FramingError as exc:
                self._send_close(sock, CloseReason.PARSE_ERROR)
                raise ConnectionLost(f"unparseable stream from the master: {exc}") from None
            if pdu is None:
                return pdus
            pdus.append(pdu)

    def _serve(self, sock: socket.socket, decoder: Decoder) -> None:
        cfg = self.config
        traps = self.traps
        while True:
            if self._stop.is_set():
                self._close(sock, decoder)
                return
            if traps.waiting:
                self._send_traps(sock)
            now = self._clock()
            ping_due = self._last_rx + cfg.ping_interval
            if self._pending:
                self._check_deadlines(now)
            if now >= ping_due and not any(i.kind == "Ping" for i in self._pending.values()):
                self._send_request(sock, p.Ping(session_id=self.session_id,
                                                packet_id=self._next_packet_id()), "Ping")
            wait = ping_due - now if now < ping_due else cfg.response_timeout
            if self._pending:
                wait = min(wait, min(i.deadline for i in self._pending.values()) - now)
            for pdu in self._receive(sock, decoder, wait, "serving"):
                self._dispatch(sock, pdu)
            traps.report_drops()
            self._odd.flush()

    def _check_deadlines(self, now: float) -> None:
        for item in self._pending.values():
            if now >= item.deadline:
                raise ConnectionLost(f"the master did not answer a {item.kind} within "
                                     f"{self.config.response_timeout:g} s")

    def _send_request(self, sock: socket.socket, request: p.PDU, kind: str,
                      trap: Optional[Trap] = None) -> None:
        """Send a request whose Response is awaited; raises EncodeError before sending."""
        data = encode(request)
        self._pending[request.packet_id] = _Pending(
            kind, self._clock() + self.config.response_timeout, trap)
        sock.sendall(data)

    def _send_traps(self, sock: socket.socket) -> None:
        while len(self._pending) < self.config.notify_window:
            trap = self.traps.pop()
            if trap is None:
                return
            notify = p.Notify(session_id=self.session_id, packet_id=self._next_packet_id(),
                              varbinds=trap.notify_varbinds())
            try:
                self._send_request(sock, notify, "Notify", trap)
            except EncodeError as exc:
                log.error("trap %s cannot be encoded and is refused: %s",
                          format_oid(trap.trap_oid), exc)
                self.traps.mark_refused()

    def _dispatch(self, sock: socket.socket, pdu: p.PDU) -> None:
        if isinstance(pdu, p.Response):
            self._on_response(pdu)
            return
        if isinstance(pdu, p.Close):
            raise ConnectionLost(f"the master closed session {self.session_id} "
                                 f"(reason {pdu.reason})")
        sock.sendall(self._answer(pdu))

    def _answer(self, request: p.PDU) -> bytes:
        """The encoded answer to one request (see ``responder.encoded_answer``)."""
        return encoded_answer(request, self.store.table, self.sys_uptime())

    def _on_response(self, response: p.Response) -> None:
        item = self._pending.pop(response.packet_id, None)
        if item is None:
            self._odd.warning("stray Responses", "Response for unknown packetID %d from the "
                              "master ignored", response.packet_id)
            return
        if item.kind == "Notify" and item.trap is not None:
            if response.error:
                self.traps.mark_refused()
                log.error("the master refused trap %s: %s", format_oid(item.trap.trap_oid),
                          error_name(response.error))
            else:
                self.traps.mark_sent()
        elif response.error:
            log.warning("the master answered our %s with %s", item.kind,
                        error_name(response.error))

    # ------------------------------------------------------------ shutdown

    def _send_close(self, sock: socket.socket, reason: CloseReason) -> None:
        try:
            sock.sendall(encode(p.Close(session_id=self.session_id,
                                        packet_id=self._next_packet_id(), reason=reason)))
        except OSError:
            pass

    def _close(self, sock: socket.socket, decoder: Decoder) -> None:
        close = p.Close(session_id=self.session_id, packet_id=self._next_packet_id(),
                        reason=CloseReason.SHUTDOWN)
        try:
            sock.sendall(encode(close))
            deadline = self._clock() + min(1.0, self.config.response_timeout)
            while self._clock() < deadline:
                for pdu in self._receive(sock, decoder, deadline - self._clock(), "closing"):
                    if isinstance(pdu, p.Response) and pdu.packet_id == close.packet_id:
                        log.info("AgentX session %d closed", self.session_id)
                        return
                    if isinstance(pdu, p.Response):
                        self._on_response(pdu)
        except (OSError, ConnectionLost) as exc:
            log.info("AgentX session %d ended while closing: %s", self.session_id, exc)

