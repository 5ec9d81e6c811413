"""The whole agent: libvirt's test driver → poller → table → AgentX → a real snmpd → CLI."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import libvirt
import pytest

from agentx_virt.app import cli
from agentx_virt.app.config import Config
from agentx_virt.app.daemon import Agent
from agentx_virt.demo import walk_domain_table
from agentx_virt.demo.agent_thread import AgentThread
from agentx_virt.demo.node import domain_uuid, node_xml
from agentx_virt.demo.snmpd import PrivateSnmpd, snmp_tool
from agentx_virt.mib.model import shipped_mib
from agentx_virt.oid import format_oid
from agentx_virt.snmp.domain_index import STATE_FILE, DomainIndexRegistry

from .conftest import wait_for

pytestmark = pytest.mark.peers
MIB = shipped_mib()


@pytest.fixture
def node_uri(short_tmp: Path) -> str:
    path = short_tmp / "node.xml"
    path.write_text(node_xml(20, tags=2))
    return f"test://{path}"


def column(snmpd: PrivateSnmpd, name: str) -> dict[str, str]:
    """Walk one column numerically: {instance suffix: value}."""
    base = format_oid(MIB.object(name).oid)
    result = snmp_tool("snmpbulkwalk", snmpd.agent, base, options=["-Oqe"])
    assert result.returncode == 0, result.stderr
    values = {}
    for line in result.stdout.splitlines():
        oid, _, value = line.partition(" ")
        values[oid[len(base) + 1:]] = value.strip('"')
    return values


def test_served_values_match_libvirt(node_uri: str, snmpd: PrivateSnmpd,
                                     short_tmp: Path) -> None:
    agent = Agent(Config(uri=node_uri, agentx=snmpd.agentx_address, interval_s=1,
                         domain_timeout_s=0.5, instances=2, state_dir=short_tmp / "state"))
    running = AgentThread(agent).start()
    try:
        assert running.wait_ready(20)
        wait_for(lambda: len(column(snmpd, "lvxDomainName")) == 20)
        names = column(snmpd, "lvxDomainName")
        uuids = column(snmpd, "lvxDomainUuid")
        states = column(snmpd, "lvxDomainState")
        sources = column(snmpd, "lvxDiskSource")
        macs = column(snmpd, "lvxIfMac")
        conn = libvirt.openReadOnly(node_uri)
        try:
            for index, name in names.items():
                dom = conn.lookupByName(name)
                assert uuids[index].replace(" ", "").lower() == dom.UUIDString().replace("-", "")
                assert int(states[index]) == dom.state()[0]
                assert sources[f"{index}.3.118.100.97"] == f"/var/lib/images/{name}.qcow2"
                mac = dom.XMLDesc(0).split("<mac address='")[1].split("'")[0]
                nic = f"tap{int(name[2:])}n0"
                instance = f"{index}.{len(nic)}." + ".".join(str(ord(c)) for c in nic)
                assert macs[instance].strip().replace(" ", ":").lower() == mac
        finally:
            conn.close()
        count_oid = format_oid(MIB.object("lvxDomainCount").oid + (0,))
        count = snmp_tool("snmpget", snmpd.agent, count_oid)
        assert count.stdout.strip().endswith("Gauge32: 20")
        state_file = short_tmp / "state" / "domain-index.json"
        wait_for(lambda: state_file.exists())
        assert len(json.loads(state_file.read_text())["domains"]) == 20
    finally:
        exit_code = running.stop()
    assert exit_code == 0


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agentx_virt", *args], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def test_run_stops_cleanly_on_sigterm_and_a_second_agent_is_refused(
        node_uri: str, snmpd: PrivateSnmpd, short_tmp: Path) -> None:
    command = [sys.executable, "-m", "agentx_virt", "run", "--uri", node_uri, "--agentx",
               snmpd.agentx_address, "--interval", "1", "--state-dir", str(short_tmp / "s1")]
    first = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: "vm0001" in column(snmpd, "lvxDomainName").values())
        second = run_cli("run", "--uri", node_uri, "--agentx", snmpd.agentx_address,
                         "--state-dir", str(short_tmp / "s2"), timeout=60)
        assert second.returncode == 1
        assert "duplicate_registration" in second.stderr
        first.send_signal(signal.SIGTERM)
        _, stderr = first.communicate(timeout=20)
        assert first.returncode == 0, stderr
        assert "AgentX session" in stderr and "closed" in stderr
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


def test_run_reports_configuration_errors(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[poll]\ninterval = \"often\"\n")
    result = run_cli("run", "--config", str(config))
    assert result.returncode == 2
    assert f"{config}:2: [poll] interval: must be a number" in result.stderr


@pytest.mark.parametrize("form", ["table", "json", "oids"])
def test_dump_formats(node_uri: str, form: str) -> None:
    result = run_cli("dump", "--uri", node_uri, "--format", form)
    assert result.returncode == 0, result.stderr
    if form == "table":
        assert "20 domain(s)" in result.stdout and "vm0007" in result.stdout
        assert "paused (unknown)" in result.stdout
    elif form == "json":
        data = json.loads(result.stdout)
        assert len(data["domains"]) == 20 and data["host"]["hypervisor_type"] == "TEST"
    else:
        lines = result.stdout.splitlines()
        assert any(line.startswith(".1.3.6.1.4.1.36957.3.1.2.1.3.") and '"vm0001"' in line
                   for line in lines)
        assert not any(line.startswith("# left out") for line in lines)


def test_dump_without_libvirt_exits_1(tmp_path: Path) -> None:
    result = run_cli("dump", "--uri", f"test://{tmp_path}/none.xml")
    assert result.returncode == 1
    assert "NOT connected" in result.stdout


def test_demo_command() -> None:
    result = run_cli("--log-level", "WARNING", "demo", "--domains", "6", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "snmpbulkwalk of lvxDomainTable through snmpd: 6 rows" in result.stdout
    rows = [line.split() for line in result.stdout.splitlines() if line[:5].strip().isdigit()]
    assert [row[1] for row in rows] == [f"vm000{n}" for n in range(1, 7)]
    assert [row[2] for row in rows] == ["running"] * 5 + ["paused"]


def test_walk_helper_decodes_enums(node_uri: str, snmpd: PrivateSnmpd,
                                   short_tmp: Path) -> None:
    agent = Agent(Config(uri=node_uri, agentx=snmpd.agentx_address, interval_s=1,
                         domain_timeout_s=0.5, state_dir=short_tmp / "st"))
    running = AgentThread(agent).start()
    try:
        assert running.wait_ready(20)
        deadline = time.monotonic() + 10
        rows: dict[int, dict[str, str]] = {}
        while time.monotonic() < deadline and len(rows) < 20:
            _, rows = walk_domain_table(snmpd.agent)
        assert {r["lvxDomainState"] for r in rows.values()} == {"running", "paused",
                                                                "shutoff"}
        assert {r["lvxDomainSeverity"] for r in rows.values()} == {"okay", "warning"}
    finally:
        running.stop()


def test_dump_shows_the_indexes_the_walk_shows_and_never_writes_the_state(
        node_uri: str, snmpd: PrivateSnmpd, short_tmp: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    state = short_tmp / "state"
    seeded = DomainIndexRegistry.load(state / STATE_FILE)      # indexes not in name order
    seeded.assign([domain_uuid(n) for n in range(20, 0, -1)], now=time.time())
    agent = Agent(Config(uri=node_uri, agentx=snmpd.agentx_address, interval_s=1,
                         domain_timeout_s=0.5, state_dir=state))
    running = AgentThread(agent).start()
    try:
        assert running.wait_ready(20)
        wait_for(lambda: len(column(snmpd, "lvxDomainName")) == 20)
        walked = {name: int(index) for index, name in column(snmpd, "lvxDomainName").items()}
    finally:
        running.stop()
    assert walked["vm0020"] == 1 and walked["vm0001"] == 20
    before = (state / STATE_FILE).read_bytes()
    assert cli.main(["dump", "--uri", node_uri, "--state-dir", str(state),
                     "--format", "json"]) == 0
    dumped = {d["name"]: d["index"] for d in json.loads(capsys.readouterr().out)["domains"]}
    assert {n: i for n, i in dumped.items() if n in walked} == walked
    assert (state / STATE_FILE).read_bytes() == before
