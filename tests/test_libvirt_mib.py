"""LIBVIRT-MIB (libvirt-snmp's libvirtGuestTable) served beside LIBVIRT-EXT-MIB, read by
name through a real snmpd with libvirt-snmp's MIB text loaded, as its users read it."""

from __future__ import annotations

import logging
import uuid as uuidlib
from pathlib import Path

import libvirt
import pytest

from agentx_virt.demo.node import node_xml
from agentx_virt.demo.snmpd import PrivateSnmpd, snmp_tool
from agentx_virt.mib.build import build_table, build_tables
from agentx_virt.mib.compile import COMPILED_DIR, compile_mib
from agentx_virt.mib.libvirt_mib import LIBVIRT_MIB, LIBVIRT_MIB_LEGACY, guest_state, row_status
from agentx_virt.mib.model import shipped_mib
from agentx_virt.oid import format_oid
from agentx_virt.snmp.table import OidTable

from .conftest import AgentFactory, serving_agent, wait_for
from .snapshots import INDEXES, full_snapshot

pytestmark = pytest.mark.peers

DOMAIN_NAMES = format_oid(shipped_mib().object("lvxDomainName").oid)   # LIBVIRT-EXT-MIB
SHARED = Path(__file__).resolve().parents[2] / "shared" / "mibs"
OPTIONS = ["-M", f"+{SHARED / 'libvirt'}:{SHARED / 'ietf'}", "-m", "+LIBVIRT-MIB"]


