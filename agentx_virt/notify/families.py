"""The state-change notifications of the other served MIBs, beside LIBVIRT-EXT-MIB's.

Pure: a state change in, the traps of each enabled family out, in a fixed order
(LIBVIRT-MIB's, VM-MIB's, then VMWARE-VMINFO-MIB's); the state is the one the event says.

* LIBVIRT-MIB ``libvirtGuestNotif``: every change; its objects take the row's UUID
  as instance, with the state and the RowStatus that goes with it.
* RFC 7666 VM-MIB ``vmRunning`` … ``vmCrashed``: when the operational state changes to
  one that has a notification (not preparing or unknown); ``vmOperState`` carries the
  **previous** state, as the RFC says, from the previous libvirt state and reason;
  ``vmDeleted`` when the domain is undefined. Every object's instance is ``vmIndex``.
  With the VM-MIB-BULK family, the same changes also go into ``vmBulk…``
  notifications (``bulk.py``), sent as their windows end.
* VMWARE-VMINFO-MIB ``vmwVmPoweredOn`` / ``vmwVmPoweredOff`` / ``vmwVmSuspended``: when
  the power state (``vmwVmState``) changes; ``vmwVmID.0`` is the domain's index,
  ``vmwVmConfigFilePath.0`` empty, ``vmwVmDisplayName.<index>`` its name.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Callable, Optional

from agentx_virt.agentx.traps import Trap
from agentx_virt.mib.libvirt_mib import guest_state, row_status, uuid_octets
from agentx_virt.mib.model import Mib
from agentx_virt.mib.vm_mib import oper_state
from agentx_virt.mib.vmware_vminfo import POWER_TRAPS, power_state
from agentx_virt.notify.builder import TrapBuilder
from agentx_virt.notify.bulk import BulkNotifications

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
        self._bulk = BulkNotifications(mibs["VM-MIB-BULK"]) if "VM-MIB-BULK" in mibs else None

    @property
    def enabled(self) -> bool:
        return any(b is not None for b in (self._guest, self._vm, self._vmware, self._bulk))

    def next_due(self, now: float) -> Optional[float]:
        """Seconds until ``due`` has a bulk notification to send; None if none waits."""
        return None if self._bulk is None else self._bulk.next_due(now)

    def due(self, now: float) -> list[Trap]:
        """The bulk notifications whose window has ended by ``now``."""
        return [] if self._bulk is None else self._bulk.due(now)

    def state_changed(self, uuid: str, name: str, index: Callable[[], int], state: int,
                      reason: Optional[int], previous: tuple[Optional[int], Optional[int]],
                      at: float) -> list[Trap]:
        """The traps for ``name`` going from ``previous`` (state and reason, None: unknown)
        to ``state`` at time ``at``; ``index`` gives the domain's index (asked only when a
        trap names it).

        Raises:
            Reject: a value an object's syntax does not allow (the index above 65535).
        """
        index = functools.lru_cache(maxsize=1)(index)   # asked once, whichever families
        traps = []
        if self._guest is not None:
            octets = uuid_octets(uuid)
            traps.append(self._guest.row_trap("libvirtGuestNotif", tuple(octets), {
                "libvirtGuestName": name, "libvirtGuestUUID": octets,
                "libvirtGuestState": guest_state(state),
                "libvirtGuestRowStatus": row_status(state)}))
        oper, before = oper_state(state, reason), oper_state(*previous) or "unknown"
        if oper in _VM_TRAPS and oper != before:
            if self._vm is not None:
                traps.append(self._vm.row_trap(_VM_TRAPS[oper], (index(),), {
                    "vmName": name, "vmUUID": uuid_octets(uuid), "vmOperState": before}))
            if self._bulk is not None:
                self._bulk.add(_VM_TRAPS[oper], index(), at)
        power = power_state(state)
        if self._vmware is not None and power is not None and (
                previous[0] is None or power_state(previous[0]) != power):
            row = index()
            traps.append(self._vmware.trap(POWER_TRAPS[power], {
                "vmwVmID": ((0,), row), "vmwVmConfigFilePath": ((0,), ""),
                "vmwVmDisplayName": ((row,), name)}))
        return traps

    def deleted(self, uuid: str, name: str, index: Callable[[], int],
                previous: tuple[Optional[int], Optional[int]], at: float) -> list[Trap]:
        """VM-MIB's vmDeleted for an undefined domain (only persistent ones are)."""
        index = functools.lru_cache(maxsize=1)(index)
        if self._bulk is not None:
            self._bulk.add("vmDeleted", index(), at)
        if self._vm is None:
            return []
        return [self._vm.row_trap("vmDeleted", (index(),), {
            "vmName": name, "vmUUID": uuid_octets(uuid),
            "vmOperState": oper_state(*previous) or "unknown", "vmPersistent": "persistent"})]
