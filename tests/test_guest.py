"""A real Linux guest with qemu-ga (``tests/support/guest.py``) under a private libvirtd,
its agent's data served through a real snmpd, each value checked against virsh, and
the ways an agent fails: killed inside the guest, its QEMU stopped, a read-only
connection."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import libvirt
import libvirt_qemu
import pytest

from agentx_virt.app.config import DEFAULT_STATS
from agentx_virt.demo.snmpd import PrivateSnmpd, snmp_tool
from agentx_virt.mib.model import shipped_mib
from agentx_virt.model.snapshot import StatGroup
from agentx_virt.oid import format_oid
from tests.support.guest import data_disk, guest_files
from tests.support.libvirtd import PrivateLibvirtd

from .conftest import private_libvirtd, serving_agent, wait_for

pytestmark = pytest.mark.peers
MIB = shipped_mib()
STATS = DEFAULT_STATS + (StatGroup.GUEST_AGENT,)
STATUS = {"responding": "1", "notConnected": "2", "unresponsive": "3", "notConfigured": "4",
          "denied": "5"}


@dataclass
class Lab:
    libvirtd: PrivateLibvirtd
    conn: libvirt.virConnect


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    files = guest_files()
    daemon = private_libvirtd(tmp_path_factory, "the guest agent tests")
    with daemon:
        disk = data_disk(daemon.root / "images" / "data.img",
                         {"hello.txt": b"hello\n", "blob.bin": os.urandom(200_000)})
        daemon.start_guest("guest1", 1, files.kernel, files.initrd, disk)
        daemon.start_domain("plain1", 2)            # no agent channel
        conn = libvirt.open(daemon.uri)
        dom = conn.lookupByName("guest1")

        def pings() -> bool:
            try:
                libvirt_qemu.qemuAgentCommand(dom, '{"execute":"guest-ping"}', 5, 0)
                return True
            except libvirt.libvirtError:
                return False

        wait_for(pings, 90)
        yield Lab(daemon, conn)
        conn.close()


def virsh(lab: Lab, *args: str) -> str:
    done = subprocess.run(["virsh", "-c", lab.libvirtd.uri, *args], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def pairs(text: str) -> dict[str, str]:
    """virsh's ``key : value`` (guestinfo) or ``key value`` (dommemstat) lines."""
    found = {}
    for line in text.splitlines():
        key, sep, value = line.partition(" : ") if " : " in line else line.partition(" ")
        if sep:
            found[key.strip()] = value.strip()
    return found


def oid(name: str) -> str:
    return format_oid(MIB.object(name).oid)


def column(snmpd: PrivateSnmpd, name: str) -> dict[str, str]:
    """A column's values by instance (the part after the column's OID)."""
    walk = snmp_tool("snmpbulkwalk", snmpd.agent, oid(name), options=["-OQn"]).stdout
    found = {}
    for line in walk.splitlines():
        if line.startswith(oid(name) + "."):
            instance, _, value = line[len(oid(name)) + 1:].partition(" = ")
            found[instance] = value.strip().strip('"')
    return found


def index_of(snmpd: PrivateSnmpd, name: str) -> str:
    return next(i for i, v in column(snmpd, "lvxDomainName").items() if v == name)


def addresses(listed: str) -> list[tuple[str, ...]]:
    """virsh domifaddr's rows; a "-" name or MAC is the row's above."""
    rows, name, mac = [], "", ""
    for found in re.findall(r"(\S+)\s+(\S+)\s+(ipv[46])\s+(\S+)/(\d+)", listed):
        name = name if found[0] == "-" else found[0]
        mac = mac if found[1] == "-" else found[1]
        rows.append((name, mac, *found[2:]))
    return sorted(rows)


def guest_exec(lab: Lab, command: str) -> None:
    """Run ``command`` in the guest through its agent (guest-exec), without waiting."""
    dom = lab.conn.lookupByName("guest1")
    libvirt_qemu.qemuAgentCommand(dom, json.dumps({"execute": "guest-exec", "arguments": {
        "path": "/bin/sh", "arg": ["-c", command]}}), 5, 0)


