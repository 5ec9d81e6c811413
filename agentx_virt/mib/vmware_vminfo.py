"""The VMWARE-VMINFO-MIB view, opt-in: KVM guests as the VMware rows that LibreNMS and
Observium inventory on any Linux host that answers ``vmwVmTable``.

It borrows VMware's enterprise number (6876) for that reason only. Mapping:

* ``vmwVmIdx`` (the index) and the traps' ``vmwVmID``: the domain's stable index, the
  same as LIBVIRT-EXT-MIB's lvxDomainIndex (at most 65535, the index's range);
  ``vmwVmVMID`` is obsolete in the MIB ("no longer provided") and is not served;
* ``vmwVmState``: "powered on" (running, blocked, shutting down), "suspended"
  (paused, pmsuspended), "powered off" (shut off, crashed, nostate): the strings
  LibreNMS's PowerState knows;
* ``vmwVmGuestState``: "running", "shuttingdown" (libvirt's shutdown state),
  "notrunning" otherwise;
* ``vmwVmMemSize``: the configured (maximum) memory in MB (MiB, as VMware counts);
* ``vmwVmConfigFile`` and the traps' ``vmwVmConfigFilePath``: empty, since libvirt
  keeps a domain's configuration itself; ``vmwVmGuestOS``: the guest OS libosinfo
  names in the domain's metadata, else empty, which LibreNMS shows as "(Unknown)";
* ``vmwVmNetTable``: one row per NIC of the domain's XML, numbered from 1: its name is
  the NIC's source (network or bridge), else its target; connected "true" while the
  domain is active; ``vmwVmNetConnType`` is not served (libvirt's interface type is
  not in the Snapshot).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Optional

from agentx_virt.mib.model import Mib, load_compiled
from agentx_virt.mib.spec import MibSpec, TableSpec
from agentx_virt.model.snapshot import DomainStats, InterfaceStats

MODULE = "VMWARE-VMINFO-MIB"
SUBTREE = "1.3.6.1.4.1.6876.2"     # vmwVirtMachines: vmwVmTable and vmwVmNetTable

_ON = "powered on"
_OFF = "powered off"
_SUSPENDED = "suspended"
_POWER = {1: _ON, 2: _ON, 4: _ON, 3: _SUSPENDED, 7: _SUSPENDED, 0: _OFF, 5: _OFF, 6: _OFF}
# The trap each power state brings, when the state changes to it.
POWER_TRAPS = {_ON: "vmwVmPoweredOn", _OFF: "vmwVmPoweredOff", _SUSPENDED: "vmwVmSuspended"}


def power_state(state: Optional[int]) -> Optional[str]:
    """virDomainState → vmwVmState."""
    return None if state is None else _POWER.get(state, _OFF)


def guest_state(state: Optional[int]) -> str:
    """virDomainState → vmwVmGuestState."""
    return {1: "running", 4: "shuttingdown"}.get(state or 0, "notrunning")


def _mac(nic: InterfaceStats) -> Optional[bytes]:
    if not nic.mac:
        return None
    try:
        return bytes.fromhex(nic.mac.replace(":", "").replace("-", ""))
    except ValueError:
        return None


def _nics(domain: DomainStats) -> Iterable[tuple[int, InterfaceStats, bool]]:
    active = domain.state not in (None, 0, 5)
    return ((number, nic, active) for number, nic in enumerate(domain.interfaces, 1))


@functools.lru_cache(maxsize=1)
def load() -> Mib:
    """The compiled VMWARE-VMINFO-MIB shipped with the package (loaded once)."""
    return load_compiled(module=MODULE, root=SUBTREE, tc_modules=("SNMPv2-TC", "VMWARE-TC-MIB"))


_VMS = TableSpec("vmwVmEntry", lambda d: (d,), lambda i, _d: (i,), {
    "vmwVmDisplayName": lambda d: d.name,
    "vmwVmConfigFile": lambda d: "",
    "vmwVmGuestOS": lambda d: d.os_id or "",
    "vmwVmMemSize": lambda d: None if d.memory_maximum_kib is None
    else min(d.memory_maximum_kib // 1024, 2**31 - 1),
    "vmwVmState": lambda d: power_state(d.state),
    "vmwVmGuestState": lambda d: guest_state(d.state),
    "vmwVmCpus": lambda d: d.vcpus_current,
    "vmwVmUUID": lambda d: d.uuid.lower(),
})
_NETS = TableSpec("vmwVmNetEntry", _nics, lambda i, n: (i, n[0]), {
    "vmwVmNetNum": lambda n: f"Network adapter {n[0]}",
    "vmwVmNetName": lambda n: n[1].source or n[1].target,
    "vmwVmNetConnected": lambda n: "true" if n[2] else "false",
    "vmwVmMAC": lambda n: _mac(n[1]),
})

VMWARE_VMINFO_MIB = MibSpec(load, {}, {}, (_VMS, _NETS), "vmwVmIdx")
