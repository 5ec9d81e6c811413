"""Reloads of ``agentx-virt run`` behind a real snmpd and snmptrapd, with systemd's
notification socket opened by the test.

Each setting is changed by SIGHUP and observed from outside: the poll spacing from
lvxLastPollStart, rows leaving and coming back with a filter, a threshold crossing
after its rule is added (trap and lvxAlarmTable), a MIB registered and unregistered
in the same session, a bad file refused with the status scalars, its trap and
check-config saying the same, 20 reloads under running walks, a new AgentX address,
and a restart that sends no crossing again.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import pytest

from agentx_virt.demo.node import domain_uuid, node_xml
from agentx_virt.demo.snmpd import PrivateSnmpd, snmp_tool
from agentx_virt.mib.model import shipped_mib
from agentx_virt.oid import format_oid
from tests.support.snmptrapd import PrivateSnmptrapd

from .conftest import wait_for, wait_polls
from .test_traps import ours

pytestmark = pytest.mark.peers
MIB = shipped_mib()
VM_TABLE = ".1.3.6.1.2.1.236.1.4"       # RFC 7666 vmTable


def oid(name: str, instance: str = "") -> str:
    return format_oid(MIB.object(name).oid) + instance


class Agent:
    """``agentx-virt run`` as a process, its log, and the systemd messages it sent."""

    def __init__(self, workdir: Path, config: Path, notify: socket.socket) -> None:
        self.log_path = workdir / f"agent-{time.monotonic_ns()}.log"
        self.notify = notify
        self.messages: list[str] = []
        env = dict(os.environ, NOTIFY_SOCKET=notify.getsockname(), WATCHDOG_USEC="1000000")
        with open(self.log_path, "wb") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "agentx_virt", "run", "--config", str(config),
                 "--state-dir", str(workdir / "state")],
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, env=env)
        self.listener = threading.Thread(target=self._listen, daemon=True)
        self.listener.start()

    def log(self) -> str:
        return self.log_path.read_text()

    def received(self) -> list[str]:
        """Every systemd message so far (one datagram each)."""
        return list(self.messages)

    def _listen(self) -> None:
        """Read the notification socket as systemd would, at once."""
        while self.process.poll() is None:
            try:
                self.messages.append(self.notify.recv(4096).decode())
            except socket.timeout:
                pass

    def reload(self, config: Path, text: str) -> None:
        before = self.log().count("reload")
        config.write_text(text)
        os.kill(self.process.pid, signal.SIGHUP)
        wait_for(lambda: self.log().count("reload") > before, 15)

    def stop(self) -> int:
        self.process.terminate()
        code = self.process.wait(30)
        self.listener.join(5)
        return code


def config_text(snmpd: PrivateSnmpd, node: Path, interval: float = 1, extra: str = "",
                mibs: str = '"LIBVIRT-EXT-MIB"', level: str = "INFO",
                agentx: Optional[str] = None) -> str:
    return (f'[libvirt]\nuri = "test://{node}"\n\n[agentx]\n'
            f'address = "{agentx or snmpd.agentx_address}"\n\n'
            f'[agent]\nlog_level = "{level}"\n\n[mibs]\nserve = [{mibs}]\n\n'
            f'[poll]\ninterval = {interval}\ndomain_timeout = 0.5\n{extra}')


RULES = f"""
[[threshold]]
metric = "lvxDomainMemoryCurrentKiB"
rising = 1000000000
falling = 100

[[threshold]]
metric = "lvxDomainMemoryCurrentKiB"
rising = 600000
domains = ["vm000[12]"]
severity = "failure"

[[threshold]]
metric = "lvxDomainMemoryCurrentKiB"
rising = 100000
uuids = ["{domain_uuid(1)}"]
"""


def get(snmpd: PrivateSnmpd, name: str, instance: str = ".0") -> str:
    return snmp_tool("snmpget", snmpd.agent, oid(name, instance), options=["-Oqv"]).stdout.strip()


def names(snmpd: PrivateSnmpd) -> list[str]:
    walk = snmp_tool("snmpbulkwalk", snmpd.agent, oid("lvxDomainName"), options=["-Oqv"])
    return [line.strip('"') for line in walk.stdout.split()]


def poll_starts(snmpd: PrivateSnmpd, seconds: float) -> list[float]:
    """The times (s) at which lvxLastPollStart changed while watched for ``seconds``."""
    seen: list[str] = []
    changes: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = get(snmpd, "lvxLastPollStart")
        if not seen or value != seen[-1]:
            seen.append(value)
            changes.append(time.monotonic())
        time.sleep(0.05)
    return changes[1:]           # the first is when watching began


def spacing(starts: list[float]) -> float:
    gaps = sorted(b - a for a, b in zip(starts, starts[1:]))
    return gaps[len(gaps) // 2]


def vm_rows(snmpd: PrivateSnmpd) -> int:
    """Values under VM-MIB's vmTable."""
    walk = snmp_tool("snmpbulkwalk", snmpd.agent, VM_TABLE).stdout
    return walk.count(VM_TABLE + ".")


