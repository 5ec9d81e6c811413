"""``kill -9`` of ``agentx-virt run`` at random moments while domains are being defined:
after every restart each domain keeps the lvxDomainIndex that walks and traps showed."""

from __future__ import annotations

import functools
import random
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

import libvirt
import pytest

from agentx_virt.demo.snmpd import PrivateSnmpd, snmp_tool
from tests.support.snmptrapd import PrivateSnmptrapd
from tests.support.testdriver import define_domain

from .conftest import private_libvirtd, wait_for
from .test_traps import oid_of, received

pytestmark = pytest.mark.peers
KILLS = 20


def walk_indexes(snmpd: PrivateSnmpd) -> dict[str, str]:
    """name -> lvxDomainIndex, as a walk of lvxDomainName shows them."""
    base = oid_of("lvxDomainName")
    result = snmp_tool("snmpbulkwalk", snmpd.agent, base, options=["-Oqe"])
    return {line.split(" ", 1)[1].strip('"'): line.split(" ", 1)[0][len(base) + 1:]
            for line in result.stdout.splitlines() if line.startswith(base + ".")}


def start_agent(uri: str, snmpd: PrivateSnmpd, state_dir: Path,
                log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "agentx_virt", "run", "--uri", uri,
             "--agentx", snmpd.agentx_address, "--interval", "1",
             "--state-dir", str(state_dir), "--log-level", "WARNING"],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file)


def holds_before(check: Callable[[], bool], deadline: float) -> bool:
    """Whether ``check`` holds before the monotonic ``deadline`` (checked every 20 ms)."""
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def test_every_domain_keeps_its_index_across_kill_9_at_random_moments(
        tmp_path_factory: pytest.TempPathFactory, short_tmp: Path) -> None:
    daemon = private_libvirtd(tmp_path_factory, "the kill -9 test")
    rng = random.Random(2741)
    shown: dict[str, set[str]] = defaultdict(set)     # name -> every index shown for it
    defined: list[str] = []

    def trapped(name: str) -> bool:
        return any(r.values["lvxDomainName"] == name
                   for r in received(trapd, "lvxDomainDefined"))

    def record(indexes: dict[str, str]) -> None:
        for name, index in indexes.items():
            shown[name].add(index)

    with daemon, PrivateSnmptrapd(short_tmp / "trapd", transport="tcp") as trapd, \
            PrivateSnmpd(short_tmp / "snmpd", trap_port=trapd.port,
                         trap_transport="tcp") as snmpd:
        conn = libvirt.open(daemon.test_uri)     # holds the test driver's state
        # Names in random order: the poller gives new domains indexes in name order, the
        # notifier in event order, so an index that was lost shows as a different one.
        numbers = iter(rng.sample(range(1000, 10000), 9000))
        state_dir, log = short_tmp / "state", short_tmp / "agent.log"
        try:
            for kill in range(KILLS + 1):       # the last run is stopped cleanly
                agent = start_agent(daemon.test_uri, snmpd, state_dir, log)
                try:
                    if kill:     # the restarted agent serves every domain defined so far
                        wait_for(lambda: set(defined) <= set(walk_indexes(snmpd)), 30)
                        record(walk_indexes(snmpd))
                    if kill == KILLS:
                        break
                    # Define domains until a random moment, then kill -9 there.
                    moment = time.monotonic() + rng.uniform(0.0, 2.5)
                    while time.monotonic() < moment:
                        name = define_domain(conn, next(numbers), start=False).name()
                        defined.append(name)
                        holds_before(functools.partial(trapped, name), moment)
                    agent.kill()
                finally:
                    if agent.poll() is None:
                        agent.terminate()
                    agent.wait(20)
                record({r.values["lvxDomainName"]: r.instance
                        for r in received(trapd, "lvxDomainDefined")})
                assert {name: sorted(i) for name, i in shown.items() if len(i) > 1} == {}, \
                    f"after kill {kill + 1}: a domain was shown with two indexes"
        finally:
            conn.close()
    assert {name: sorted(i) for name, i in shown.items() if len(i) > 1} == {}
    owners: dict[str, list[str]] = defaultdict(list)
    for name, indexes in shown.items():
        owners[indexes.pop()].append(name)
    assert {index: names for index, names in owners.items() if len(names) > 1} == {}, \
        "an index was given to two domains"
    assert len(defined) >= KILLS, "domains were defined during the runs"
    print(f"{KILLS} kills; {len(defined)} domains defined, each shown with one index")
