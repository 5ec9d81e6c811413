"""RFC 7666 VM-MIB's bulk notifications: many VMs' changes to one state in one trap.

Pure, with the time passed in.  The first change to a state opens a window of
``BULK_WINDOW_S``; every VM that changes to that state (or is deleted) within it is
added, and when the window ends one ``vmBulk…`` notification names them all in
``vmAffectedVMs`` (a bit per vmIndex).  A storm of state changes is then a few
traps a second, whatever the number of domains.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from agentx_virt.agentx.traps import Trap
from agentx_virt.mib.model import Mib
from agentx_virt.notify.builder import TrapBuilder

BULK_WINDOW_S = 1.0

# vmRunning … vmDeleted → the bulk notification for the same change.
BULK_OF = {"vmRunning": "vmBulkRunning", "vmShuttingdown": "vmBulkShuttingdown",
           "vmShutdown": "vmBulkShutdown", "vmPaused": "vmBulkPaused",
           "vmSuspending": "vmBulkSuspending", "vmSuspended": "vmBulkSuspended",
           "vmResuming": "vmBulkResuming", "vmMigrating": "vmBulkMigrating",
           "vmCrashed": "vmBulkCrashed", "vmDeleted": "vmBulkDeleted"}


def vm_list(indexes: set[int]) -> bytes:
    """VirtualMachineList: one bit per vmIndex, the first octet holding VMs 1 to 8 with
    the most significant bit for the lowest index."""
    if not indexes:
        return b""
    octets = bytearray((max(indexes) + 7) // 8)
    for index in indexes:
        if index < 1:
            raise ValueError(f"vmIndex {index} cannot be in a VirtualMachineList")
        octets[(index - 1) // 8] |= 0x80 >> ((index - 1) % 8)
    return bytes(octets)


@dataclass
class _Window:
    opened_at: float
    indexes: set[int] = field(default_factory=set)


class BulkNotifications:
    def __init__(self, mib: Mib, window_s: float = BULK_WINDOW_S) -> None:
        self._builder = TrapBuilder(mib)
        self._window_s = window_s
        self._open: dict[str, _Window] = {}      # bulk notification → its open window

    def add(self, per_vm: str, index: int, at: float) -> None:
        """The VM in row ``index`` had per-VM notification ``per_vm`` at time ``at``."""
        bulk = BULK_OF.get(per_vm)
        if bulk is None:
            raise KeyError(f"{per_vm} has no bulk notification")
        self._open.setdefault(bulk, _Window(at)).indexes.add(index)

    def next_due(self, now: float) -> Optional[float]:
        """Seconds until the first open window ends; None with none open."""
        if not self._open:
            return None
        return max(0.0, min(w.opened_at for w in self._open.values()) + self._window_s - now)

    def due(self, now: float) -> list[Trap]:
        """The bulk notifications whose window has ended by ``now``, in the order the
        windows opened; their windows are closed."""
        ended = sorted((w.opened_at, name) for name, w in self._open.items()
                       if now - w.opened_at >= self._window_s)
        traps = []
        for _, name in ended:
            window = self._open.pop(name)
            traps.append(self._builder.host_trap(name, {"vmAffectedVMs": vm_list(window.indexes)}))
        return traps
