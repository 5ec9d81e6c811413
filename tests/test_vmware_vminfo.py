"""The VMWARE-VMINFO-MIB view, read as LibreNMS reads it: ``vmwVmTable`` walked by name
through a real snmpd with VMware's MIB text loaded, states mapped as its PowerState does."""

from __future__ import annotations

from pathlib import Path

import libvirt
import pytest

from agentx_virt.agentx.traps import TrapQueue
from agentx_virt.demo.node import node_xml
from agentx_virt.demo.snmpd import PrivateSnmpd, snmp_tool
from agentx_virt.mib.compile import COMPILED_DIR, compile_mib
from agentx_virt.mib.model import shipped_mib
from agentx_virt.mib.vmware_vminfo import VMWARE_VMINFO_MIB, guest_state, power_state
from agentx_virt.model.events import Lifecycle
from agentx_virt.notify.rules import Notifier
from agentx_virt.notify.settings import TrapSettings

from .conftest import serving_agent, wait_for

SHARED = Path(__file__).resolve().parents[2] / "shared" / "mibs"
OPTIONS = ["-M", f"+{SHARED / 'vmware'}:{SHARED / 'ietf'}", "-m", "+VMWARE-VMINFO-MIB"]
# LibreNMS's LibreNMS/Enum/PowerState.php: the vmwVmState strings it knows (0 off, 1 on,
# 2 suspended); anything else is unknown.
LIBRENMS_POWER = {"powered off": 0, "shut off": 0, "powered on": 1, "running": 1,
                  "suspended": 2, "paused": 2}


def test_the_shipped_json_is_vmwares_modules_without_their_prose() -> None:
    fresh = compile_mib([SHARED / "vmware", SHARED / "ietf"], ("VMWARE-VMINFO-MIB",
                                                             "VMWARE-TC-MIB"))
    for name in ("VMWARE-VMINFO-MIB", "VMWARE-TC-MIB"):
        assert (COMPILED_DIR / f"{name}.json").read_text() == fresh[name]
        assert '"description"' not in fresh[name]


def test_every_libvirt_state_is_a_power_state_librenms_knows() -> None:
    assert {s: LIBRENMS_POWER[power_state(s) or ""] for s in range(8)} == {
        0: 0, 1: 1, 2: 1, 3: 2, 4: 1, 5: 0, 6: 0, 7: 2}
    assert [guest_state(s) for s in (None, 1, 3, 4, 5)] == [
        "notrunning", "running", "notrunning", "shuttingdown", "notrunning"]


def test_power_traps_follow_power_state_changes_only() -> None:
    traps = TrapQueue(100)
    vmware = VMWARE_VMINFO_MIB.load()
    notifier = Notifier(TrapSettings(families=frozenset({"VMWARE-VMINFO-MIB"})),
                        shipped_mib(), traps, lambda uuid: 42,
                        family_mibs={"VMWARE-VMINFO-MIB": vmware})
    uuid = "6a7e0000-0000-4000-8000-000000000001"
    for event, detail in ((2, 0), (3, 0), (4, 0), (5, 1), (2, 0)):  # start, suspend, resume,
        notifier.handle(Lifecycle(uuid, "web-1", event, detail))    # destroy, start
    sent = []
    while (trap := traps.pop()) is not None:
        sent.append(trap)
    names = {spec.oid: name for name, spec in vmware.notifications.items()}
    assert [names[t.trap_oid] for t in sent] == [
        "vmwVmPoweredOn", "vmwVmSuspended", "vmwVmPoweredOn", "vmwVmPoweredOff",
        "vmwVmPoweredOn"]
    first = {vb.name: vb.value for vb in sent[0].varbinds}
    assert first[vmware.object("vmwVmID").oid + (0,)] == 42
    assert first[vmware.object("vmwVmConfigFilePath").oid + (0,)] == b""
    assert first[vmware.object("vmwVmDisplayName").oid + (42,)] == b"web-1"


@pytest.mark.peers
def test_librenms_reads_every_guest_with_no_unknown_state(short_tmp: Path,
                                                         snmpd: PrivateSnmpd) -> None:
    path = short_tmp / "node.xml"
    path.write_text(node_xml(8))
    uri = f"test://{path}"
    def table() -> dict[str, dict[str, str]]:
        rows: dict[str, dict[str, str]] = {}
        walk = snmp_tool("snmpwalk", snmpd.agent, "VMWARE-VMINFO-MIB::vmwVmTable",
                         options=[*OPTIONS, "-OQs"], numeric=False)
        assert walk.returncode == 0, walk.stderr
        for line in walk.stdout.splitlines():
            name, _, value = line.partition(" = ")
            column, _, index = name.partition(".")
            rows.setdefault(index, {})[column] = value.strip('"')
        return rows

    with serving_agent(uri, snmpd, short_tmp / "state",
                       mibs=("LIBVIRT-EXT-MIB", "VMWARE-VMINFO-MIB")):
        wait_for(lambda: len(table()) == 8)
        rows = table()
        assert {r["vmwVmState"] for r in rows.values()} >= {"powered on", "powered off"}
        conn = libvirt.openReadOnly(uri)
        try:
            for index, row in rows.items():
                dom = conn.lookupByName(row["vmwVmDisplayName"])
                state, max_kib, _kib, vcpus, _ns = dom.info()
                assert row["vmwVmState"] in LIBRENMS_POWER, row      # never "unknown"
                assert LIBRENMS_POWER[row["vmwVmState"]] == {3: 2, 5: 0}.get(state, 1)
                assert row["vmwVmMemSize"].split()[0] == str(max_kib // 1024)   # MB
                assert row["vmwVmCpus"] == str(vcpus)
                assert row["vmwVmUUID"] == dom.UUIDString()
                assert int(index) >= 1
        finally:
            conn.close()
        nets = snmp_tool("snmpwalk", snmpd.agent, "VMWARE-VMINFO-MIB::vmwVmMAC",
                         options=[*OPTIONS, "-OQs"], numeric=False)
        assert nets.returncode == 0 and nets.stdout.count("vmwVmMAC.") >= 8
