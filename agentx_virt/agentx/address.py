"""The master's AgentX address in net-snmp's notation, and connecting to it."""

from __future__ import annotations

import errno
import grp
import os
import pwd
import socket
import stat
import struct
from dataclasses import dataclass
from typing import Optional

from agentx_virt.agentx.errors import AddressError

# net-snmp's default agentXSocket is /var/agentx/master, or /var/run/agentx/master in
# builds configured so; with no address configured the agent tries both, in this order.
DEFAULT_PATHS = ("/var/agentx/master", "/var/run/agentx/master")
DEFAULT_ADDRESS = "default"


@dataclass(frozen=True)
class MasterAddress:
    """Where snmpd listens for subagents: a unix socket path, or a TCP host and port."""

    path: Optional[str] = None
    host: Optional[str] = None
    port: int = 0
    also: tuple[str, ...] = ()   # unix socket paths tried, in order, when ``path`` is absent

    def __str__(self) -> str:
        if self.path is not None:
            return " or ".join(f"unix:{path}" for path in (self.path, *self.also))
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"tcp:{host}:{self.port}"

    def connect(self, timeout: float) -> socket.socket:
        """Open a stream socket to the master.

        Raises:
            PermissionError: a socket is there but this process may not open it; the
                message says which mode, owner or group to change.
            OSError: no master listens there (for the default address: at neither path).
        """
        if self.path is not None:
            absent: list[str] = []
            for path in (self.path, *self.also):
                try:
                    return _connect_unix(path, timeout)
                except (FileNotFoundError, ConnectionRefusedError) as exc:
                    absent.append(f"{path}: {exc.strerror}")
                except PermissionError as exc:
                    raise PermissionError(exc.errno, permission_hint(path)) from None
            raise OSError(errno.ENOENT, "no AgentX master socket (" + "; ".join(absent) + ")")
        else:
            sock = socket.create_connection((self.host, self.port), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


def parse_address(text: str) -> MasterAddress:
    """Parse ``/path``, ``unix:/path``, ``tcp:HOST:PORT``, ``tcp6:[::1]:705``, ``HOST:PORT``
    or ``default`` (net-snmp's socket, at either of its usual paths).

    Raises:
        AddressError: the text names no stream transport AgentX can use.
    """
    raw = text.strip()
    if not raw:
        raise AddressError("AgentX master address is empty")
    if raw.lower() == DEFAULT_ADDRESS:
        return MasterAddress(path=DEFAULT_PATHS[0], also=DEFAULT_PATHS[1:])
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


def peer(sock: socket.socket, address: MasterAddress) -> str:
    """Where ``sock`` is connected, in net-snmp notation: the socket path found when
    ``address`` named several, else ``address`` itself."""
    if sock.family == socket.AF_UNIX:
        name = sock.getpeername()
        if isinstance(name, str) and name:
            return f"unix:{name}"
    return str(address)


def unreachable(address: MasterAddress, exc: OSError) -> str:
    """What a failed ``connect`` means, in one line: a socket this process may not open
    (the message says what to change), or no master listening at ``address``."""
    if isinstance(exc, PermissionError):
        return f"cannot open the AgentX master's socket: {exc.strerror}"
    return f"cannot reach the AgentX master at {address} ({exc})"


def _connect_unix(path: str, timeout: float) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    return sock


def permission_hint(path: str) -> str:
    """Why this process may not open the AgentX socket at ``path``, and what to change."""
    me = _user_text()
    fixes = ("give the agent's group the socket in snmpd.conf, e.g. "
             "`agentXPerms 0660 0755 Debian-snmp agentx-virt`, or let snmpd listen on "
             "loopback TCP with `agentXSocket tcp:localhost:705` and set [agentx] address "
             "= \"tcp:localhost:705\"; then restart snmpd")
    directory = os.path.dirname(path) or "/"
    try:
        info = os.stat(path)
    except PermissionError:
        return (f"permission denied: {me} may not enter {directory} "
                f"({_mode_text(directory)}); {fixes}")
    except OSError as exc:
        return f"permission denied on {path} ({exc.strerror}); {fixes}"
    kind = "socket" if stat.S_ISSOCK(info.st_mode) else "file (not a socket)"
    return (f"permission denied on the AgentX {kind} {path}: it is {_mode_owner(info)} and "
            f"{me} needs read and write on it; {fixes}")


def _mode_text(path: str) -> str:
    try:
        info = os.stat(path)
    except OSError as exc:
        return f"cannot stat it: {exc.strerror}"
    return f"mode {_mode_owner(info, ', ')}"


def _mode_owner(info: os.stat_result, between: str = " ") -> str:
    return (f"{stat.S_IMODE(info.st_mode):04o}{between}"
            f"{_user_name(info.st_uid)}:{_group_name(info.st_gid)}")


def _user_text() -> str:
    groups = sorted({os.getegid(), *os.getgroups()})
    names = ",".join(_group_name(gid) for gid in groups)
    return f"this process (user {_user_name(os.geteuid())}, groups {names})"


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)
