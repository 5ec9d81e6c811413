"""The demo's private snmpd and the net-snmp CLI it walks with (the tests use them too).

``PrivateSnmpd`` runs an ``snmpd`` as AgentX master on a loopback UDP port with
its AgentX socket in its own directory, ignoring the system configuration, and
is stopped by pid.  ``snmp_tool`` runs the net-snmp CLI (``snmpget``,
``snmpwalk``, …) against such an agent with numeric output.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

COMMUNITY = "public"
_QUIET_MIBS = {"MIBS": "", "MIBDIRS": "/nonexistent"}


class PeerError(RuntimeError):
    """A net-snmp program is missing or did not start (an environment problem, not ours)."""


# What snmpd and snmptrapd print, before exiting with 1, when their port was taken.
_PORT_TAKEN = ("Error opening specified endpoint", "Couldn't open a master agentx socket",
               "Address already in use")
# A line snmptrapd's log continues a long Hex-STRING with ("90 8D E5 ...").
HEX_CONTINUED = re.compile(r"[0-9A-F]{2}( [0-9A-F]{2})*( |$)")
# Start attempts of a peer whose ports were picked here; each new one picks new ports.
PORT_ATTEMPTS = 5


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A loopback port that was free a moment ago.

    Another process may take it before the peer binds it; the peers here notice
    that (the program exits saying so) and start again on fresh ports.
    """
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def port_taken(log: Path, offset: int) -> bool:
    """Whether the log, from ``offset`` on, says a port was already in use."""
    try:
        with open(log, "rb") as handle:
            handle.seek(offset)
            text = handle.read().decode(errors="replace")
    except OSError:
        return False
    return any(marker in text for marker in _PORT_TAKEN)


def require(program: str) -> str:
    path = shutil.which(program) or shutil.which(program, path="/usr/sbin:/usr/bin:/sbin")
    if path is None:
        raise PeerError(f"{program} is not installed (Debian packages: snmpd snmp snmptrapd)")
    return path


def tool_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(_QUIET_MIBS)
    return env


