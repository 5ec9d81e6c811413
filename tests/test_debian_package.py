"""The Debian package as an administrator meets it: built from this tree with
dpkg-buildpackage, checked by lintian, installed with apt, the installed unit verified and
scored by systemd-analyze, the installed binary run as its own user through snmpd with the
installed drop-in's settings, and purged. Needs root: it installs on this machine."""

from __future__ import annotations

import grp
import os
import pwd
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentx_virt.demo.node import node_xml
from agentx_virt.demo.snmpd import PrivateSnmpd, snmp_tool, stop_process
from agentx_virt.mib.model import shipped_mib
from agentx_virt.oid import format_oid
from tests.conftest import wait_for
from tests.support import debian
from tests.support.report import report

pytestmark = [pytest.mark.peers, pytest.mark.package,
              pytest.mark.skipif(os.geteuid() != 0, reason="installs a package: needs root")]

USER = "agentx-virt"
DROP_IN = Path("/etc/snmp/snmpd.conf.d/agentx-virt.conf")
CONFIG = Path("/etc/agentx-virt/agentx-virt.toml")
STATE = Path("/var/lib/agentx-virt")
DOMAINS = 5
IETF = Path(__file__).resolve().parents[2] / "shared" / "mibs" / "ietf"


@pytest.fixture(scope="module")
def package(debian_package: debian.Built) -> Iterator[debian.Built]:
    if debian.installed():
        debian.purge()
    debian.install(debian_package.deb)
    try:
        yield debian_package
    finally:
        if debian.installed():
            debian.purge()


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A temp dir the service user can enter and read (tests' temp dirs are 0700)."""
    path = Path(tempfile.mkdtemp(prefix="axv-pkg-"))
    path.chmod(0o755)
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


V3_AUTH, V3_PRIV = "auth-passphrase-1", "priv-passphrase-2"


def drop_in_lines() -> list[str]:
    """The drop-in's settings, and its commented SNMPv3 example taken as written (the
    createUser line with passphrases filled in, then the rouser line)."""
    text = DROP_IN.read_text()
    lines = [line for line in text.splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    create = next(line for line in text.splitlines() if "createUser" in line)
    create = create.lstrip("# ").replace("AUTH-PASSPHRASE", V3_AUTH)
    rouser = next(line for line in text.splitlines() if line.startswith("#rouser "))
    return [*lines, create.replace("PRIV-PASSPHRASE", V3_PRIV), rouser[1:]]


def snmpd_with_drop_in(workdir: Path, perms: str = "") -> PrivateSnmpd:
    """A private snmpd reading the installed drop-in's lines, running as Debian-snmp once
    started (as Debian's snmpd.service runs it); "nms" reads Debian's systemonly view
    (system group only, as Debian's snmpd.conf has it) plus the drop-in's."""
    lines = drop_in_lines() + [
        "view systemonly included .1.3.6.1.2.1.1",
        "rocommunity nms 127.0.0.1 -V systemonly",
    ]
    if perms:
        lines.append(f"agentXPerms {perms}")
    snmpd = PrivateSnmpd(workdir / "snmpd", extra_config=lines, user="Debian-snmp")
    # snmpd makes the socket's directory itself, with the drop-in's directory mode.
    snmpd.socket_path = workdir / "snmpd" / "agentx" / "master"
    (workdir / "snmpd").chmod(0o755)
    return snmpd


def uids(pid: int) -> list[int]:
    """The real, effective, saved and file-system uids of a process."""
    with open(f"/proc/{pid}/status") as status:
        return [int(u) for u in next(line for line in status
                                     if line.startswith("Uid:")).split()[1:]]


def start_installed_agent(workdir: Path, snmpd: PrivateSnmpd, notify: str = ""
                          ) -> subprocess.Popen[bytes]:
    """The installed unit's ExecStart, under setpriv as the unit's user, pointed at a
    test-driver node and the private snmpd; its log goes to ``workdir``/agent.log."""
    node = workdir / "node.xml"
    node.write_text(node_xml(DOMAINS))
    node.chmod(0o644)
    command = [*debian.as_service_user(USER), *debian.exec_start(debian.installed_unit()),
               "--uri", f"test://{node}", "--agentx", str(snmpd.socket_path)]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": str(STATE)}
    if notify:
        env["NOTIFY_SOCKET"] = notify
    with open(workdir / "agent.log", "ab") as log:
        return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT)


def test_the_package_builds_lintian_clean_and_installs_where_debian_looks(
        package: debian.Built) -> None:
    lintian = debian.run("lintian", "--pedantic", "-I", str(package.changes), check=False)
    findings = [line for line in lintian.stdout.splitlines() if line[:2] in ("E:", "W:")]
    assert lintian.returncode == 0 and not findings, lintian.stdout
    report(f"lintian --pedantic -I: {lintian.stdout.strip() or 'no tags'}")
    files = debian.file_list(package.deb)
    modules = [line for line in files if "/dist-packages/agentx_virt/" in line]
    report(f"{package.deb.name}: {len(files)} entries, {len(modules)} of them under "
           "/usr/lib/python3/dist-packages/agentx_virt/; the others:")
    for line in files:
        if line not in modules and not line.startswith("d"):
            report(f"  {line}")
    listed = set(debian.run("dpkg", "-L", debian.PACKAGE).stdout.split())
    for path in ("/usr/bin/agentx-virt", str(debian.installed_unit()), str(CONFIG), str(DROP_IN),
                 "/usr/share/snmp/mibs/LIBVIRT-EXT-MIB.txt",
                 "/usr/share/man/man8/agentx-virt.8.gz", "/usr/share/doc/agentx-virt/copyright"):
        assert path in listed, path
    conffiles = debian.run("dpkg-query", "-W", "-f=${Conffiles}", debian.PACKAGE).stdout
    assert str(CONFIG) in conffiles and str(DROP_IN) in conffiles
    depends = debian.run("dpkg-query", "-W", "-f=${Depends}", debian.PACKAGE).stdout
    assert "python3-libvirt" in depends and "pysmi" not in depends
    assert Path("/usr/bin/agentx-virt").read_text().startswith("#! /usr/bin/python3") or \
        Path("/usr/bin/agentx-virt").read_text().startswith("#!/usr/bin/python3")
    version = debian.run("/usr/bin/agentx-virt", "--version").stdout
    assert version.startswith("agentx-virt ")
    # net-snmp finds the installed module by name (the IETF modules it imports come from
    # snmp-mibs-downloader on a host; here from the test data).
    translated = debian.run("snmptranslate", "-m", "+LIBVIRT-EXT-MIB", "-M",
                            f"+{IETF}", "-On", "LIBVIRT-EXT-MIB::lvxDomainName")
    assert translated.stdout.strip() == format_oid(shipped_mib().object("lvxDomainName").oid)


def test_the_service_user_and_its_state_directory(package: debian.Built) -> None:
    user = pwd.getpwnam(USER)
    assert user.pw_uid < 1000 and user.pw_shell == "/usr/sbin/nologin"
    assert grp.getgrgid(user.pw_gid).gr_name == USER
    info = STATE.stat()
    assert (info.st_uid, info.st_gid) == (user.pw_uid, user.pw_gid)
    assert stat.S_IMODE(info.st_mode) == 0o750


def test_the_installed_configuration_checks(package: debian.Built) -> None:
    result = debian.run("/usr/bin/agentx-virt", "check-config", str(CONFIG))
    assert result.stdout.startswith(f"{CONFIG}: OK: ")
    assert "unix:/var/agentx/master or unix:/var/run/agentx/master" in result.stdout


def test_the_installed_unit_verifies_and_is_hardened(package: debian.Built) -> None:
    unit_file = debian.installed_unit()
    verify = debian.run("systemd-analyze", "verify", str(unit_file), check=False)
    assert verify.returncode == 0 and not verify.stdout.strip() and \
        not verify.stderr.strip(), verify.stdout + verify.stderr
    score, table = debian.exposure(unit_file)
    report(f"systemd-analyze security --offline=true {unit_file}: exposure {score}")
    for line in table.splitlines():
        if line.startswith("✗"):
            report(f"  {' '.join(line.split())}")
    assert score <= 3.0, table
    unit = unit_file.read_text()
    for setting in ("User=agentx-virt", "Type=notify", "ExecReload=", "StateDirectory=",
                    "NoNewPrivileges=yes", "CapabilityBoundingSet=\n",
                    "SystemCallFilter=@system-service", "Documentation=man:agentx-virt(8)"):
        assert setting in unit, setting


def test_the_installed_agent_serves_as_its_user_through_the_drop_in(
        package: debian.Built, open_dir: Path) -> None:
    snmpd = snmpd_with_drop_in(open_dir).start()
    notify_path = open_dir / "notify"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify_path.chmod(0o666)
    agent = start_installed_agent(open_dir, snmpd, str(notify_path))
    try:
        sock = snmpd.socket_path.stat()
        assert stat.S_IMODE(sock.st_mode) == 0o660
        assert (pwd.getpwuid(sock.st_uid).pw_name, grp.getgrgid(sock.st_gid).gr_name) == \
            ("Debian-snmp", USER)
        assert snmpd.process is not None
        assert uids(snmpd.process.pid)[0] == pwd.getpwnam("Debian-snmp").pw_uid
        notify.settimeout(60)
        messages = ""
        while "READY=1" not in messages:
            messages += notify.recv(4096).decode() + "\n"
        assert set(uids(agent.pid)) == {pwd.getpwnam(USER).pw_uid}
        column = format_oid(shipped_mib().object("lvxDomainName").oid)
        walked = snmp_tool("snmpbulkwalk", snmpd.agent, column, community="nms",
                           options=["-Oqv"])
        assert walked.returncode == 0, walked.stderr
        names = sorted(v.strip('"') for v in walked.stdout.split())
        assert names == [f"vm{n:04d}" for n in range(1, DOMAINS + 1)], walked.stdout
        hidden = snmp_tool("snmpbulkwalk", snmpd.agent, "1.3.6.1.2.1.2", community="nms")
        assert "1.3.6.1.2.1.2.2" not in hidden.stdout    # the view keeps the rest out
        v3 = debian.run("snmpbulkwalk", "-v3", "-l", "authPriv", "-u", "nms", "-a", "SHA-256",
                        "-A", V3_AUTH, "-x", "AES", "-X", V3_PRIV, "-On", "-Oqv", "-r", "0",
                        snmpd.agent, column, check=False)
        assert sorted(v.strip('"') for v in v3.stdout.split()) == names, v3.stdout + v3.stderr
        assert (STATE / "domain-index.json").stat().st_uid == pwd.getpwnam(USER).pw_uid
    finally:
        stop_process(agent)
        notify.close()
        snmpd.stop()
    assert agent.returncode == 0, (open_dir / "agent.log").read_text()


def test_a_socket_the_user_may_not_open_gets_the_permission_hint(
        package: debian.Built, open_dir: Path) -> None:
    snmpd = snmpd_with_drop_in(open_dir, perms="0600 0755").start()
    try:
        probe = debian.run(*debian.as_service_user(USER), "/usr/bin/agentx-virt", "probe",
                           "--agentx", str(snmpd.socket_path), check=False)
        assert probe.returncode == 1
        assert "permission denied on the AgentX socket" in probe.stderr, probe.stderr
        assert "it is 0600" in probe.stderr and "agentXPerms" in probe.stderr
        assert "agentXSocket tcp:localhost:705" in probe.stderr
        agent = start_installed_agent(open_dir, snmpd)
        log = open_dir / "agent.log"
        try:
            wait_for(lambda: "agentXPerms" in log.read_text(), timeout=30)
            hint = next(line for line in log.read_text().splitlines() if "agentXPerms" in line)
            assert "cannot open the AgentX master's socket: permission denied" in hint
            assert agent.poll() is None          # it keeps trying, as for a missing snmpd
        finally:
            stop_process(agent)
    finally:
        snmpd.stop()


def test_purge_removes_the_user_the_state_and_every_file(package: debian.Built) -> None:
    listed = [path for path in debian.run("dpkg", "-L", debian.PACKAGE).stdout.split()
              if not Path(path).is_dir()]
    debian.purge()
    assert not debian.installed()
    left = [path for path in listed if os.path.lexists(path)]
    assert not left, left
    for path in (STATE, CONFIG.parent, DROP_IN,
                 Path("/etc/systemd/system/multi-user.target.wants/agentx-virt.service")):
        assert not os.path.lexists(path), path
    with pytest.raises(KeyError):
        pwd.getpwnam(USER)
    with pytest.raises(KeyError):
        grp.getgrnam(USER)
    # /var/cache/man is man-db's cache of pages a user has read, which man-db expires.
    found = debian.run("find", "/etc", "/lib", "/usr", "/var", "-xdev", "-path",
                       "/var/cache/man", "-prune", "-o", "(", "-name", "*agentx-virt*", "-o",
                       "-name", "*agentx_virt*", ")", "-print", check=False).stdout.split()
    assert not found, found
