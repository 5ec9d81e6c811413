"""The state-change notifications of the other served MIBs, beside LIBVIRT-EXT-MIB's.

Pure: a state change in, the traps of each enabled family out, in a fixed order
(LIBVIRT-MIB's, VM-MIB's, then VMWARE-VMINFO-MIB's); the state is the one the event says.

* LIBVIRT-MIB ``libvirtGuestNotif``: every change; its objects take the row's UUID
  as instance, with the state and the RowStatus that goes with it.
* RFC 7666 VM-MIB ``vmRunning`` … ``vmCrashed``: when the operational state changes to
  one that has a notification (not preparing or unknown); ``vmOperState`` carries the
  **previous** state, as the RFC says, taken from the previous libvirt state alone;
  ``vmDeleted`` when the domain is undefined. Every object's instance is ``vmIndex``.
* VMWARE-VMINFO-MIB ``vmwVmPoweredOn`` / ``vmwVmPoweredOff`` / ``vmwVmSuspended``: when
  the power state (``vmwVmState``) changes; ``vmwVmID.0`` is the domain's index,
  ``vmwVmConfigFilePath.0`` empty, ``vmwVmDisplayName.<index>`` its name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Callable, Optional

from agentx_virt.agentx.traps import Trap
from agentx_virt.mib.libvirt_mib import guest_state, row_status, uuid_octets
from agentx_virt.mib.model import Mib
from agentx_virt.mib.vm_mib import oper_state
from agentx_virt.mib.vmware_vminfo import POWER_TRAPS, power_state
from agentx_virt.notify.builder import TrapBuilder

# VirtualMachineOperState → its per-VM notification (preparing and unknown have none).
_VM_TRAPS = {"running": "vmRunning", "shuttingdown": "vmShuttingdown", "shutdown": "vmShutdown",
             "paused": "vmPaused", "suspended": "vmSuspended", "migrating": "vmMigrating",
             "crashed": "vmCrashed"}


class FamilyTraps:
    """Builds the other families' traps for a state change; ``mibs`` are the compiled
    modules of the enabled families, by MIB name."""

    def __init__(self, mibs: Mapping[str, Mib]) -> None:
        self._guest = TrapBuilder(mibs["LIBVIRT-MIB"]) if "LIBVIRT-MIB" in mibs else None
        self._vmware = (TrapBuilder(mibs["VMWARE-VMINFO-MIB"])
                        if "VMWARE-VMINFO-MIB" in mibs else None)
        self._vm = TrapBuilder(mibs["VM-MIB"]) if "VM-MIB" in mibs else None

    @property
    def enabled(self) -> bool:
        return any(b is not None for b in (self._guest, self._vm, self._vmware))

    def state_changed(self, uuid: str, name: str, index: Callable[[], int], state: int,
                      previous: Optional[int], reason: Optional[int] = None) -> list[Trap]:
        """The traps for ``name`` going from ``previous`` (None: unknown) to ``state``;
        ``index`` gives the domain's index (asked only when a trap names it).

        Raises:
            Reject: a value an object's syntax does not allow (the index above 65535).
        """
        traps = []
        if self._guest is not None:
            octets = uuid_octets(uuid)
            traps.append(self._guest.row_trap("libvirtGuestNotif", tuple(octets), {
                "libvirtGuestName": name, "libvirtGuestUUID": octets,
                "libvirtGuestState": guest_state(state),
                "libvirtGuestRowStatus": row_status(state)}))
        oper, before = oper_state(state, reason), oper_state(previous) or "unknown"
        if self._vm is not None and oper in _VM_TRAPS and oper != before:
            row = index()
            traps.append(self._vm.row_trap(_VM_TRAPS[oper], (row,), {
                "vmName": name, "vmUUID": uuid_octets(uuid), "vmOperState": before}))
        power = power_state(state)
        if self._vmware is not None and power is not None and (
                previous is None or power_state(previous) != power):
            row = index()
            traps.append(self._vmware.trap(POWER_TRAPS[power], {
                "vmwVmID": ((0,), row), "vmwVmConfigFilePath": ((0,), ""),
                "vmwVmDisplayName": ((row,), name)}))
        return traps

    def deleted(self, uuid: str, name: str, index: Callable[[], int],
                previous: Optional[int]) -> list[Trap]:
        """VM-MIB's vmDeleted for an undefined domain (only persistent ones are)."""
        if self._vm is None:
            return []
        row = index()
        return [self._vm.row_trap("vmDeleted", (row,), {
            "vmName": name, "vmUUID": uuid_octets(uuid),
            "vmOperState": oper_state(previous) or "unknown", "vmPersistent": "persistent"})]