def has(messages: list[str], line: str) -> bool:
    """Whether a systemd message has ``line`` as one of its lines."""
    return any(line in message.split("\n") for message in messages)


def crossed(trapd: PrivateSnmptrapd) -> list[str]:
    return sorted(r.values["lvxDomainName"] for r in ours(trapd.traps())
                  if r.trap == "lvxDomainThresholdCrossed")


@pytest.fixture
def lab(short_tmp: Path):  # type: ignore[no-untyped-def]
    trapd = PrivateSnmptrapd(short_tmp / "trapd", transport="tcp").start()
    snmpd = PrivateSnmpd(short_tmp / "snmpd", trap_port=trapd.port, trap_transport="tcp").start()
    other = PrivateSnmpd(short_tmp / "snmpd2").start()
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(short_tmp / "notify.sock"))
    notify.settimeout(0.2)
    node = short_tmp / "node.xml"
    node.write_text(node_xml(6))
    try:
        yield short_tmp, trapd, snmpd, other, notify, node
    finally:
        notify.close()
        other.stop()
        snmpd.stop()
        trapd.stop()


def test_every_setting_applies_live_in_one_session(lab) -> None:  # type: ignore[no-untyped-def]
    workdir, trapd, snmpd, other, notify, node = lab
    config = workdir / "agentx-virt.toml"
    config.write_text(config_text(snmpd, node))
    agent = Agent(workdir, config, notify)
    try:
        wait_for(lambda: get(snmpd, "lvxDomainCount") == "6", 30)
        wait_for(lambda: has(agent.received(), "READY=1") and
                 has(agent.received(), "WATCHDOG=1"), 10)
        assert any(m.startswith("STATUS=6 domains, last poll") for m in agent.received())

        # The interval: polls a second apart, then three.
        assert 0.5 < spacing(poll_starts(snmpd, 4)) < 1.6
        agent.reload(config, config_text(snmpd, node, interval=3))
        assert get(snmpd, "lvxPollIntervalSeconds") == "3"
        assert 2.5 < spacing(poll_starts(snmpd, 10)) < 3.6
        agent.reload(config, config_text(snmpd, node))

        # A filter: the row goes, then comes back.
        agent.reload(config, config_text(snmpd, node, extra='exclude = ["vm0003"]\n'))
        wait_for(lambda: "vm0003" not in names(snmpd), 10)
        assert len(names(snmpd)) == 5
        agent.reload(config, config_text(snmpd, node))
        wait_for(lambda: "vm0003" in names(snmpd), 10)

        # Thresholds added: the most specific rule wins (vm0001 by UUID, vm0002 by
        # name pattern at failure; the unscoped rule is never crossed).
        agent.reload(config, config_text(snmpd, node) + RULES)
        wait_for(lambda: crossed(trapd) == ["vm0001", "vm0002"], 15)
        assert get(snmpd, "lvxAlarmsActive") == "2"
        alarms = snmp_tool("snmpbulkwalk", snmpd.agent, oid("lvxAlarmSeverity"),
                           options=["-Oqv"]).stdout.split()
        assert sorted(alarms) == ["2", "3"]          # warning (UUID rule), failure (pattern)
        sent = [r for r in ours(trapd.traps()) if r.trap == "lvxDomainThresholdCrossed"]
        assert {r.values["lvxDomainEventThreshold"] for r in sent} == {"100000", "600000"}

        # A MIB registered, then unregistered, in the same session.
        assert vm_rows(snmpd) == 0
        agent.reload(config, config_text(snmpd, node, mibs='"LIBVIRT-EXT-MIB", "VM-MIB"')
                     + RULES)
        wait_for(lambda: vm_rows(snmpd) >= 6, 15)
        agent.reload(config, config_text(snmpd, node) + RULES)
        wait_for(lambda: vm_rows(snmpd) == 0, 15)
        assert "now serves VM-MIB" in agent.log() and "no longer serves" in agent.log()

        # A bad file: refused, counted, told by a trap; check-config says the same.
        good = config.read_text()
        agent.reload(config, good.replace("interval = 1\n", "interval = -1\n"))
        assert get(snmpd, "lvxConfigReloadFailures") == "1"
        error = get(snmpd, "lvxConfigLastError").strip('"')
        assert f"{config}:14: [poll] interval: must be a number of seconds" in error
        check = subprocess.run([sys.executable, "-m", "agentx_virt", "check-config",
                                str(config)], capture_output=True, text=True)
        assert check.returncode == 2 and error in check.stderr
        wait_for(lambda: any(r.trap == "lvxConfigReloadFailed" for r in ours(trapd.traps())))
        assert names(snmpd)[:1] == ["vm0001"]     # still serving the last good one
        config.write_text(good)

        # 20 reloads while walks run: every walk completes with every row.
        walks: list[tuple[int, int]] = []
        stop = threading.Event()

        def walk() -> None:
            while not stop.is_set():
                got = snmp_tool("snmpbulkwalk", snmpd.agent, oid("lvxDomainName"))
                walks.append((got.returncode, got.stdout.count(oid("lvxDomainName"))))

        walker = threading.Thread(target=walk)
        walker.start()
        for n in range(20):
            agent.reload(config, config_text(snmpd, node, interval=1 + n % 2,
                                             level=("INFO", "DEBUG")[n % 2]) + RULES)
            time.sleep(0.2)
        stop.set()
        walker.join(60)
        assert len(walks) >= 5 and set(walks) == {(0, 6)}
        reloads = get(snmpd, "lvxConfigReloads")
        assert reloads == "27"
        assert agent.log().count(" open at ") == 1, "the session was reopened"
        messages = agent.received()
        reloading = [m for m in messages if m.startswith("RELOADING=1")]
        assert len(reloading) >= 20 and all("MONOTONIC_USEC=" in m for m in reloading)
        assert has(messages[messages.index(reloading[-1]) + 1:], "READY=1")

        # A new AgentX address: a new session there; the index of each domain stays.
        index = snmp_tool("snmpbulkwalk", snmpd.agent, oid("lvxDomainName")).stdout
        agent.reload(config, config_text(snmpd, node, agentx=other.agentx_address) + RULES)
        wait_for(lambda: get(other, "lvxDomainCount") == "6", 15)
        assert snmp_tool("snmpbulkwalk", other.agent, oid("lvxDomainName")).stdout == index
        wait_for(lambda: "No Such Object" in snmp_tool(
            "snmpget", snmpd.agent, oid("lvxDomainCount", ".0")).stdout, 10)
        assert get(other, "lvxAlarmsActive") == "2"
        assert agent.process.poll() is None
    finally:
        assert agent.stop() == 0

    # A restart: the alarms are still active, and no crossing is sent again.
    before = crossed(trapd)
    config.write_text(config_text(snmpd, node) + RULES)
    again = Agent(workdir, config, notify)
    try:
        wait_for(lambda: get(snmpd, "lvxAlarmsActive") == "2", 30)
        time.sleep(3)                              # three more polls
        assert crossed(trapd) == before
    finally:
        assert again.stop() == 0


