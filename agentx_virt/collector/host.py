"""What the partitioner's connection says about the host: the facts read once per
connection (``describe``), and, with the ``host`` and ``storage_pools`` statistics
groups, the host's CPU and memory use and its storage pools, read each cycle.

libvirt reports these for the hypervisor host it runs on, so a remote URI gives the
remote host's.  A driver without the call (the test driver has no memory
statistics) gives no value; nothing is logged for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

import libvirt

from agentx_virt.collector.assignment import version_text
from agentx_virt.collector.connection import Connection
from agentx_virt.collector.errors import CollectorError
from agentx_virt.collector.records import as_int
from agentx_virt.collector.uptime import boot_time
from agentx_virt.model.snapshot import HostInfo, StatGroup, StoragePool

_ALL = -1           # VIR_NODE_CPU_STATS_ALL_CPUS / VIR_NODE_MEMORY_STATS_ALL_CELLS


def describe(conn: Connection, uri: str) -> HostInfo:
    """The host as a new connection first finds it."""
    kind = conn.call("getType", conn.conn.getType)
    hypervisor = conn.call("getVersion", conn.conn.getVersion)
    library = conn.call("getLibVersion", conn.conn.getLibVersion)
    cpus = conn.call("getInfo", conn.conn.getInfo)[2]
    return HostInfo(True, uri, str(kind), version_text(int(hypervisor)),
                    version_text(int(library)), int(cpus),
                    boot_time=boot_time() if conn.local else None)


def _get(conn: Connection, what: str, function: Callable[..., Any], *args: Any) -> Any:
    try:
        return conn.call(what, function, *args)
    except CollectorError:
        return None


class HostUse:
    """The host's CPU use between two cycles, its memory and its pools."""

    def __init__(self) -> None:
        self._cpu: Optional[tuple[int, int]] = None     # (busy ns, total ns) last cycle

    def read(self, conn: Connection, wants: Callable[[StatGroup], bool]) -> dict[str, Any]:
        """HostInfo fields for the groups wanted."""
        values: dict[str, Any] = {}
        if wants(StatGroup.HOST):
            values.update(self._cpu_util(_get(conn, "getCPUStats", conn.conn.getCPUStats,
                                              _ALL, 0) or {}))
            memory = _get(conn, "getMemoryStats", conn.conn.getMemoryStats, _ALL, 0) or {}
            for key in ("total", "free", "buffers", "cached"):
                values[f"mem_{key}_kib"] = as_int(memory.get(key))
        if wants(StatGroup.STORAGE_POOLS):
            values["pools"] = self._pools(conn)
        return values

    def _cpu_util(self, stats: dict[str, Any]) -> dict[str, Any]:
        """Hundredths of a percent of all host CPUs busy since the last cycle."""
        parts = [as_int(stats.get(k)) for k in ("user", "kernel", "idle", "iowait")]
        if any(p is None for p in parts[:3]):
            return {}
        user, kernel, idle, iowait = (p or 0 for p in parts)
        busy, total = user + kernel, user + kernel + idle + iowait
        previous, self._cpu = self._cpu, (busy, total)
        if previous is None or total <= previous[1] or busy < previous[0]:
            return {}
        return {"cpu_util": min(10000, (busy - previous[0]) * 10000 //
                                (total - previous[1]))}

    @staticmethod
    def _pools(conn: Connection) -> tuple[StoragePool, ...]:
        found = []
        for pool in _get(conn, "listAllStoragePools", conn.conn.listAllStoragePools, 0) or ():
            try:
                name, uuid = pool.name(), pool.UUIDString()
            except libvirt.libvirtError:       # the pool vanished meanwhile
                continue
            info = _get(conn, f"info of pool {name}", pool.info) or [None] * 4
            found.append(StoragePool(str(name), str(uuid), as_int(info[0]), as_int(info[1]),
                                     as_int(info[2]), as_int(info[3])))
        return tuple(sorted(found, key=lambda p: p.name))
