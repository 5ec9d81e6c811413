"""The AgentX core against a real snmpd, driven by the net-snmp CLI, and a real snmptrapd."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentx_virt.agentx.constants import ValueType as T
from agentx_virt.agentx.errors import SessionFatal
from agentx_virt.agentx.pdu import Value, VarBind
from agentx_virt.agentx.session_thread import SessionThread
from agentx_virt.agentx.store import OidTable
from agentx_virt.agentx.traps import Trap, TrapQueue
from agentx_virt.demo.snmpd import PrivateSnmpd, ToolResult, snmp_tool
from agentx_virt.oid import OID, format_oid
from tests.support.snmptrapd import PrivateSnmptrapd

from .conftest import AgentFactory, wait_for

pytestmark = pytest.mark.peers

ROOT: OID = (1, 3, 6, 1, 4, 1, 36957, 3)
R = format_oid(ROOT)
# Opaque holding the net-snmp opaque-float encoding of 1.0 (tag 9f78, length 4, IEEE 754).
OPAQUE_FLOAT_ONE = b"\x9f\x78\x04\x3f\x80\x00\x00"
SCALARS: list[tuple[OID, T, Value]] = [
    (ROOT + (1, 1, 0), T.INTEGER, -7),
    (ROOT + (1, 2, 0), T.OCTET_STRING, b"qemu:///system"),
    (ROOT + (1, 3, 0), T.COUNTER64, 2**64 - 1),
    (ROOT + (1, 4, 0), T.GAUGE32, 4294967295),
    (ROOT + (1, 5, 0), T.IP_ADDRESS, bytes((192, 0, 2, 7))),
    (ROOT + (1, 6, 0), T.OBJECT_IDENTIFIER, ROOT + (0, 1)),
    (ROOT + (1, 7, 0), T.TIME_TICKS, 123456),
    (ROOT + (1, 8, 0), T.COUNTER32, 42),
    (ROOT + (1, 9, 0), T.OPAQUE, OPAQUE_FLOAT_ONE),
]
ENTRY: OID = ROOT + (2, 1, 1)
ROWS = (1, 2, 4, 5)  # row 3 is a gap
COLUMNS: list[tuple[OID, T, Value]] = [
    (ENTRY + (2,), T.OCTET_STRING, b"vm"),
    (ENTRY + (3,), T.INTEGER, 1),
    (ENTRY + (7,), T.COUNTER64, 10**12),
]


def make_table(generation: int = 0) -> OidTable:
    entries = list(SCALARS)
    for column, kind, value in COLUMNS:
        for row in ROWS:
            if isinstance(value, bytes):
                cell: Value = value + b"-%d" % row
            else:
                assert isinstance(value, int)
                cell = value + row + generation
            entries.append((column + (row,), kind, cell))
    objects = [name[:-1] for name, _, _ in SCALARS] + [c for c, _, _ in COLUMNS]
    return OidTable(entries, objects=objects)


TABLE = make_table()


def lines(result: ToolResult) -> list[str]:
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line.strip()]


def expected_line(vb: VarBind) -> str:
    """How ``snmpget -On -Oe -Ot`` prints a value, per type."""
    value = vb.value
    if isinstance(value, int):
        prefix = {T.INTEGER: "INTEGER: ", T.COUNTER64: "Counter64: ", T.GAUGE32: "Gauge32: ",
                  T.COUNTER32: "Counter32: ", T.TIME_TICKS: ""}[vb.type]  # -Ot: raw ticks
        text = f"{prefix}{value}"
    elif isinstance(value, tuple):
        text = f"OID: {format_oid(value)}"
    elif vb.type is T.OCTET_STRING:
        assert isinstance(value, bytes)
        text = f'STRING: "{value.decode()}"'
    elif vb.type is T.IP_ADDRESS:
        assert isinstance(value, bytes)
        text = "IpAddress: " + ".".join(str(b) for b in value)
    elif vb.type is T.OPAQUE:
        assert value == OPAQUE_FLOAT_ONE
        text = "Opaque: Float: 1.000000"
    else:
        raise AssertionError(vb.type)
    return f"{format_oid(vb.name)} = {text}"


def serve(snmpd: PrivateSnmpd, start_agent: AgentFactory, table: OidTable = TABLE,
          **kwargs: object) -> SessionThread:
    agent = start_agent(snmpd.agentx_address, table, (ROOT,), **kwargs)
    assert agent.session.serving.wait(10), "the subagent did not register with snmpd"
    return agent


def test_snmpget_many_varbinds_of_every_type(snmpd: PrivateSnmpd,
                                             start_agent: AgentFactory) -> None:
    serve(snmpd, start_agent)
    names = [format_oid(name) for name, _, _ in SCALARS]
    got = lines(snmp_tool("snmpget", snmpd.agent, *names))
    assert got == [expected_line(TABLE.get(name)) for name, _, _ in SCALARS]


def test_snmpget_missing_instance_and_missing_object(snmpd: PrivateSnmpd,
                                                     start_agent: AgentFactory) -> None:
    serve(snmpd, start_agent)
    got = lines(snmp_tool("snmpget", snmpd.agent, f"{R}.2.1.1.2.3", f"{R}.2.1.1.9.1",
                          f"{R}.1.1.0"))
    assert got == [
        f"{R}.2.1.1.2.3 = No Such Instance currently exists at this OID",
        f"{R}.2.1.1.9.1 = No Such Object available on this agent at this OID",
        f"{R}.1.1.0 = INTEGER: -7",
    ]


def test_snmpgetnext_existing_missing_gap_and_end(snmpd: PrivateSnmpd,
                                                  start_agent: AgentFactory) -> None:
    serve(snmpd, start_agent)
    got = lines(snmp_tool("snmpgetnext", snmpd.agent,
                          f"{R}.2.1.1.2.1",       # existing: next row
                          f"{R}.2.1.1.2.3",       # the gap: lands on row 4
                          f"{R}.2.1.1.2.2.9.9",   # below an instance: next instance
                          f"{R}.1.9.0",           # last scalar: first column
                          f"{R}.2.1.1.7.5"))      # the very last value: leaves our subtree
    assert got[0] == f'{R}.2.1.1.2.2 = STRING: "vm-2"'
    assert got[1] == f'{R}.2.1.1.2.4 = STRING: "vm-4"'
    assert got[2] == f'{R}.2.1.1.2.4 = STRING: "vm-4"'
    assert got[3] == f'{R}.2.1.1.2.1 = STRING: "vm-1"'
    assert not got[4].startswith(R + ".")


@pytest.mark.parametrize("tool", ["snmpwalk", "snmpbulkwalk"])
def test_walks_return_the_whole_table_in_order(tool: str, snmpd: PrivateSnmpd,
                                               start_agent: AgentFactory) -> None:
    serve(snmpd, start_agent)
    got = lines(snmp_tool(tool, snmpd.agent, R))
    wanted = [expected_line(vb) for vb in TABLE.varbinds]
    assert len(wanted) == len(TABLE)
    assert got == wanted


def test_snmpset_is_refused_not_writable(short_tmp: Path, start_agent: AgentFactory) -> None:
    with PrivateSnmpd(short_tmp / "rw", extra_config=["rwcommunity private 127.0.0.1"]) as snmpd:
        agent = serve(snmpd, start_agent)
        result = snmp_tool("snmpset", snmpd.agent, f"{R}.1.1.0", "i", "5", community="private")
        assert result.returncode != 0
        assert "Reason: notWritable" in result.stderr
        assert lines(snmp_tool("snmpget", snmpd.agent, f"{R}.1.1.0")) == [
            f"{R}.1.1.0 = INTEGER: -7"]
        assert agent.session.serving.is_set()
        agent.stop()


def test_a_new_table_is_served_whole(snmpd: PrivateSnmpd, start_agent: AgentFactory) -> None:
    agent = serve(snmpd, start_agent)
    agent.session.store.swap(make_table(generation=100))
    got = lines(snmp_tool("snmpget", snmpd.agent, f"{R}.2.1.1.3.1"))
    assert got == [f"{R}.2.1.1.3.1 = INTEGER: 102"]


def test_tcp_transport(short_tmp: Path, start_agent: AgentFactory) -> None:
    with PrivateSnmpd(short_tmp / "tcp", agentx_tcp=True) as snmpd:
        agent = serve(snmpd, start_agent)
        assert lines(snmp_tool("snmpget", snmpd.agent, f"{R}.1.1.0")) == [
            f"{R}.1.1.0 = INTEGER: -7"]
        agent.stop()


def test_duplicate_registration_fails_loudly(snmpd: PrivateSnmpd,
                                             start_agent: AgentFactory) -> None:
    serve(snmpd, start_agent)
    second = start_agent(snmpd.agentx_address, TABLE, (ROOT,))
    assert second.ended.wait(10), "a refused registration must end the session thread"
    assert isinstance(second.error, SessionFatal)
    assert "duplicate_registration" in str(second.error)


def test_snmpd_restart_during_service(snmpd: PrivateSnmpd, start_agent: AgentFactory) -> None:
    agent = serve(snmpd, start_agent)
    assert len(lines(snmp_tool("snmpwalk", snmpd.agent, R))) == len(TABLE)
    first_session = agent.session.session_id
    snmpd.restart()

    def served_again() -> bool:
        result = snmp_tool("snmpget", snmpd.agent, f"{R}.1.1.0", request_timeout=0.5)
        return result.returncode == 0 and "INTEGER: -7" in result.stdout

    wait_for(served_again)
    assert agent.session.connections == 2
    assert agent.session.session_id != first_session or agent.session.connections == 2
    assert len(lines(snmp_tool("snmpbulkwalk", snmpd.agent, R))) == len(TABLE)


def test_trap_reaches_snmptrapd_with_its_varbinds(short_tmp: Path, trapd: PrivateSnmptrapd,
                                                  start_agent: AgentFactory) -> None:
    queue = TrapQueue(capacity=10)
    with PrivateSnmpd(short_tmp / "with-sink", trap_port=trapd.port) as snmpd:
        serve(snmpd, start_agent, traps=queue)
        trap_oid = ROOT + (0, 1)
        assert queue.put(Trap(trap_oid, (
            VarBind(ENTRY + (2, 4), T.OCTET_STRING, b"vm-4"),
            VarBind(ENTRY + (3, 4), T.INTEGER, 5),
            VarBind(ENTRY + (7, 4), T.COUNTER64, 2**40),
        )))
        wait_for(lambda: any(format_oid(trap_oid) in t for t in trapd.traps()))
        wait_for(lambda: queue.stats().sent == 1)
    ours = [t for t in trapd.traps() if format_oid(trap_oid) in t]
    assert len(ours) == 1
    fields = ours[0].split("\t")
    assert fields[0].startswith(".1.3.6.1.2.1.1.3.0 = Timeticks:")   # added by snmpd
    assert fields[1:] == [
        f".1.3.6.1.6.3.1.1.4.1.0 = OID: {format_oid(trap_oid)}",
        f'{format_oid(ENTRY + (2, 4))} = STRING: "vm-4"',
        f"{format_oid(ENTRY + (3, 4))} = INTEGER: 5",
        f"{format_oid(ENTRY + (7, 4))} = Counter64: {2**40}",
    ]
    assert queue.stats() == queue.stats().__class__(queued=1, sent=1, refused=0, dropped=0,
                                                    waiting=0)
