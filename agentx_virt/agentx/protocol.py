"""The AgentX subagent protocol, sans-IO: one connection's states and what is legal in each.

Theory of operation
-------------------
One ``AgentXProtocol`` lives for one connection to the master. It never sees a
socket: the driver hands it the bytes it read (``receive_data``), takes its events
in order (``next_event``, or ``NEED_DATA``), and writes out the bytes that
``send`` and ``answer`` return. Its clock is injected; it only reads it, to stamp
the deadline of each request it sends and the time of the last bytes received.
A reconnect is a new object, so session ID, packet IDs, decoder and the requests
awaiting a Response all start afresh.

::

    IDLE --Open--> OPENING --Open ok--> REGISTERING --last Register ok--> SERVING
    OPENING --Open ok, nothing to register (a probe)--> SERVING
      (any state but IDLE and CLOSED) --Close--> CLOSING --Close's Response--> CLOSED
      (any state) --the master's Close, EOF or an unframeable stream--> CLOSED

``MAY_SEND`` says which PDUs we may send in each state and ``MASTER_REQUESTS``
which requests of the master are answered; the table below gives the reasons.
Everything else is a local error (``LocalProtocolError``: a bug in the driver).
The master's Responses are matched to our requests by packetID in any state; a
Response nothing awaits is reported as ``Stray``.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Callable, Optional, Union

from agentx_virt.agentx import pdu as p
from agentx_virt.agentx.constants import CloseReason, ErrorCode
from agentx_virt.agentx.decoder import Decoder
from agentx_virt.agentx.encoder import encode
from agentx_virt.agentx.errors import AgentXError, FramingError, MalformedPDU
from agentx_virt.agentx.responder import encoded_answer
from agentx_virt.agentx.session_config import SessionConfig
from agentx_virt.agentx.store import OidTable
from agentx_virt.oid import OID


class LocalProtocolError(AgentXError):
    """We (the driver) tried something the protocol does not allow in this state."""


class State(enum.Enum):
    IDLE = "idle"                # connected; nothing sent yet
    OPENING = "opening"          # Open sent, its Response awaited
    REGISTERING = "registering"  # session open; one Register at a time until all are done
    SERVING = "serving"          # every subtree registered
    CLOSING = "closing"          # our Close sent, its Response awaited
    CLOSED = "closed"            # over: Close answered, the master's Close, EOF, bad stream


_SendSet = frozenset[type[p.PDU]]
# What we may send, and why:
#  IDLE         only Open: nothing else has a session to name (RFC 2741 §7.1.1).
#  OPENING      Response (parseError to a malformed PDU) or Close (giving up); a
#               Register before Open's Response would carry no session ID.
#  REGISTERING  the next Register, answers to requests for subtrees already
#               registered, Close. Traps wait until every subtree is served.
#  SERVING      Notify, Ping, answers, Close; Register and Unregister when the
#               subtrees to serve change (``change_subtrees``), one at a time.
#  CLOSING      nothing: we have said goodbye and only wait for its Response.
MAY_SEND: dict[State, _SendSet] = {
    State.IDLE: frozenset({p.Open}),
    State.OPENING: frozenset({p.Response, p.Close}),
    State.REGISTERING: frozenset({p.Register, p.Response, p.Close}),
    State.SERVING: frozenset({p.Notify, p.Ping, p.Response, p.Close, p.Register,
                              p.Unregister}),
    State.CLOSING: frozenset(),
    State.CLOSED: frozenset(),
}
# The master's requests are answered once something is registered; before that it
# has no reason to send any, and after our Close we no longer answer.
MASTER_REQUESTS: dict[State, bool] = {
    State.IDLE: False, State.OPENING: False, State.REGISTERING: True,
    State.SERVING: True, State.CLOSING: False, State.CLOSED: False,
}
# Our requests whose Response we await (everything else we send is an answer).
_AWAITED = (p.Open, p.Register, p.Unregister, p.Notify, p.Ping, p.Close)


# ---------------------------------------------------------------- events


@dataclass(frozen=True)
class Opened:
    session_id: int


@dataclass(frozen=True)
class Registered:
    subtree: OID
    remaining: tuple[OID, ...]   # still to register; () means the state is now SERVING


@dataclass(frozen=True)
class Unregistered:
    """The master answered our Unregister (``error`` 0: the subtree is no longer ours)."""
    subtree: OID
    error: int


@dataclass(frozen=True)
class Refused:
    """The master answered Open or a Register with an error: retrying cannot help.

    A refused Register leaves the other subtrees to register (``remaining``); the
    session goes on serving those registered, and is CLOSED only when none is."""
    what: str                    # "Open" or "Register"
    error: int
    subtree: Optional[OID] = None
    remaining: tuple[OID, ...] = ()


@dataclass(frozen=True)
class Answered:
    """The master's Response to our Notify, Ping or Close."""
    kind: str
    packet_id: int
    error: int


