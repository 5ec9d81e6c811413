"""The LIBVIRT-MIB spec: libvirt-snmp's ``libvirtGuestTable``, served read-only so that
what polls libvirt-snmp today polls this agent unchanged.

Mapping from the Snapshot (libvirt-snmp's meanings, read in its MIB):

* a row per domain, active or not, indexed by its 16-octet UUID (fixed size, so
  no length sub-identifier);
* ``libvirtGuestState``: libvirt's own state number, which the MIB's enumeration
  repeats for running (1) … crashed (6); pmsuspended (7), which the enumeration
  lacks, is served as paused (3), and nostate (0) leaves the cell absent;
* ``libvirtGuestMemoryCurrent`` / ``Limit`` in MiB (KiB // 1024);
* ``libvirtGuestCpuTime`` in nanoseconds;
* ``libvirtGuestRowStatus``: active (1) for an active domain, notInService (2)
  for a shut-off one. Every SET is refused (notWritable): the agent is read-only.

``LIBVIRT_MIB_LEGACY`` is the same table at the arc libvirt-snmp used before 0.0.4
(2018), enterprise 12345, where older NMS packs still walk.
"""

from __future__ import annotations

import functools
from typing import Optional

from agentx_virt.mib.model import Mib, load_compiled
from agentx_virt.mib.spec import MibSpec, TableSpec

MODULE = "LIBVIRT-MIB"
SUBTREE = "libvirtGuestTable"      # what libvirt-snmp's table handler registers

_PMSUSPENDED, _PAUSED, _SHUTOFF = 7, 3, 5
_ROW_ACTIVE, _ROW_NOT_IN_SERVICE = 1, 2


def guest_state(state: Optional[int]) -> Optional[int]:
    """virDomainState → libvirtGuestState (None: no cell)."""
    if state is None or state == 0:
        return None
    return _PAUSED if state == _PMSUSPENDED else state


def row_status(state: Optional[int]) -> Optional[int]:
    """active for an active domain, notInService for a shut-off one."""
    if state is None:
        return None
    return _ROW_NOT_IN_SERVICE if state in (0, _SHUTOFF) else _ROW_ACTIVE


def _mib(kib: Optional[int]) -> Optional[int]:
    return None if kib is None else kib // 1024


def uuid_octets(uuid: str) -> bytes:
    return bytes.fromhex(uuid.replace("-", ""))


@functools.lru_cache(maxsize=1)
def load() -> Mib:
    """The compiled LIBVIRT-MIB shipped with the package (loaded once)."""
    return load_compiled(module=MODULE, root=SUBTREE, tc_modules=("SNMPv2-TC",))


_GUESTS = TableSpec("libvirtGuestEntry", lambda d: (d,), lambda _i, d: (uuid_octets(d.uuid),), {
    "libvirtGuestName": lambda d: d.name,
    "libvirtGuestState": lambda d: guest_state(d.state),
    "libvirtGuestCpuCount": lambda d: d.vcpus_current,
    "libvirtGuestMemoryCurrent": lambda d: _mib(d.memory_current_kib),
    "libvirtGuestMemoryLimit": lambda d: _mib(d.memory_maximum_kib),
    "libvirtGuestCpuTime": lambda d: d.cpu_time_total_ns,
    "libvirtGuestRowStatus": lambda d: row_status(d.state),
})

LIBVIRT_MIB = MibSpec(load, {}, {}, (_GUESTS,), "libvirtGuestUUID")


@functools.lru_cache(maxsize=1)
def load_legacy() -> Mib:
    """LIBVIRT-MIB moved to libvirt-snmp's pre-0.0.4 arc, 1.3.6.1.4.1.12345."""
    return load_compiled(module=MODULE, root=SUBTREE, tc_modules=("SNMPv2-TC",),
                         moved=("1.3.6.1.4.1.36957", "1.3.6.1.4.1.12345"))


LIBVIRT_MIB_LEGACY = MibSpec(load_legacy, {}, {}, (_GUESTS,), "libvirtGuestUUID")