READERS = "instances = 2\nworkers = 3\n"    # kept: no reader replaced, no extra poll


def column(snmpd: PrivateSnmpd, name: str) -> list[str]:
    walk = snmp_tool("snmpbulkwalk", snmpd.agent, oid(name), options=["-Oqv"]).stdout
    return [] if "No Such" in walk else walk.split()


def test_rate_thresholds_readers_statistics_and_a_new_uri_apply_live(lab) -> None:  # type: ignore[no-untyped-def]
    """libvirt's test driver counts disk and NIC traffic from the clock (about 100,000
    read requests and 100,000 received bytes per second per device), which gives
    steady rates to aim thresholds at."""
    workdir, trapd, snmpd, _other, notify, node = lab
    node.write_text(node_xml(6, tags=2))          # vm0001, vm0004: virt-1; 3, 6: virt-0
    config = workdir / "agentx-virt.toml"
    config.write_text(config_text(snmpd, node))
    agent = Agent(workdir, config, notify)

    def rate_traps(name: str) -> list[tuple[str, str, str]]:
        return sorted((r.values["lvxDomainName"], r.values["lvxDomainEventMetric"],
                       r.values["lvxDomainEventValue"][:0]) for r in ours(trapd.traps())
                      if r.trap == name)

    try:
        wait_for(lambda: get(snmpd, "lvxDomainCount") == "6", 30)
        # Readers and workers: a second reader takes the virt-1 domains, and no row reads
        # notPolled while the readers are replaced.
        assert set(column(snmpd, "lvxDomainReader")) == {"0"}
        assert "4" not in column(snmpd, "lvxDomainPollStatus")
        agent.reload(config, config_text(snmpd, node, extra=READERS))
        states = column(snmpd, "lvxDomainPollStatus")
        assert len(states) == 6 and "4" not in states, states
        wait_for(lambda: column(snmpd, "lvxDomainReader").count("1") == 2, 15)
        assert "reload: 2 reader(s) of 3 worker(s) replace 1" in agent.log()

        # A rate rule with for = 3, scoped to tag virt-1 (2 domains of 1 or 2 NICs, each
        # NIC about 800 kbit/s); an unscoped one on write requests, never reached.
        rules = ('[[threshold]]\nmetric = "nicRxBitsPerSecond"\nrising = 500000\n'
                 'falling = 400000\nfor = 3\ntags = ["virt-1"]\n\n'
                 '[[threshold]]\nmetric = "diskWriteIops"\nrising = 1000000000\n')
        agent.reload(config, config_text(snmpd, node, extra=READERS) + rules)
        wait_polls(snmpd, 2)
        assert rate_traps("lvxDomainThresholdCrossed") == []     # not yet 3 polls above
        wait_for(lambda: [n for n, _, _ in rate_traps("lvxDomainThresholdCrossed")] ==
                 ["vm0001", "vm0004"], 20)
        values = column(snmpd, "lvxAlarmValue")
        assert len(values) == 2 and all(700_000 < int(v) < 2_000_000 for v in values), values

        # Hysteresis: a rule moved above the value keeps the alarm while the value is
        # above falling, and clears it once falling is above the value.
        moved = rules.replace("rising = 500000\nfalling = 400000",
                              "rising = 5000000\nfalling = 600000")
        agent.reload(config, config_text(snmpd, node, extra=READERS) + moved)
        wait_polls(snmpd, 3)
        assert rate_traps("lvxDomainThresholdCleared") == []
        assert column(snmpd, "lvxAlarmThreshold") == ["5000000", "5000000"]
        cleared = moved.replace("falling = 600000", "falling = 4000000")
        agent.reload(config, config_text(snmpd, node, extra=READERS) + cleared)
        wait_for(lambda: len(rate_traps("lvxDomainThresholdCleared")) == 2, 15)
        assert get(snmpd, "lvxAlarmsActive") == "0"

        # Trap kinds: without "config" a refused reload sends no lvxConfigReloadFailed.
        kinds = '\n[traps]\nenable = ["state", "threshold"]\n'
        agent.reload(config, config_text(snmpd, node) + kinds)
        agent.reload(config, config_text(snmpd, node) + kinds + "[poll]\n")   # duplicate
        assert get(snmpd, "lvxConfigReloadFailures") == "1"
        time.sleep(1)
        assert not any(r.trap == "lvxConfigReloadFailed" for r in ours(trapd.traps()))

        # Statistics groups: without "interface" the NIC table empties.
        assert column(snmpd, "lvxIfRxBytes")
        agent.reload(config, config_text(
            snmpd, node, extra='stats = ["cpu", "memory", "vcpu", "disk"]\n'))
        wait_for(lambda: column(snmpd, "lvxIfRxBytes") == [], 15)

        # A new URI: the poller and the event watcher reconnect; the new host's domains.
        other = workdir / "other.xml"
        other.write_text(node_xml(3))
        agent.reload(config, config_text(snmpd, other))
        wait_for(lambda: get(snmpd, "lvxDomainCount") == "3", 15)
        assert get(snmpd, "lvxLibvirtUri") == f'"test://{other}"'
        assert agent.log().count(" open at ") == 1
    finally:
        assert agent.stop() == 0