def log_tail(path: Path, lines: int = 30) -> str:
    """The last lines of a peer's log, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def stop_process(process: Optional[subprocess.Popen[Any]], timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL if it does not exit within ``timeout``."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


@dataclass
class ToolResult:
    returncode: int
    stdout: str
    stderr: str


def snmp_command(tool: str, agent: str, *oids: str, options: Sequence[str] = (),
                 retries: int = 0, request_timeout: float = 2.0,
                 community: str = COMMUNITY, numeric: bool = True) -> list[str]:
    """The argv of a net-snmp client; ``options`` go before the agent (e.g. ``-Cr50``).

    ``numeric`` asks for numeric OIDs, enums and timeticks (``-On -Oe -Ot``); turn it
    off to see MIB names (snmptable needs that: it cannot find tables with ``-On``).
    """
    output = ["-On", "-Oe", "-Ot"] if numeric else []
    return [require(tool), "-v2c", "-c", community, *output,
            "-r", str(retries), "-t", str(request_timeout), *options, agent, *oids]


def snmp_tool(tool: str, agent: str, *oids: str, options: Sequence[str] = (),
              timeout: float = 120.0, retries: int = 0, request_timeout: float = 2.0,
              community: str = COMMUNITY, numeric: bool = True) -> ToolResult:
    """Run a net-snmp client (snmpget, snmpgetnext, snmpwalk, snmpbulkwalk, snmpset…)."""
    command = snmp_command(tool, agent, *oids, options=options, retries=retries,
                           request_timeout=request_timeout, community=community,
                           numeric=numeric)
    completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                               env=tool_env(), stdin=subprocess.DEVNULL)
    return ToolResult(completed.returncode, completed.stdout, completed.stderr)


class PrivateSnmpd:
    """An snmpd acting as AgentX master, private to one test, demo or benchmark run."""

    def __init__(self, workdir: Path, *, agentx_tcp: bool = False,
                 trap_port: Optional[int] = None, trap_transport: str = "udp",
                 extra_config: Sequence[str] = (), user: Optional[str] = None) -> None:
        self.workdir = Path(workdir)
        self.user = user    # after start-up, run as this user and its group (as Debian's unit)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._agentx_tcp = agentx_tcp
        self._pick_ports()
        self._ports_held = False    # true once snmpd has bound them: restarts keep them
        self.socket_path = self.workdir / "agentx.sock"
        self.trap_port = trap_port
        self.trap_transport = trap_transport
        self.extra_config = list(extra_config)
        self.log_path = self.workdir / "snmpd.log"
        self.process: Optional[subprocess.Popen[bytes]] = None
        self.spawned_at = 0.0  # time.perf_counter() when the snmpd process was last started

    def _pick_ports(self) -> None:
        self.port = free_port()
        self.agentx_tcp_port = free_port(socket.SOCK_STREAM) if self._agentx_tcp else None

    @property
    def agent(self) -> str:
        """Where SNMP clients send requests."""
        return f"udp:127.0.0.1:{self.port}"

    @property
    def agentx_address(self) -> str:
        """Where subagents connect, in net-snmp notation."""
        if self.agentx_tcp_port is not None:
            return f"tcp:127.0.0.1:{self.agentx_tcp_port}"
        return f"unix:{self.socket_path}"

    def _config(self) -> str:
        listen = (f"tcp:127.0.0.1:{self.agentx_tcp_port}" if self.agentx_tcp_port is not None
                  else str(self.socket_path))
        lines = [
            f"agentAddress udp:127.0.0.1:{self.port}",
            f"rocommunity {COMMUNITY} 127.0.0.1",
            "master agentx",
            f"agentXSocket {listen}",
            "agentXPerms 0660 0770",
            "agentXTimeout 1",
            "agentXRetries 1",
            "dontLogTCPWrappersConnects yes",
        ]
        if self.trap_port is not None:
            lines.append(f"trap2sink {self.trap_transport}:127.0.0.1:{self.trap_port} "
                         f"{COMMUNITY}")
        return "\n".join(lines + self.extra_config) + "\n"

    def start(self, timeout: float = 15.0) -> PrivateSnmpd:
        if self.process is not None and self.process.poll() is None:
            return self
        for attempt in range(1, PORT_ATTEMPTS + 1):
            log_start = log_size(self.log_path)
            try:
                self._start(timeout)
            except PeerError:
                if (self._ports_held or attempt == PORT_ATTEMPTS
                        or not port_taken(self.log_path, log_start)):
                    raise
                self._pick_ports()      # another process took a port meanwhile
                continue
            self._ports_held = True
            return self
        raise AssertionError("unreachable")

    def _start(self, timeout: float) -> None:
        config = self.workdir / "snmpd.conf"
        config.write_text(self._config())
        persist = self.workdir / "persist"
        persist.mkdir(exist_ok=True)
        as_user: list[str] = []
        if self.user is not None:
            shutil.chown(persist, self.user, self.user)
            as_user = ["-u", self.user, "-g", self.user]
        env = tool_env()
        env["SNMP_PERSISTENT_DIR"] = str(persist)
        with open(self.log_path, "ab") as log_file:
            self.spawned_at = time.perf_counter()
            self.process = subprocess.Popen(
                [require("snmpd"), "-f", "-Lf", str(self.log_path), "-C", "-c", str(config),
                 "-p", str(self.workdir / "snmpd.pid"), *as_user],
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, env=env,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PeerError(f"snmpd exited with {self.process.returncode}:\n{self.log_tail()}")
            if self._agentx_ready():
                probe = snmp_tool("snmpget", self.agent, "1.3.6.1.2.1.1.3.0",
                                  request_timeout=0.5)
                if probe.returncode == 0:
                    return
            time.sleep(0.05)
        self.stop()
        raise PeerError(f"snmpd did not become ready within {timeout} s:\n{self.log_tail()}")

    def _agentx_ready(self) -> bool:
        if self.agentx_tcp_port is None:
            return self.socket_path.exists()
        try:
            with socket.create_connection(("127.0.0.1", self.agentx_tcp_port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 30) -> str:
        return log_tail(self.log_path, lines)

    def __enter__(self) -> PrivateSnmpd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
