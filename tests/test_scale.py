"""A host bigger than one cycle can reach (bounded: about two and a half minutes): 5,000
test-driver domains on a private libvirtd polled every 5 s, whose remote test driver
needs about ten round trips per domain, so each cycle reaches only part of them.  Every
walk made while it polls has every domain with every column a single poll gives (the
rate columns need two polls of the same domain)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import libvirt
import pytest

from agentx_virt.app.config import Config
from agentx_virt.collector.poller import Poller
from agentx_virt.demo.snmpd import PrivateSnmpd, snmp_command, tool_env
from agentx_virt.mib.build import build_tables
from agentx_virt.mib.views import VIEWS
from agentx_virt.model.snapshot import Snapshot
from agentx_virt.oid import OID, format_oid, parse_oid
from agentx_virt.snmp.domain_index import DomainIndexRegistry
from tests.support.testdriver import define_domains

from .conftest import private_libvirtd, wait_for

pytestmark = pytest.mark.peers
DOMAINS = 5000
VIEW = VIEWS["LIBVIRT-EXT-MIB"]
MIB = VIEW.load()
ENTRY = MIB.object("lvxDomainEntry").oid
NAME_COLUMN = MIB.object("lvxDomainName").oid[-1]


def columns_by_name(entries: list[tuple[OID, str]]) -> dict[str, set[int]]:
    """The lvxDomainEntry columns present for each domain, by its name."""
    columns: dict[OID, set[int]] = defaultdict(set)
    names: dict[OID, str] = {}
    for oid, value in entries:
        if oid[:len(ENTRY)] != ENTRY or len(oid) < len(ENTRY) + 2:
            continue
        column, index = oid[len(ENTRY)], oid[len(ENTRY) + 1:]
        columns[index].add(column)
        if column == NAME_COLUMN:
            names[index] = value.strip('"')
    return {names[index]: found for index, found in columns.items() if index in names}


def one_poll(uri: str) -> dict[str, set[int]]:
    """The columns one poll with no deadline gives each domain, built in-process."""
    snapshots: list[Snapshot] = []
    poller = Poller(Config(uri=uri, interval_s=600, domain_timeout_s=300), snapshots.append)
    poller.partition_once()
    for reader in poller.readers:
        reader.poll_once()
    poller.stop(1)
    snapshot = snapshots[-1]
    indexes = DomainIndexRegistry().index_domains(snapshot.domains, time.time())
    table = build_tables(snapshot, indexes, [(VIEW, MIB)]).table
    name = ENTRY + (NAME_COLUMN,)
    return columns_by_name([(vb.name, vb.value.decode() if vb.name[:len(name)] == name
                             and isinstance(vb.value, bytes) else "") for vb in table.varbinds])


def walk(snmpd: PrivateSnmpd) -> list[tuple[OID, str]]:
    done = subprocess.run(snmp_command("snmpbulkwalk", snmpd.agent, format_oid(ENTRY),
                                       options=["-Cr25", "-On", "-Oq"], request_timeout=30),
                          capture_output=True, env=tool_env(), stdin=subprocess.DEVNULL,
                          check=False, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-500:]
    entries = []
    for line in done.stdout.decode().splitlines():
        name, _, value = line.partition(" ")
        entries.append((parse_oid(name), value))
    return entries


def test_every_walk_of_a_host_too_big_for_one_cycle_has_every_domain_whole(
        tmp_path_factory: pytest.TempPathFactory, short_tmp: Path) -> None:
    daemon = private_libvirtd(tmp_path_factory, "the scale test")
    with daemon:
        holder = libvirt.open(daemon.test_uri)       # holds the test driver's domains
        define_domains(holder, DOMAINS)
        expected = one_poll(daemon.test_uri)
        assert len(expected) == DOMAINS + 1          # with the built-in one
        config = short_tmp / "agentx-virt.toml"
        config.write_text('[mibs]\nserve = ["LIBVIRT-EXT-MIB"]\n')
        with PrivateSnmpd(short_tmp / "snmpd") as snmpd, \
                open(short_tmp / "agent.log", "wb") as log:
            agent = subprocess.Popen(
                [sys.executable, "-m", "agentx_virt", "run", "--config", str(config),
                 "--uri", daemon.test_uri, "--agentx", snmpd.agentx_address, "--interval",
                 "5", "--state-dir", str(short_tmp / "state")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            try:
                wait_for(lambda: len(columns_by_name(walk(snmpd))) == DOMAINS + 1, 90)
                for _ in range(2):
                    served = columns_by_name(walk(snmpd))
                    assert served.keys() == expected.keys()
                    short = {name: sorted(expected[name] - found)
                             for name, found in served.items() if expected[name] - found}
                    assert not short, f"{len(short)} domains lack columns, e.g. " \
                                      f"{sorted(short.items())[:3]}"
            finally:
                agent.terminate()
                agent.wait(30)
        log_text = (short_tmp / "agent.log").read_text()
        assert "the cycle ended before" in log_text, \
            "every cycle reached every domain: the host was not too big for one"