@dataclass(frozen=True)
class Request:
    """A request of the master to answer with ``AgentXProtocol.answer``."""
    pdu: p.PDU


@dataclass(frozen=True)
class Ignored:
    """A request of the master in a state where none is answered."""
    pdu: p.PDU


@dataclass(frozen=True)
class Stray:
    """A Response nothing of ours awaits."""
    packet_id: int


@dataclass(frozen=True)
class Malformed:
    """A framed PDU that does not decode; ``reply`` (parseError) is for the driver to send."""
    message: str
    reply: bytes


@dataclass(frozen=True)
class MasterClosed:
    reason: int


@dataclass(frozen=True)
class EndOfStream:
    """The master closed the connection."""
    during: State


@dataclass(frozen=True)
class Unframeable:
    """A header that makes the rest of the stream unreadable; the driver sends
    ``close_bytes`` (Close, parseError) if it can and drops the connection."""
    message: str
    close_bytes: bytes


class NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = NeedData()

Event = Union[Opened, Registered, Unregistered, Refused, Answered, Request, Ignored, Stray,
              Malformed, MasterClosed, EndOfStream, Unframeable]


@dataclass(frozen=True)
class _Awaited:
    kind: str
    deadline: float
    subtree: Optional[OID] = None


class AgentXProtocol:
    """One connection's protocol state; see the module docstring."""

    def __init__(self, config: SessionConfig, sys_uptime: Callable[[], int],
                 clock: Callable[[], float]) -> None:
        self.config = config
        self.state = State.IDLE
        self.session_id = 0
        self._sys_uptime = sys_uptime
        self._clock = clock
        self._decoder = Decoder()
        self._eof = False
        self._packet_id = 0
        self._awaited: dict[int, _Awaited] = {}
        self._unregistered = tuple(config.subtrees)
        self.registered: tuple[OID, ...] = ()  # subtrees the master has given us
        self.refused: tuple[OID, ...] = ()     # subtrees the master would not register
        self.last_received = clock()

    # ------------------------------------------------------------ bytes in

    def receive_data(self, data: bytes) -> None:
        """Bytes read from the master; ``b""`` means it closed the connection."""
        if self._eof or self.state is State.CLOSED:
            raise LocalProtocolError(
                f"data received after the connection ended ({self.state.value})")
        if data:
            self._decoder.feed(data)
            self.last_received = self._clock()
        else:
            self._eof = True

    def next_event(self) -> Union[Event, NeedData]:
        """The next thing the master said, in order, or ``NEED_DATA``."""
        if self.state is State.CLOSED:
            return NEED_DATA
        try:
            pdu = self._decoder.next_pdu()
        except MalformedPDU as exc:
            return Malformed(str(exc), encode(p.Response(
                session_id=exc.session_id, transaction_id=exc.transaction_id,
                packet_id=exc.packet_id, big_endian=exc.big_endian,
                sys_uptime=self._sys_uptime(), error=ErrorCode.PARSE_ERROR)))
        except FramingError as exc:
            farewell = encode(self._stamp(p.Close(reason=CloseReason.PARSE_ERROR)))
            self.state = State.CLOSED
            return Unframeable(str(exc), farewell)
        if pdu is None:
            if not self._eof:
                return NEED_DATA
            during, self.state = self.state, State.CLOSED
            return EndOfStream(during)
        if isinstance(pdu, p.Response):
            return self._on_response(pdu)
        if isinstance(pdu, p.Close):
            self.state = State.CLOSED
            return MasterClosed(pdu.reason)
        return Request(pdu) if MASTER_REQUESTS[self.state] else Ignored(pdu)

    def _on_response(self, response: p.Response) -> Event:
        awaited = self._awaited.pop(response.packet_id, None)
        if awaited is None:
            return Stray(response.packet_id)
        if awaited.kind == "Open" and self.state is State.OPENING:
            if response.error:
                self.state = State.CLOSED
                return Refused("Open", response.error)
            self.session_id = response.session_id
            # Nothing to register (a probe) serves at once: Ping and Close are then legal.
            self.state = State.REGISTERING if self._unregistered else State.SERVING
            return Opened(response.session_id)
        if awaited.kind == "Unregister" and awaited.subtree is not None:
            if not response.error:
                self.registered = tuple(s for s in self.registered if s != awaited.subtree)
            return Unregistered(awaited.subtree, response.error)
        if awaited.kind == "Register" and self.state in (State.REGISTERING, State.SERVING):
            assert awaited.subtree is not None
            self._unregistered = tuple(s for s in self._unregistered if s != awaited.subtree)
            if response.error:
                self.refused += (awaited.subtree,)
            else:
                self.registered += (awaited.subtree,)
            if self.state is State.REGISTERING and not self._unregistered:
                served = len(self.refused) < len(self.config.subtrees)
                self.state = State.SERVING if served else State.CLOSED
            if response.error:
                return Refused("Register", response.error, awaited.subtree, self._unregistered)
            return Registered(awaited.subtree, self._unregistered)
        if awaited.kind == "Close":
            self.state = State.CLOSED
        return Answered(awaited.kind, response.packet_id, response.error)

    # ------------------------------------------------------------ bytes out

    def _stamp(self, pdu: p.PDU) -> p.PDU:
        """``pdu`` with this session's ID and the next packet ID."""
        self._packet_id = (self._packet_id + 1) & 0xFFFFFFFF
        return dataclasses.replace(pdu, session_id=self.session_id, packet_id=self._packet_id)

    def send(self, pdu: p.PDU) -> bytes:
        """The bytes of our ``pdu`` (Open, Register, Notify, Ping or Close), stamped with
        this session's ID and the next packet ID; its Response is then awaited.

        Raises:
            LocalProtocolError: ``pdu`` is not legal in this state.
            EncodeError: ``pdu`` has no encoding (nothing changes, nothing is sent).
        """
        kind = type(pdu)
        if kind not in MAY_SEND[self.state] or not isinstance(pdu, _AWAITED):
            raise LocalProtocolError(f"cannot send {kind.__name__} while {self.state.value}")
        subtree: Optional[OID] = None
        if isinstance(pdu, (p.Register, p.Unregister)):
            if self.registration_awaited():
                raise LocalProtocolError("one Register or Unregister at a time: the last is "
                                         "unanswered")
            if isinstance(pdu, p.Register) and pdu.subtree not in self._unregistered:
                raise LocalProtocolError(f"{pdu.subtree} is not a subtree still to register")
            if isinstance(pdu, p.Unregister) and pdu.subtree not in self.registered:
                raise LocalProtocolError(f"{pdu.subtree} is not registered")
            subtree = pdu.subtree
        stamped = self._stamp(pdu)
        data = encode(stamped)
        self._awaited[stamped.packet_id] = _Awaited(
            kind.__name__, self._clock() + self.config.response_timeout, subtree)
        self.state = {p.Open: State.OPENING, p.Close: State.CLOSING}.get(kind, self.state)
        return data

    def answer(self, request: p.PDU, table: OidTable) -> bytes:
        """The bytes of the answer to the master's ``request`` from ``table`` (b"" when
        none is due: CleanupSet), see ``responder.encoded_answer``."""
        if not MASTER_REQUESTS[self.state]:
            raise LocalProtocolError(f"cannot answer {type(request).__name__} while "
                                     f"{self.state.value}")
        return encoded_answer(request, table, self._sys_uptime())

    # ------------------------------------------------------------ timers

    def _awaited_kind(self, kind: str) -> bool:
        return any(a.kind == kind for a in self._awaited.values())

    def registration_awaited(self) -> bool:
        return self._awaited_kind("Register") or self._awaited_kind("Unregister")

    def change_subtrees(self, wanted: tuple[OID, ...]) -> tuple[tuple[OID, ...],
                                                                tuple[OID, ...]]:
        """While serving, the subtrees to serve become ``wanted``: returns those still to
        register and those to unregister, for the driver to send one at a time (a
        refused one is not asked for again on this connection)."""
        awaited = {a.subtree for a in self._awaited.values() if a.subtree is not None}
        self._unregistered = tuple(s for s in wanted if s not in self.registered
                                   and s not in self.refused and s not in awaited)
        return self._unregistered, tuple(s for s in self.registered if s not in wanted
                                         and s not in awaited)

    @property
    def last_packet_id(self) -> int:
        """The packet ID of the PDU ``send`` returned last."""
        return self._packet_id

    def ping_awaited(self) -> bool:
        return self._awaited_kind("Ping")

    @property
    def awaited(self) -> int:
        """Our requests still waiting for their Response."""
        return len(self._awaited)

    def ping_due(self) -> float:
        """When an idle master should be pinged: ``ping_interval`` after it last spoke."""
        return self.last_received + self.config.ping_interval

    def next_deadline(self) -> Optional[float]:
        """The earliest time by which an awaited Response is late, if any."""
        if not self._awaited:
            return None
        return min((a.deadline for a in self._awaited.values()), default=None)

    def overdue(self, now: float) -> Optional[str]:
        """Why the master is late (a request unanswered past its deadline), or None."""
        if not self._awaited:
            return None
        late = [a.kind for a in self._awaited.values() if now >= a.deadline]
        if not late:
            return None
        return (f"the master did not answer our {late[0]} within "
                f"{self.config.response_timeout:g} s")
