"""RFC 7666 VM-MIB served from the same Snapshot, read by name through a real snmpd with
the RFC's module loaded; its CPU affinity rows checked against snmpd's own
hrProcessorTable for a real QEMU/TCG domain."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import libvirt
import pytest

from agentx_virt.app.config import DEFAULT_STATS
from agentx_virt.collector.connection import is_local
from agentx_virt.collector.groups import host_ifindex
from agentx_virt.demo.node import node_xml
from agentx_virt.demo.snmpd import PrivateSnmpd, snmp_tool
from agentx_virt.mib.compile import COMPILED_DIR, VM_MIB_MODULES, compile_mib
from agentx_virt.mib.vm_mib import admin_state, media_type, oper_state, source_type
from agentx_virt.model.snapshot import DiskStats, StatGroup

from .conftest import private_libvirtd, serving_agent, wait_for


def process_start(pid: int) -> float:
    """When process ``pid`` started (wall clock), from /proc as ps computes it."""
    ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    return time.time() - float(Path("/proc/uptime").read_text().split()[0]) + \
        ticks / os.sysconf("SC_CLK_TCK")

SHARED = Path(__file__).resolve().parents[2] / "shared" / "mibs"
OPTIONS = ["-M", f"+{SHARED / 'ietf'}", "-m", "+VM-MIB"]
REPO_MIBS = Path(__file__).resolve().parents[1] / "mibs"     # LIBVIRT-EXT-MIB


def walk(snmpd: PrivateSnmpd, name: str, mib: str = "VM-MIB",
         options: Sequence[str] = ()) -> dict[str, str]:
    """{instance: value} of one column (or scalar), by name."""
    result = snmp_tool("snmpwalk", snmpd.agent, f"{mib}::{name}",
                       options=["-M", f"+{SHARED / 'ietf'}:{REPO_MIBS}", "-m", f"+{mib}",
                                "-OQs", "-Oe", *options],
                       numeric=False)
    assert result.returncode == 0, result.stderr
    found = {}
    for line in result.stdout.splitlines():
        oid, _, value = line.partition(" = ")
        if oid.startswith(name + "."):
            found[oid[len(name) + 1:]] = value.strip('"')
    return found


def test_the_shipped_json_is_the_rfcs_modules_without_their_prose() -> None:
    fresh = compile_mib([SHARED / "ietf"], VM_MIB_MODULES)
    for name in VM_MIB_MODULES:
        assert (COMPILED_DIR / f"{name}.json").read_text() == fresh[name], name
        assert '"description"' not in fresh[name]


def test_states_sources_and_host_devices() -> None:
    assert [admin_state(s) for s in (None, 1, 2, 3, 4, 5, 6, 7)] == [
        None, "running", "running", "paused", "shutdown", "shutdown", "running", "suspended"]
    assert [oper_state(s) for s in (0, 1, 2, 3, 4, 5, 6, 7)] == [
        "unknown", "running", "running", "paused", "shuttingdown", "shutdown", "crashed",
        "suspended"]
    assert (oper_state(3, 2), oper_state(3, 11), oper_state(3, 1)) == (
        "migrating", "preparing", "paused")
    assert [source_type(DiskStats("vda", s)) for s in (
        "/dev/sdb", "/var/lib/x.qcow2", "rbd-pool/image", None)] == [
        "block", "unknown", "network", "unknown"]      # no XML type: the path's form
    assert [source_type(DiskStats("vda", "/x", kind=k, format=f)) for k, f in (
        ("file", "qcow2"), ("file", "raw"), ("file", None), ("block", "raw"),
        ("network", "raw"), ("volume", None))] == [
        "sparse", "raw", "other", "block", "network", "other"]
    assert [media_type(DiskStats("vda", device=d)) for d in (
        "disk", "lun", "cdrom", "floppy", "tape", None)] == [
        "hardDisk", "hardDisk", "opticalDisk", "floppyDisk", "other", "unknown"]
    assert host_ifindex("lo") == 1 and host_ifindex("no-such-nic0") is None
    assert host_ifindex("../lo") is None
    assert is_local("qemu:///system") and is_local("qemu+unix:///system?socket=/x")
    assert not is_local("qemu+ssh://kvm1.example.org/system")


@pytest.mark.peers
def test_vm_table_by_name_matches_libvirt(short_tmp: Path, snmpd: PrivateSnmpd) -> None:
    path = short_tmp / "node.xml"
    path.write_text(node_xml(8))
    uri = f"test://{path}"
    with serving_agent(uri, snmpd, short_tmp / "state"):
        wait_for(lambda: len(walk(snmpd, "vmName")) == 8)
        names, opers = walk(snmpd, "vmName"), walk(snmpd, "vmOperState")
        cur_mem, max_mem = walk(snmpd, "vmCurMem"), walk(snmpd, "vmMaxMem")
        number = snmp_tool("snmpget", snmpd.agent, "VM-MIB::vmNumber.0",
                           options=[*OPTIONS, "-Oqv"], numeric=False)
        assert number.stdout.strip() == "8"
        conn = libvirt.openReadOnly(uri)
        try:
            for index, name in names.items():
                state, max_kib, kib, _vcpus, _ns = conn.lookupByName(name).info()
                assert opers[index] == {1: "4", 3: "8", 5: "11"}[state]
                assert int(max_mem[index]) == max_kib // 1024
                if state != 5:
                    assert int(cur_mem[index]) == kib // 1024
        finally:
            conn.close()
        disks = walk(snmpd, "vmStorageResourceID")
        assert all(key.count(".") == 1 for key in disks) and len(disks) >= 8
        assert set(walk(snmpd, "vmMemUnit").values()) == {"1048576"}
        # The test driver's domains are defined (persistent) and not autostarted.
        assert set(walk(snmpd, "vmPersistent").values()) == {"2"}
        assert set(walk(snmpd, "vmAutoStart").values()) == {"3"}
        lvx = walk(snmpd, "lvxDomainName", "LIBVIRT-EXT-MIB")
        assert lvx == names                                 # vmIndex = lvxDomainIndex


@pytest.mark.peers
def test_cpu_affinity_names_the_cpus_of_snmpds_hr_processor_table(
        tmp_path_factory: pytest.TempPathFactory, short_tmp: Path,
        snmpd: PrivateSnmpd) -> None:
    with private_libvirtd(tmp_path_factory, "the VM-MIB affinity test") as daemon:
        daemon.start_domain("p1", 1)
        with serving_agent(daemon.uri, snmpd, short_tmp / "state", ready_s=30, interval_s=2,
                           domain_timeout_s=1, stats=(*DEFAULT_STATS, StatGroup.VCPUPIN)):
            wait_for(lambda: len(walk(snmpd, "vmCpuAffinity")) > 0, 30)
            affinity = walk(snmpd, "vmCpuAffinity")
            up, hv_up, last_change = (
                int(next(iter(walk(snmpd, name, options=["-Ot"]).values())))
                for name in ("vmUpTime", "vmHvUpTime", "vmTableLastChange"))
            now = time.time()
            qemu_age = now - process_start(daemon.qemu_pid("p1"))
            host_up = float(Path("/proc/uptime").read_text().split()[0])
    # As of the last poll (every 2 s): behind the present by at most an interval or so.
    assert qemu_age - 5 <= up / 100 <= qemu_age + 1, (up, qemu_age)
    assert host_up - 5 <= hv_up / 100 <= host_up + 1, (hv_up, host_up)
    assert host_up - qemu_age - 60 <= last_change / 100 <= hv_up / 100   # the first poll
    processors = walk(snmpd, "hrProcessorFrwID", "HOST-RESOURCES-MIB")
    physical = {key.rsplit(".", 1)[1] for key in affinity}
    assert physical == set(processors), (physical, processors)
    assert set(affinity.values()) <= {"1", "2"} and "1" in affinity.values()  # enable(1)


def test_per_vm_notifications_carry_the_previous_oper_state() -> None:
    from agentx_virt.agentx.traps import TrapQueue
    from agentx_virt.mib.model import shipped_mib
    from agentx_virt.mib.vm_mib import VM_MIB
    from agentx_virt.model.events import Lifecycle
    from agentx_virt.notify.rules import Notifier
    from agentx_virt.notify.settings import TrapSettings

    vm = VM_MIB.load()
    traps = TrapQueue(100)
    notifier = Notifier(TrapSettings(families=frozenset({"VM-MIB"})), shipped_mib(), traps,
                        lambda uuid: 42, family_mibs={"VM-MIB": vm})
    uuid = "6a7e0000-0000-4000-8000-000000000001"
    # started, suspended, resumed, crashed, stopped (destroyed), undefined
    for event, detail in ((2, 0), (3, 0), (4, 0), (8, 0), (5, 1), (1, 0)):
        notifier.handle(Lifecycle(uuid, "web-1", event, detail))
    names = {spec.oid: name for name, spec in vm.notifications.items()}
    syntax = vm.object("vmOperState").syntax
    assert syntax is not None
    opers = {number: label for label, number in syntax.enum.items()}
    sent = []
    while (trap := traps.pop()) is not None:
        values = {vb.name[:-1]: vb.value for vb in trap.varbinds}
        assert {vb.name[-1] for vb in trap.varbinds} == {42}          # vmIndex
        previous = values[vm.object("vmOperState").oid]
        assert isinstance(previous, int)
        sent.append((names[trap.trap_oid], opers[previous]))
        assert values[vm.object("vmUUID").oid] == bytes.fromhex(uuid.replace("-", ""))
    assert sent == [("vmRunning", "unknown"), ("vmPaused", "running"),
                    ("vmRunning", "paused"), ("vmCrashed", "running"),
                    ("vmShutdown", "crashed"), ("vmDeleted", "shutdown")]
