"""VM-MIB's vmNetworkTable joined with IF-MIB, as an NMS joins them: the agent and a real
snmpd both run in the private libvirtd's net namespace, where its QEMU domains' taps
and bridge are, and the tap's and the bridge's ifIndex come from snmpd's own ifTable."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import pytest

from agentx_virt.demo.snmpd import log_tail, stop_process, tool_env

from .conftest import private_libvirtd, wait_for

pytestmark = pytest.mark.peers

SHARED = Path(__file__).resolve().parents[2] / "shared" / "mibs"
PORT = 1161                   # the namespace's own loopback: nothing else listens there


def in_namespace(pid: int, *command: str, env: Optional[dict[str, str]] = None
                 ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", "--", *command],
                          capture_output=True, text=True, timeout=30, check=False,
                          stdin=subprocess.DEVNULL, env=env)


def walk(pid: int, name: str) -> dict[str, str]:
    """{instance: value} of one column, from the namespace's snmpd, by name."""
    result = in_namespace(pid, "snmpwalk", "-v2c", "-c", "public", "-OQs", "-Oe", "-t", "5",
                          "-M", f"+{SHARED / 'ietf'}", "-m", "+VM-MIB:IF-MIB",
                          f"udp:127.0.0.1:{PORT}", name, env=tool_env())
    assert result.returncode == 0, result.stderr
    column = name.split("::")[-1]
    return {oid[len(column) + 1:]: value.strip('"')
            for oid, _, value in (line.partition(" = ") for line in result.stdout.splitlines())
            if oid.startswith(column + ".")}


@contextmanager
def spawned(command: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "ab") as out:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                   start_new_session=True)
    try:
        yield process
    finally:
        stop_process(process)


def test_vm_network_if_index_and_parent_are_snmpds_if_index_of_the_tap_and_bridge(
        tmp_path_factory: pytest.TempPathFactory, short_tmp: Path) -> None:
    with private_libvirtd(tmp_path_factory, "the VM-MIB/IF-MIB join test") as daemon:
        assert daemon.process is not None
        pid = daemon.process.pid             # unshare exec'd libvirtd: its namespace
        for step in (["ip", "link", "set", "lo", "up"],
                     ["ip", "link", "add", "br7", "type", "bridge"],
                     ["ip", "link", "set", "br7", "up"]):
            assert in_namespace(pid, *step).returncode == 0, step
        daemon.start_domain("n1", 1)                   # tap1, no parent
        daemon.start_domain("n2", 2, bridge="br7")     # tap2 in bridge br7
        socket = short_tmp / "agentx.sock"
        (short_tmp / "snmpd.conf").write_text(
            f"agentAddress udp:127.0.0.1:{PORT}\nrocommunity public 127.0.0.1\n"
            f"master agentx\nagentXSocket {socket}\nagentXPerms 0660 0770\n")
        snmpd = ["nsenter", f"--net=/proc/{pid}/ns/net", "--", "snmpd", "-f", "-Lo", "-C",
                 "-c", str(short_tmp / "snmpd.conf"), "-p", str(short_tmp / "snmpd.pid")]
        # The agent reads ifIndex from /sys/class/net, which shows the namespace of
        # whoever mounted sysfs: it gets its own mount namespace and sysfs.
        agent = ["nsenter", f"--net=/proc/{pid}/ns/net", "--", "unshare", "--mount", "--",
                 "sh", "-c", 'mount --make-rprivate / && mount -t sysfs sysfs /sys && '
                 'exec "$@"', "agent", sys.executable, "-m", "agentx_virt", "run",
                 "--uri", daemon.uri, "--agentx", f"unix:{socket}", "--interval", "1",
                 "--state-dir", str(short_tmp / "state")]
        with spawned(snmpd, short_tmp / "snmpd.log"):
            wait_for(socket.exists, 15)
            with spawned(agent, short_tmp / "agent.log"):
                try:
                    wait_for(lambda: len(walk(pid, "VM-MIB::vmNetworkIfIndex")) == 2, 60)
                except AssertionError as exc:
                    raise AssertionError(f"{exc}; the agent's log: "
                                         f"{log_tail(short_tmp / 'agent.log')}") from None
                names = walk(pid, "VM-MIB::vmName")
                if_index = walk(pid, "VM-MIB::vmNetworkIfIndex")
                parent = walk(pid, "VM-MIB::vmNetworkParent")
                by_name = {name: index
                           for index, name in walk(pid, "IF-MIB::ifDescr").items()}
    row = {name: index for index, name in names.items()}
    assert if_index[f"{row['n1']}.1"] == by_name["tap1"], (if_index, by_name)
    assert if_index[f"{row['n2']}.1"] == by_name["tap2"]
    assert parent[f"{row['n1']}.1"] == "0"                       # ethernet: no parent
    assert parent[f"{row['n2']}.1"] == by_name["br7"]
