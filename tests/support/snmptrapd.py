"""A private snmptrapd that logs every trap it receives as one line; stopped by pid."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from agentx_virt.demo.snmpd import (
    HEX_CONTINUED,
    PORT_ATTEMPTS,
    PeerError,
    free_port,
    port_taken,
    require,
    stop_process,
    tool_env,
)


class PrivateSnmptrapd:
    """A snmptrapd on a loopback port writing one line per received trap.

    ``transport`` "tcp" makes delivery from snmpd lossless under bursts (UDP traps
    are dropped when snmptrapd's receive buffer overflows).
    """

    def __init__(self, workdir: Path, transport: str = "udp",
                 extra_config: Sequence[str] = ()) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.transport = transport
        self.extra_config = tuple(extra_config)     # e.g. a traphandle line
        self._kind = socket.SOCK_STREAM if transport == "tcp" else socket.SOCK_DGRAM
        self.port = free_port(self._kind)
        self.log_path = self.workdir / "snmptrapd.log"
        self.process: Optional[subprocess.Popen[bytes]] = None

    def start(self, timeout: float = 10.0) -> PrivateSnmptrapd:
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                self._start(timeout)
                return self
            except PeerError:
                if attempt == PORT_ATTEMPTS or not port_taken(self.log_path, 0):
                    raise
                self.port = free_port(self._kind)   # another process took it meanwhile
        raise AssertionError("unreachable")

    def _start(self, timeout: float) -> None:
        config = self.workdir / "snmptrapd.conf"
        config.write_text("disableAuthorization yes\ndoNotLogTraps no\n"
                          + "".join(f"{line}\n" for line in self.extra_config))
        env = tool_env()
        env["SNMP_PERSISTENT_DIR"] = str(self.workdir / "persist")
        self.log_path.write_text("")
        self.process = subprocess.Popen(
            [require("snmptrapd"), "-f", "-C", "-c", str(config), "-On", "-Lf",
             str(self.log_path), "-F", "TRAP %v\n", f"{self.transport}:127.0.0.1:{self.port}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PeerError(f"snmptrapd exited with {self.process.returncode}")
            if "NET-SNMP version" in self.log_path.read_text(errors="replace"):
                return
            time.sleep(0.05)
        self.stop()
        raise PeerError(f"snmptrapd did not start within {timeout} s")

    def traps(self) -> list[str]:
        """The lines logged for received traps, oldest first.  snmptrapd breaks a long
        Hex-STRING over several lines: those are joined back to their trap's line."""
        traps: list[str] = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("TRAP "):
                traps.append(line[5:])
            elif traps and HEX_CONTINUED.match(line):
                traps[-1] += line
        return traps

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def __enter__(self) -> PrivateSnmptrapd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
