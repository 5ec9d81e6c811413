"""Check that an AgentX master is reachable and speaks AgentX: Open, Ping, Close.

The same protocol object as the session's drives it, so the probe speaks exactly
as the agent will.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Union

from agentx_virt.agentx import pdu as p
from agentx_virt.agentx.address import MasterAddress
from agentx_virt.agentx.constants import CloseReason, error_name
from agentx_virt.agentx.errors import AgentXError
from agentx_virt.agentx.protocol import (
    AgentXProtocol,
    Answered,
    Event,
    Malformed,
    NeedData,
    Opened,
    Refused,
    Unframeable,
)
from agentx_virt.agentx.session_config import SessionConfig
from agentx_virt.oid import OID


@dataclass(frozen=True)
class ProbeResult:
    session_id: int
    ping_ms: float


def _answer(sock: socket.socket, protocol: AgentXProtocol, what: str,
            timeout: float) -> Union[Opened, Answered]:
    """Wait for the master's answer to our last request (Open, Ping or Close)."""
    deadline = time.monotonic() + timeout
    while True:
        event: Union[Event, NeedData] = protocol.next_event()
        if isinstance(event, (Opened, Answered)):
            return event
        if isinstance(event, Refused):
            raise AgentXError(f"the master refused Open: {error_name(event.error)}")
        if isinstance(event, (Malformed, Unframeable)):
            raise AgentXError(f"the peer at {protocol.config.address} does not speak AgentX: "
                              f"{event.message}")
        if isinstance(event, NeedData):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AgentXError(f"no answer to {what} within {timeout:g} s")
            sock.settimeout(remaining)
            data = sock.recv(65536)
            protocol.receive_data(data)
            if not data:
                raise AgentXError(f"the master closed the connection after {what}")
        # Anything else (a stray Response, a request nothing registered invites) is skipped.


def probe(address: MasterAddress, timeout: float = 5.0, ident: OID = ()) -> ProbeResult:
    """Open a session (identified by ``ident``), time one Ping, close it.

    Raises:
        OSError: the address cannot be reached (missing socket, refused, permissions).
        AgentXError: the peer answered, but not as an AgentX master should.
    """
    config = SessionConfig(address, (), ident=ident, description="agentx-virt probe",
                           open_timeout=max(1, int(timeout)), response_timeout=timeout)
    protocol = AgentXProtocol(config, lambda: 0, time.monotonic)
    with address.connect(timeout) as sock:
        sock.sendall(protocol.send(p.Open(timeout=config.open_timeout, id=ident,
                                          description=config.description.encode())))
        opened = _answer(sock, protocol, "Open", timeout)
        started = time.perf_counter()
        sock.sendall(protocol.send(p.Ping()))
        pinged = _answer(sock, protocol, "Ping", timeout)
        ping_ms = (time.perf_counter() - started) * 1000
        if isinstance(pinged, Answered) and pinged.error:
            raise AgentXError(f"the master answered Ping with {error_name(pinged.error)}")
        sock.sendall(protocol.send(p.Close(reason=CloseReason.SHUTDOWN)))
        _answer(sock, protocol, "Close", timeout)
        return ProbeResult(protocol.session_id if isinstance(opened, Opened) else 0, ping_ms)
