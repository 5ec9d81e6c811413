"""Fixtures: private net-snmp peers, a subagent running in a thread, and a scripted master."""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

from agentx_virt.agentx import pdu as p
from agentx_virt.agentx.address import parse_address
from agentx_virt.agentx.decoder import Decoder
from agentx_virt.agentx.encoder import encode
from agentx_virt.agentx.session import AgentXSession
from agentx_virt.agentx.session_config import SessionConfig
from agentx_virt.agentx.session_thread import SessionThread
from agentx_virt.agentx.store import OidTable, ServedStore
from agentx_virt.agentx.traps import TrapQueue
from agentx_virt.app.config import Config
from agentx_virt.app.daemon import Agent
from agentx_virt.demo.agent_thread import AgentThread
from agentx_virt.demo.snmpd import PrivateSnmpd, snmp_tool
from agentx_virt.mib.model import shipped_mib
from agentx_virt.oid import OID, format_oid
from tests.support import report
from tests.support.libvirtd import PrivateLibvirtd, available
from tests.support.snmptrapd import PrivateSnmptrapd


def wait_for(check: Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll ``check`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout:g} s")


def wait_polls(snmpd: PrivateSnmpd, polls: int, timeout: float = 30.0) -> None:
    """Wait until the agent behind ``snmpd`` has served ``polls`` more poll cycles (each
    a new lvxLastPollStart)."""
    last_start = format_oid(shipped_mib().object("lvxLastPollStart").oid + (0,))

    def start() -> str:
        return snmp_tool("snmpget", snmpd.agent, last_start, options=["-Oqv"]).stdout

    seen = [start()]
    for _ in range(polls):
        wait_for(lambda: start() not in seen, timeout)
        seen.append(start())


def private_libvirtd(factory: pytest.TempPathFactory, who: str) -> PrivateLibvirtd:
    """A (not yet started) private libvirtd; fails ``who``'s tests when this host cannot
    run one, and says why."""
    problem = available()
    if problem:
        pytest.fail(f"{who} need a private libvirtd: {problem}")
    return PrivateLibvirtd(factory.mktemp("libvirtd"))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if report.LINES:
        terminalreporter.section("agentx-virt report")
        for line in report.LINES:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def debian_package() -> Iterator[Any]:
    """The Debian package built once from a clean copy of this tree (tests/support/debian.py),
    for every test module that installs it."""
    from tests.support import debian
    work = Path(tempfile.mkdtemp(prefix="axv-deb-"))
    try:
        yield debian.build(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temp dir with a short path (unix socket paths are limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="axv-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def trapd(short_tmp: Path) -> Iterator[PrivateSnmptrapd]:
    with PrivateSnmptrapd(short_tmp / "snmptrapd") as daemon:
        yield daemon


@pytest.fixture
def snmpd(short_tmp: Path) -> Iterator[PrivateSnmpd]:
    with PrivateSnmpd(short_tmp / "snmpd") as daemon:
        yield daemon


AgentFactory = Callable[..., SessionThread]


@contextmanager
def serving_agent(uri: str, snmpd: PrivateSnmpd, state_dir: Path, ready_s: float = 20,
                  **settings: Any) -> Iterator[Agent]:
    """``agentx-virt run`` on a thread, polling ``uri`` every second (unless ``settings``
    say otherwise) and registered with ``snmpd``; stopped on leaving."""
    config = {"uri": uri, "agentx": snmpd.agentx_address, "interval_s": 1,
              "domain_timeout_s": 0.5, "state_dir": state_dir, **settings}
    agent = Agent(Config(**config))
    running = AgentThread(agent).start()
    try:
        assert running.wait_ready(ready_s), "the agent did not serve in time"
        yield agent
    finally:
        running.stop()


@pytest.fixture
def start_agent(request: pytest.FixtureRequest) -> Iterator[AgentFactory]:
    """Start subagents against an address; every one is stopped at teardown (after a
    scripted master's connections are closed, so their Close need not wait for an
    answer nobody sends)."""
    running: list[SessionThread] = []

    def start(address: str, table: OidTable, subtrees: tuple[OID, ...],
              traps: Optional[TrapQueue] = None, **config: object) -> SessionThread:
        session = AgentXSession(
            SessionConfig(parse_address(address), subtrees, **config),  # type: ignore[arg-type]
            ServedStore(table), traps)
        agent = SessionThread(session).start()
        running.append(agent)
        return agent

    yield start
    if "master" in request.fixturenames:
        request.getfixturevalue("master").close_connections()
    for agent in running:
        agent.stop()


class MasterConnection:
    """One accepted subagent connection, spoken to PDU by PDU."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.decoder = Decoder()

    def receive(self, timeout: float = 5.0) -> p.PDU:
        self.sock.settimeout(timeout)
        while True:
            pdu = self.decoder.next_pdu()
            if pdu is not None:
                return pdu
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("the subagent closed the connection")
            self.decoder.feed(data)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def handshake(self, session_id: int = 42, registers: int = 1) -> list[p.PDU]:
        """Accept Open and ``registers`` Register PDUs; returns them."""
        seen: list[p.PDU] = []
        opened = self.receive()
        assert isinstance(opened, p.Open)
        seen.append(opened)
        self.send(encode(p.Response(session_id=session_id, packet_id=opened.packet_id)))
        while True:
            registered = self.receive()
            assert isinstance(registered, p.Register)
            seen.append(registered)
            self.send(encode(p.Response(session_id=session_id,
                                        packet_id=registered.packet_id)))
            if len(seen) > registers:
                return seen

    def close(self) -> None:
        self.sock.close()


class ScriptedMaster:
    """A unix-socket listener that plays the master's side by hand."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(4)
        self.connections: list[MasterConnection] = []

    @property
    def address(self) -> str:
        return f"unix:{self.path}"

    def accept(self, timeout: float = 5.0) -> MasterConnection:
        self.server.settimeout(timeout)
        sock, _ = self.server.accept()
        conn = MasterConnection(sock)
        self.connections.append(conn)
        return conn

    def close_connections(self) -> None:
        for conn in self.connections:
            conn.close()

    def close(self) -> None:
        self.close_connections()
        self.server.close()


@pytest.fixture
def master(short_tmp: Path) -> Iterator[ScriptedMaster]:
    scripted = ScriptedMaster(short_tmp / "master.sock")
    yield scripted
    scripted.close()