def test_the_guest_table_matches_virsh(lab: Lab, snmpd: PrivateSnmpd, tmp_path: Path) -> None:
    with serving_agent(lab.libvirtd.uri, snmpd, tmp_path / "state", stats=STATS):
        guest, plain = index_of(snmpd, "guest1"), index_of(snmpd, "plain1")
        wait_for(lambda: column(snmpd, "lvxGuestAgentStatus").get(guest) == "1", 30)
        info = pairs(virsh(lab, "guestinfo", "guest1"))
        served = {name: column(snmpd, name).get(guest) for name in (
            "lvxGuestHostname", "lvxGuestOsId", "lvxGuestOsName", "lvxGuestOsVersion",
            "lvxGuestKernelRelease", "lvxGuestTimezone", "lvxGuestUsers")}
        assert served == {
            "lvxGuestHostname": info["hostname"], "lvxGuestOsId": info["os.id"],
            "lvxGuestOsName": info["os.name"], "lvxGuestOsVersion": info["os.version"],
            "lvxGuestKernelRelease": info["os.kernel-release"],
            "lvxGuestTimezone": info["timezone.name"], "lvxGuestUsers": info["user.count"]}
        assert column(snmpd, "lvxGuestAgentStatus")[plain] == STATUS["notConfigured"]
        assert abs(int(column(snmpd, "lvxGuestClockOffsetMs")[guest])) < 60_000

        # File systems: virsh domfsinfo, and the sizes of virsh guestinfo --filesystem.
        fs = [line.split() for line in virsh(lab, "domfsinfo", "guest1").splitlines()[2:]
              if line.strip()]
        assert [(m, n, t, d) for m, n, t, d in fs] == [("/mnt/data", "vda", "ext4", "vda")]
        mine = {n: v for n, v in column(snmpd, "lvxFsMountPoint").items()
                if n.startswith(guest + ".")}
        assert list(mine.values()) == ["/mnt/data"]
        (row,) = mine
        assert column(snmpd, "lvxFsTotalBytes")[row] == info["fs.0.total-bytes"]
        used = int(column(snmpd, "lvxFsUsedBytes")[row])
        assert used == int(info["fs.0.used-bytes"]) and used > 200_000

        # Addresses: virsh domifaddr --source agent.
        expected = addresses(virsh(lab, "domifaddr", "guest1", "--source", "agent"))
        rows = [i for i in column(snmpd, "lvxGuestAddrAddress") if i.startswith(guest + ".")]
        got = sorted((column(snmpd, "lvxGuestAddrInterface")[i],
                      column(snmpd, "lvxGuestAddrMac")[i],
                      {"1": "ipv4", "2": "ipv6"}[column(snmpd, "lvxGuestAddrFamily")[i]],
                      column(snmpd, "lvxGuestAddrAddress")[i],
                      column(snmpd, "lvxGuestAddrPrefix")[i]) for i in rows)
        assert got == expected and ("eth0", "52:54:00:aa:00:01", "ipv4", "192.0.2.10",
                                    "24") in got

        # Memory: the balloon's own figures (virsh dommemstat), and "used" from them.
        def memory() -> tuple[int, ...]:
            return tuple(int(column(snmpd, name)[guest]) for name in (
                "lvxDomainMemAvailableKiB", "lvxDomainMemUnusedKiB",
                "lvxDomainMemDiskCachesKiB", "lvxDomainMemUsedKiB"))
        available, unused, caches, used_kib = memory()
        assert used_kib == available - unused - caches and 0 < used_kib < available
        stat = pairs(virsh(lab, "dommemstat", "guest1"))
        assert int(stat["available"]) == available
        assert abs(int(stat["disk_caches"]) - caches) < 8192       # refreshed every 2 s


def test_a_killed_agent_reads_not_connected_and_the_rest_stays_fresh(
        lab: Lab, snmpd: PrivateSnmpd, tmp_path: Path) -> None:
    with serving_agent(lab.libvirtd.uri, snmpd, tmp_path / "state", stats=STATS):
        guest = index_of(snmpd, "guest1")
        wait_for(lambda: column(snmpd, "lvxGuestAgentStatus").get(guest) == "1", 30)
        # The agent's restart loop paused for 12 s, then the agent killed.
        guest_exec(lab, "touch /run/ga-paused; (sleep 12; rm /run/ga-paused) & "
                        "sleep 0.2; killall qemu-ga")
        wait_for(lambda: column(snmpd, "lvxGuestAgentStatus")[guest] ==
                 STATUS["notConnected"], 15)
        assert column(snmpd, "lvxDomainPollStatus")[guest] == "1"         # ok
        assert column(snmpd, "lvxGuestHostname")[guest] == "axv-guest"    # the last answer
        assert "not connected" in column(snmpd, "lvxGuestLastError")[guest]
        wait_for(lambda: column(snmpd, "lvxGuestAgentStatus")[guest] == "1", 40)
        assert int(column(snmpd, "lvxGuestDataAgeSeconds")[guest]) < 10


def test_a_stopped_qemu_reads_unresponsive_and_other_domains_stay_fresh(
        lab: Lab, snmpd: PrivateSnmpd, tmp_path: Path) -> None:
    with serving_agent(lab.libvirtd.uri, snmpd, tmp_path / "state", stats=STATS):
        guest, plain = index_of(snmpd, "guest1"), index_of(snmpd, "plain1")
        wait_for(lambda: column(snmpd, "lvxGuestAgentStatus").get(guest) == "1", 30)
        pid = lab.libvirtd.qemu_pid("guest1")
        os.kill(pid, signal.SIGSTOP)
        try:
            wait_for(lambda: column(snmpd, "lvxGuestAgentStatus")[guest] ==
                     STATUS["unresponsive"], 30)
            # The other domain stays fresh, and a walk (2 s per request, no retry) ends.
            ages = column(snmpd, "lvxDomainDataAgeSeconds")
            assert column(snmpd, "lvxDomainPollStatus")[plain] == "1" and ages[plain] == "0"
            walk = snmp_tool("snmpbulkwalk", snmpd.agent, format_oid(MIB.root))
            assert walk.returncode == 0 and walk.stdout.count("\n") > 100
        finally:
            os.kill(pid, signal.SIGCONT)
        wait_for(lambda: column(snmpd, "lvxGuestAgentStatus")[guest] == "1", 60)


def test_a_read_only_connection_reads_denied_with_one_log_line(
        lab: Lab, snmpd: PrivateSnmpd, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    read_only = lab.libvirtd.uri.replace("libvirt-sock", "libvirt-sock-ro")
    with serving_agent(read_only, snmpd, tmp_path / "state", stats=STATS):
        guest = index_of(snmpd, "guest1")
        wait_for(lambda: column(snmpd, "lvxGuestAgentStatus").get(guest) ==
                 STATUS["denied"], 30)
        time.sleep(7)                         # two more rounds
        assert column(snmpd, "lvxGuestAgentStatus")[guest] == STATUS["denied"]
    denied = [r for r in caplog.records if "status denied" in r.getMessage()]
    assert len(denied) == 1 and "guest1" in denied[0].getMessage()
