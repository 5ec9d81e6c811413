"""Check that an AgentX master is reachable and speaks AgentX: Open, Ping, Close."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from agentx_virt.agentx import pdu as p
from agentx_virt.agentx.address import MasterAddress
from agentx_virt.agentx.constants import CloseReason, error_name
from agentx_virt.agentx.decoder import Decoder
from agentx_virt.agentx.encoder import encode
from agentx_virt.agentx.errors import AgentXError, ProtocolError
from agentx_virt.oid import OID


@dataclass(frozen=True)
class ProbeResult:
    session_id: int
    ping_ms: float


def _exchange(sock: socket.socket, decoder: Decoder, request: p.PDU, timeout: float) -> p.Response:
    sock.sendall(encode(request))
    deadline = time.monotonic() + timeout
    while True:
        pdu = decoder.next_pdu()
        if isinstance(pdu, p.Response) and pdu.packet_id == request.packet_id:
            return pdu
        if pdu is not None:
            continue  # nothing is registered, so nothing else is expected; skip it
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AgentXError(f"no answer to {type(request).__name__} within {timeout:g} s")
        sock.settimeout(remaining)
        data = sock.recv(65536)
        if not data:
            raise AgentXError(f"the master closed the connection after {type(request).__name__}")
        decoder.feed(data)


def probe(address: MasterAddress, timeout: float = 5.0, ident: OID = ()) -> ProbeResult:
    """Open a session (identified by ``ident``), time one Ping, close it.

    Raises:
        OSError: the address cannot be reached (missing socket, refused, permissions).
        AgentXError: the peer answered, but not as an AgentX master should.
    """
    with address.connect(timeout) as sock:
        decoder = Decoder()
        try:
            opened = _exchange(sock, decoder, p.Open(
                packet_id=1, timeout=int(timeout), id=ident,
                description=b"agentx-virt probe"), timeout)
            if opened.error:
                raise AgentXError(f"the master refused Open: {error_name(opened.error)}")
            started = time.perf_counter()
            pinged = _exchange(sock, decoder, p.Ping(session_id=opened.session_id, packet_id=2),
                               timeout)
            ping_ms = (time.perf_counter() - started) * 1000
            if pinged.error:
                raise AgentXError(f"the master answered Ping with {error_name(pinged.error)}")
            _exchange(sock, decoder, p.Close(session_id=opened.session_id, packet_id=3,
                                             reason=CloseReason.SHUTDOWN), timeout)
        except ProtocolError as exc:
            raise AgentXError(f"the peer at {address} does not speak AgentX: {exc}") from None
        return ProbeResult(opened.session_id, ping_ms)
