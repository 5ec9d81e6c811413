"""Poll health under load (bounded: about a minute and a half): 500 test-driver domains
polled every second while walks run give no lvxDomainPollStalled, and a real hung QEMU
domain polled at the same time still gets its stalled/recovered pair."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import libvirt
import pytest

from agentx_virt.demo.snmpd import PrivateSnmpd, snmp_tool
from agentx_virt.mib.model import shipped_mib
from agentx_virt.oid import format_oid
from tests.support.snmptrapd import PrivateSnmptrapd
from tests.support.testdriver import define_domains

from .conftest import private_libvirtd, wait_for
from .test_traps import received

pytestmark = pytest.mark.peers
MIB = shipped_mib()
DOMAINS = 500
LOAD_S = 60.0


@contextmanager
def agent_behind_snmpd(uri: str, work: Path) -> Iterator[tuple[PrivateSnmpd,
                                                                PrivateSnmptrapd]]:
    """``agentx-virt run`` polling ``uri`` every second, behind its own snmpd and
    snmptrapd (TCP); stopped by pid."""
    with PrivateSnmptrapd(work / "trapd", transport="tcp") as trapd, \
            PrivateSnmpd(work / "snmpd", trap_port=trapd.port, trap_transport="tcp") as snmpd:
        with open(work / "agent.log", "wb") as log:
            agent = subprocess.Popen(
                [sys.executable, "-m", "agentx_virt", "run", "--uri", uri, "--agentx",
                 snmpd.agentx_address, "--interval", "1", "--state-dir", str(work / "state")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            yield snmpd, trapd
        finally:
            agent.terminate()
            agent.wait(30)


def statuses(snmpd: PrivateSnmpd) -> list[str]:
    table = format_oid(MIB.object("lvxDomainTable").oid)
    status = format_oid(MIB.object("lvxDomainPollStatus").oid) + "."
    lines = snmp_tool("snmpbulkwalk", snmpd.agent, table, options=["-Oq"],
                      request_timeout=10).stdout.splitlines()
    return [line.split()[-1] for line in lines if line.startswith(status)]


def test_walks_under_load_make_no_false_stalls_and_a_hung_domain_still_stalls(
        tmp_path_factory: pytest.TempPathFactory, short_tmp: Path) -> None:
    daemon = private_libvirtd(tmp_path_factory, "the load test")
    with daemon:
        conn = libvirt.open(daemon.test_uri)          # holds the test driver's domains
        define_domains(conn, DOMAINS)
        daemon.start_domain("qh", 11)
        (short_tmp / "a").mkdir()
        (short_tmp / "b").mkdir()
        with agent_behind_snmpd(daemon.test_uri, short_tmp / "a") as (snmpd, trapd), \
                agent_behind_snmpd(daemon.uri, short_tmp / "b") as (qemu_snmpd, qemu_trapd):
            wait_for(lambda: len(statuses(snmpd)) == DOMAINS + 1, 60)   # with "test"
            wait_for(lambda: statuses(qemu_snmpd) == ["1"], 60)
            seen: list[str] = []
            pid = daemon.qemu_pid("qh")
            start = time.monotonic()
            stopped_at = start + 10
            os.kill(pid, signal.SIGSTOP)
            try:
                while time.monotonic() - start < LOAD_S:
                    walk_at = time.monotonic() + 5
                    seen += statuses(snmpd)
                    if stopped_at and time.monotonic() >= stopped_at + 10:
                        os.kill(pid, signal.SIGCONT)       # hung for ~20 s, then back
                        stopped_at = 0
                    while time.monotonic() < walk_at:     # the next walk in 5 s
                        time.sleep(0.1)
            finally:
                os.kill(pid, signal.SIGCONT)
            wait_for(lambda: received(qemu_trapd, "lvxDomainPollRecovered") != [], 30)
            stalled = received(trapd, "lvxDomainPollStalled")
            print(f"{len(seen)} status cells in {len(seen) // (DOMAINS + 1)} walks: "
                  f"{seen.count('2')} timedOut, {seen.count('5')} skipped; "
                  f"{len(stalled)} stalled traps for healthy domains")
            assert stalled == [] and received(trapd, "lvxDomainPollRecovered") == []
            hung = [r.trap for r in received(qemu_trapd, "lvxDomainPollStalled") +
                    received(qemu_trapd, "lvxDomainPollRecovered")]
            assert hung == ["lvxDomainPollStalled", "lvxDomainPollRecovered"]
            assert all(r.values["lvxDomainName"] == "qh"
                       for r in received(qemu_trapd, "lvxDomainPollStalled"))
        conn.close()
