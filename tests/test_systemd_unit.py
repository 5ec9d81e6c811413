"""The packaged unit under real systemd: the .deb installed in a Debian container booted
with systemd (tests/support/nspawn.py) beside Debian's own snmpd.service, which reads the
package's drop-in, and Debian's own libvirtd with its polkit. Start (Type=notify) with the
installed configuration, the sandbox the process really gets, libvirt's read-only socket
without any libvirt group, a walk through that snmpd, reload (good and bad files), the
journal's priorities, a watchdog restart of a stopped agent, and stop. Needs root."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentx_virt.mib.model import shipped_mib
from agentx_virt.oid import format_oid
from tests.conftest import wait_for
from tests.support import debian
from tests.support.nspawn import Container
from tests.support.report import report

pytestmark = [pytest.mark.peers, pytest.mark.package,
              pytest.mark.skipif(os.geteuid() != 0, reason="boots a container: needs root")]

UNIT = "agentx-virt.service"
NAMES = ["ro-probe-1", "ro-probe-2"]
CONFIG = "/etc/agentx-virt/agentx-virt.toml"
# The test's own drop-in: a short watchdog, so that a stopped agent is restarted within
# seconds. Everything else is as installed (qemu:///system, the default address).
DROP_IN = """[Service]
WatchdogSec=6
"""
# Defined, not started, by root as an administrator would: the agent sees them through
# libvirt's read-only socket.
DOMAIN = ("<domain type='qemu'><name>{}</name><memory>65536</memory>"
          "<os><type arch='x86_64'>hvm</type></os></domain>")
MIB = shipped_mib()


def oid(name: str, *index: int) -> str:
    return format_oid(MIB.object(name).oid + index)


@pytest.fixture(scope="module")
def box(debian_package: debian.Built) -> Iterator[Container]:
    work = Path(tempfile.mkdtemp(prefix="axv-nspawn-", dir="/var/tmp"))
    container = Container(work)
    try:
        container.prepare(debian_package.deb)
        unit_d = container.path(f"/etc/systemd/system/{UNIT}.d")
        unit_d.mkdir(parents=True)
        (unit_d / "test.conf").write_text(DROP_IN)
        container.boot()
        for name in NAMES:
            container.path(f"/root/{name}.xml").write_text(DOMAIN.format(name))
            container.run("virsh", "-c", "qemu:///system", "define", f"/root/{name}.xml")
        yield container
    finally:
        container.stop()
        subprocess.run(["rm", "-rf", str(work)], check=False)


def snmp(box: Container, tool: str, *oids: str) -> str:
    done = box.run(tool, "-v2c", "-c", "public", "-On", "-Oqv", "-r", "1", "-t", "3",
                   "udp:127.0.0.1:161", *oids, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def names(box: Container) -> list[str]:
    return sorted(v.strip('"') for v in snmp(box, "snmpbulkwalk", oid("lvxDomainName")).split())


def served(box: Container) -> bool:
    try:
        return names(box) == NAMES
    except AssertionError:            # snmpd answers before the agent has registered
        return False


def status(box: Container, pid: str) -> dict[str, str]:
    text = box.run("cat", f"/proc/{pid}/status").stdout
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())}


def test_the_unit_starts_ready_as_its_user_inside_its_sandbox(box: Container) -> None:
    shown = box.show(UNIT, "ActiveState", "SubState", "MainPID", "StatusText", "Type")
    assert (shown["ActiveState"], shown["SubState"], shown["Type"]) == \
        ("active", "running", "notify")
    assert shown["StatusText"].endswith("serving snmpd"), shown
    report(f"under systemd in a container: {UNIT} {shown['ActiveState']}, "
           f"status {shown['StatusText']!r}")
    proc = status(box, shown["MainPID"])
    uid = box.run("id", "-u", "agentx-virt").stdout.strip()
    gid = box.run("id", "-g", "agentx-virt").stdout.strip()
    assert proc["Uid"].split() == [uid] * 4
    assert proc["Gid"].split() == [gid] * 4 and proc["Groups"].split() == [gid]
    assert proc["NoNewPrivs"] == "1" and proc["Seccomp"] == "2"
    for capabilities in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(proc[capabilities], 16) == 0, capabilities
    mounts = box.run("cat", f"/proc/{shown['MainPID']}/mountinfo").stdout.splitlines()
    options = {fields[4]: fields[5].split(",") for fields in (m.split() for m in mounts)}
    assert "ro" in options["/"]                                 # ProtectSystem=strict
    assert "rw" in options["/var/lib/agentx-virt"]              # StateDirectory= only
    report(f"  agent process: uid {uid}, NoNewPrivs 1, Seccomp 2, no capabilities, "
           "/ read-only, /var/lib/agentx-virt read-write")


def test_debian_snmpd_serves_what_the_agent_reads_through_libvirts_read_only_socket(
        box: Container) -> None:
    socket_line = box.run("stat", "-c", "%a %U %G", "/var/agentx/master").stdout.strip()
    assert socket_line == "660 Debian-snmp agentx-virt"
    snmpd = box.show("snmpd.service", "MainPID")["MainPID"]
    assert status(box, snmpd)["Uid"].split()[0] == box.run("id", "-u", "Debian-snmp").stdout.strip()
    wait_for(lambda: served(box), 40)
    assert snmp(box, "snmpget", oid("lvxLibvirtConnected", 0)).strip() == "1"
    # What polkit lets this user do on Debian's libvirtd: read, not manage.
    as_user = ("runuser", "-u", "agentx-virt", "--", "virsh", "-c", "qemu:///system")
    assert box.run(*as_user, "-r", "list", "--all", "--name").stdout.split() == NAMES
    manage = box.run(*as_user, "list", "--all", check=False)
    assert manage.returncode != 0 and "org.libvirt.unix.manage" in manage.stderr
    report("  libvirt: qemu:///system read through the read-only socket as agentx-virt "
           "(no libvirt group); a read-write connection is refused by polkit")


def test_reload_applies_a_good_file_and_keeps_the_running_one_for_a_bad_file(
        box: Container) -> None:
    config = box.path(CONFIG)
    original = config.read_text()
    config.write_text(original.replace("interval = 10 ", "interval = 7  "))
    box.run("systemctl", "reload", UNIT)
    wait_for(lambda: snmp(box, "snmpget", oid("lvxConfigReloads", 0)).strip() == "1", 20)
    assert snmp(box, "snmpget", oid("lvxPollIntervalSeconds", 0)).strip() == "7"
    config.write_text(original + "\n[bogus_section]\nx = 1\n")
    box.run("systemctl", "reload", UNIT)
    wait_for(lambda: snmp(box, "snmpget", oid("lvxConfigReloadFailures", 0)).strip() == "1",
             20)
    assert box.show(UNIT, "ActiveState")["ActiveState"] == "active"
    config.write_text(original)
    # The journal keeps each line's priority: warnings alone show the refused file.
    warnings = box.run("journalctl", "-u", UNIT, "-p", "warning", "-o", "cat",
                       "--no-pager").stdout
    assert "bogus_section" in warnings and "AgentX session" not in warnings
    assert not re.search(r"^\d{4}-\d\d-\d\d ", warnings, re.M)     # journald stamps lines
    everything = box.run("journalctl", "-u", UNIT, "-o", "cat", "--no-pager").stdout
    assert "AgentX session" in everything                       # at info priority


def test_the_watchdog_restarts_an_agent_that_stops_answering(box: Container) -> None:
    before = box.show(UNIT, "MainPID", "NRestarts")
    box.run("systemctl", "kill", "--kill-whom=main", "--signal=SIGSTOP", UNIT)
    started = time.monotonic()

    def restarted() -> bool:
        now = box.show(UNIT, "MainPID", "NRestarts", "ActiveState")
        return (now["NRestarts"] == str(int(before["NRestarts"]) + 1)
                and now["MainPID"] not in ("0", before["MainPID"])
                and now["ActiveState"] == "active")
    wait_for(restarted, 60)
    report(f"  watchdog (WatchdogSec=6 in the test's drop-in): a SIGSTOPped agent was "
           f"restarted and serving again after {time.monotonic() - started:.1f} s")
    journal = box.run("journalctl", "-u", UNIT, "-o", "cat", "--no-pager").stdout
    assert "Watchdog timeout" in journal
    wait_for(lambda: served(box), 40)


def test_stop_closes_the_session_and_exits_cleanly(box: Container) -> None:
    box.run("systemctl", "stop", UNIT)
    shown = box.show(UNIT, "ActiveState", "Result", "ExecMainStatus")
    assert (shown["ActiveState"], shown["Result"], shown["ExecMainStatus"]) == \
        ("inactive", "success", "0")
    journal = box.run("journalctl", "-u", UNIT, "-o", "cat", "--no-pager", "-n", "20").stdout
    assert "stopping" in journal and "agentx-virt stopped" in journal, journal
