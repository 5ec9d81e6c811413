"""The master's AgentX address in net-snmp's notation, and connecting to it."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import Optional

from agentx_virt.agentx.errors import AddressError

DEFAULT_ADDRESS = "/var/agentx/master"  # net-snmp's default agentXSocket


@dataclass(frozen=True)
class MasterAddress:
    """Where snmpd listens for subagents: a unix socket path, or a TCP host and port."""

    path: Optional[str] = None
    host: Optional[str] = None
    port: int = 0

    def __str__(self) -> str:
        if self.path is not None:
            return f"unix:{self.path}"
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"tcp:{host}:{self.port}"

    def connect(self, timeout: float) -> socket.socket:
        """Open a stream socket to the master; raises OSError when it is not there."""
        if self.path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect(self.path)
            except OSError:
                sock.close()
                raise
        else:
            sock = socket.create_connection((self.host, self.port), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


def parse_address(text: str) -> MasterAddress:
    """Parse ``/path``, ``unix:/path``, ``tcp:HOST:PORT``, ``tcp6:[::1]:705`` or ``HOST:PORT``.

    Raises:
        AddressError: the text names no stream transport AgentX can use.
    """
    raw = text.strip()
    if not raw:
        raise AddressError("AgentX master address is empty")
    lowered = raw.lower()
    if raw.startswith("/"):
        return MasterAddress(path=raw)
    if lowered.startswith("unix:"):
        path = raw[5:]
        if not path.startswith("/"):
            raise AddressError(f"AgentX address {text!r}: a unix socket needs an absolute path")
        return MasterAddress(path=path)
    for transport in ("udp:", "udp6:"):
        if lowered.startswith(transport):
            raise AddressError(f"AgentX address {text!r}: AgentX needs a stream transport "
                               "(unix: or tcp:), not UDP")
    for transport in ("tcp:", "tcp6:"):
        if lowered.startswith(transport):
            raw = raw[len(transport):]
            break
    host, sep, port_text = raw.rpartition(":")
    if not sep or not host:
        raise AddressError(f"AgentX address {text!r}: expected /path, unix:/path or tcp:HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_text, 10)
    except ValueError:
        raise AddressError(f"AgentX address {text!r}: port {port_text!r} is not a number") from None
    if not 0 < port < 65536:
        raise AddressError(f"AgentX address {text!r}: port {port} is outside 1..65535")
    return MasterAddress(host=host, port=port)


def kernel_timeouts(sock: socket.socket, seconds: float) -> None:
    """Make ``sock`` blocking with SO_SNDTIMEO and SO_RCVTIMEO of ``seconds``: a send or
    receive that waits longer fails with an OSError (the session is then lost)."""
    sock.settimeout(None)
    whole = int(seconds)
    timeval = struct.pack("@ll", whole, int((seconds - whole) * 1_000_000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