def guest_table(snmpd: PrivateSnmpd) -> dict[str, dict[str, str]]:
    """snmptable LIBVIRT-MIB::libvirtGuestTable by name: {guest name: {column: value}}.

    -Ob: the index numerically. Without it snmptable turns the 16-octet index into text
    and back, which fails ("OID not increasing") for a UUID with a zero octet, as the
    test driver's have; that is net-snmp's doing, and the same for libvirt-snmp."""
    result = snmp_tool("snmptable", snmpd.agent, "LIBVIRT-MIB::libvirtGuestTable",
                       options=[*OPTIONS, "-Cf", "|", "-Ci", "-Oe", "-Ob"], numeric=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = lines[2].split("|")
    rows = [{k: v.strip('"') for k, v in zip(header, line.split("|"))} for line in lines[3:]]
    return {row["libvirtGuestName"]: row for row in rows}


def uuid_by_name(snmpd: PrivateSnmpd) -> dict[str, str]:
    """Each guest's row instance read back as a UUID: {guest name: UUID}."""
    result = snmp_tool("snmpwalk", snmpd.agent, "LIBVIRT-MIB::libvirtGuestName",
                       options=[*OPTIONS, "-On", "-Oq"], numeric=False)
    assert result.returncode == 0, result.stderr
    found = {}
    base = ".1.3.6.1.4.1.36957.1.1.1.2."
    for line in result.stdout.splitlines():
        oid, _, name = line.partition(" ")
        octets = bytes(int(n) for n in oid[len(base):].split("."))
        assert len(octets) == 16             # the instance is the UUID itself
        found[name.strip('"')] = str(uuidlib.UUID(bytes=octets))
    return found


def test_the_shipped_json_is_libvirt_snmps_module_without_its_prose() -> None:
    fresh = compile_mib([SHARED / "libvirt", SHARED / "ietf"], ("LIBVIRT-MIB",))
    assert (COMPILED_DIR / "LIBVIRT-MIB.json").read_text() == fresh["LIBVIRT-MIB"]
    assert '"description"' not in fresh["LIBVIRT-MIB"]


def test_state_and_row_status_mapping() -> None:
    assert [guest_state(s) for s in (None, 0, 1, 2, 3, 4, 5, 6, 7)] == [
        None, None, 1, 2, 3, 4, 5, 6, 3]
    assert [row_status(s) for s in (None, 0, 1, 3, 5, 6, 7)] == [None, 2, 1, 1, 2, 1, 1]


def test_snmptable_by_name_and_every_set_refused(short_tmp: Path,
                                                 start_agent: AgentFactory) -> None:
    with PrivateSnmpd(short_tmp / "rw", extra_config=["rwcommunity private 127.0.0.1"]) as snmpd:
        served_by_name_and_read_only(snmpd, start_agent)


def served_by_name_and_read_only(snmpd: PrivateSnmpd, start_agent: AgentFactory) -> None:
    table = build_table(full_snapshot(), INDEXES, LIBVIRT_MIB).table
    agent = start_agent(snmpd.agentx_address, table, (LIBVIRT_MIB.load().root,))
    assert agent.session.serving.wait(10)
    rows = guest_table(snmpd)
    assert set(rows) == {"web-1", "db-2"}
    web = rows["web-1"]
    # Indexed by the 16-octet UUID, no length sub-identifier.
    assert uuid_by_name(snmpd)["web-1"] == "6695eb01-f6a4-8304-79aa-97f2502e193f"
    assert (web["libvirtGuestState"], web["libvirtGuestRowStatus"]) == ("3", "1")   # paused
    assert (web["libvirtGuestCpuCount"], web["libvirtGuestMemoryCurrent"],
            web["libvirtGuestMemoryLimit"]) == ("2", "2048", "4096")              # MiB
    assert web["libvirtGuestCpuTime"] == "123456789012"
    assert (rows["db-2"]["libvirtGuestState"], rows["db-2"]["libvirtGuestRowStatus"]) == (
        "5", "2")                                                     # shut off: notInService
    instance = ".".join(str(b) for b in bytes.fromhex("6695eb01f6a4830479aa97f2502e193f"))
    refused = snmp_tool("snmpset", snmpd.agent, f"LIBVIRT-MIB::libvirtGuestState.{instance}",
                        "i", "1", options=OPTIONS, numeric=False, community="private")
    assert refused.returncode != 0 and "Reason: notWritable" in refused.stderr
    assert guest_table(snmpd)["web-1"]["libvirtGuestState"] == "3"
    agent.stop()


@pytest.fixture
def node_uri(short_tmp: Path) -> str:
    path = short_tmp / "node.xml"
    path.write_text(node_xml(6))
    return f"test://{path}"


def test_the_agent_serves_both_mibs_from_one_snapshot(node_uri: str, snmpd: PrivateSnmpd,
                                                      short_tmp: Path) -> None:
    with serving_agent(node_uri, snmpd, short_tmp / "state"):
        wait_for(lambda: len(guest_table(snmpd)) == 6)
        rows = guest_table(snmpd)
        conn = libvirt.openReadOnly(node_uri)
        try:
            uuids = uuid_by_name(snmpd)
            for dom in conn.listAllDomains():
                row = rows[dom.name()]
                state, max_kib, kib, vcpus, _cpu_ns = dom.info()
                assert int(row["libvirtGuestState"]) == guest_state(state)
                assert int(row["libvirtGuestMemoryLimit"]) == max_kib // 1024
                assert int(row["libvirtGuestMemoryCurrent"]) == kib // 1024
                assert int(row["libvirtGuestCpuCount"]) == vcpus
                assert uuids[dom.name()] == dom.UUIDString()
        finally:
            conn.close()
        ext = snmp_tool("snmpwalk", snmpd.agent, DOMAIN_NAMES)
        assert ext.returncode == 0 and ext.stdout.count("STRING") == 6


def test_a_mib_another_subagent_holds_is_one_clear_error_and_the_rest_is_served(
        node_uri: str, snmpd: PrivateSnmpd, short_tmp: Path, start_agent: AgentFactory,
        caplog: pytest.LogCaptureFixture) -> None:
    """As with libvirt-snmp running: its table's subtree is taken at the same priority."""
    holder = start_agent(snmpd.agentx_address, OidTable(), (LIBVIRT_MIB.load().root,))
    assert holder.session.serving.wait(10)
    with caplog.at_level(logging.ERROR, logger="agentx_virt.agentx.session"), \
            serving_agent(node_uri, snmpd, short_tmp / "state") as agent:
        wait_for(lambda: snmp_tool("snmpwalk", snmpd.agent, DOMAIN_NAMES
                                   ).stdout.count("STRING") == 6)
        ext = snmp_tool("snmpwalk", snmpd.agent, DOMAIN_NAMES)
        refusals = [r.getMessage() for r in caplog.records if "refused to register" in
                    r.getMessage()]
        assert len(refusals) == 1, refusals
        assert "LIBVIRT-MIB (.1.3.6.1.4.1.36957.1.1): duplicate_registration" in refusals[0]
        assert "leave this MIB out of [mibs] serve / --mibs" in refusals[0]
        assert ext.returncode == 0
        assert agent.session is not None and agent.session.serving.is_set()


def test_the_legacy_arc_serves_the_same_table_under_enterprise_12345(
        snmpd: PrivateSnmpd, start_agent: AgentFactory) -> None:
    legacy = LIBVIRT_MIB_LEGACY.load()
    assert format_oid(legacy.root) == ".1.3.6.1.4.1.12345.1.1"
    views = [(LIBVIRT_MIB, LIBVIRT_MIB.load()), (LIBVIRT_MIB_LEGACY, legacy)]
    table = build_tables(full_snapshot(), INDEXES, views).table
    agent = start_agent(snmpd.agentx_address, table, (LIBVIRT_MIB.load().root, legacy.root))
    assert agent.session.serving.wait(10)
    walked = {}
    for arc in ("36957", "12345"):
        result = snmp_tool("snmpwalk", snmpd.agent, f".1.3.6.1.4.1.{arc}.1.1.1.2",
                           options=["-Oq"])
        assert result.returncode == 0, result.stderr
        walked[arc] = [(line.split(" ", 1)[0].split(f".{arc}.1.1.1.2.", 1)[1],
                        line.split(" ", 1)[1]) for line in result.stdout.splitlines()]
    assert walked["12345"] == walked["36957"] and len(walked["12345"]) == 2
