"""What a MIB spec is: one served SMI module, its objects by name, and where each value
comes from. The builder (``build.py``) turns a Snapshot into an OID table with one."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Optional

from agentx_virt.mib.model import Mib
from agentx_virt.model.alarm import ActiveAlarm

Getter = Callable[[Any], object]


@dataclass(frozen=True)
class TableSpec:
    """How one MIB table is filled from a domain."""

    entry: str                                            # the row object, e.g. lvxDiskEntry
    rows: Callable[[Any], Iterable[Any]]        # of a DomainStats (a host table: Snapshot)
    index: Callable[[int, Any], tuple[object, ...]]   # (domain index, row) -> index values
    columns: Mapping[str, Getter]


@dataclass(frozen=True)
class AgentStatus:
    """The agent's own health, which no Snapshot of libvirt carries."""

    index_state_error: Optional[str] = None     # why the last state file write failed
    traps_sent: Optional[int] = None            # acknowledged by the master
    traps_dropped: Optional[int] = None         # dropped, refused or never built
    vm_notifications: bool = False              # VM-MIB's per-VM notifications are sent
    vm_bulk_notifications: bool = False         # ... and its bulk ones
    config_loaded_at: Optional[datetime] = None  # when the running configuration was read
    config_reloads: int = 0                     # reloads applied
    config_reload_failures: int = 0             # reloads refused
    config_last_error: str = ""                 # why the last refused one was
    # The thresholds crossed now, by domain UUID (merged into the domains' rows).
    alarms: Mapping[str, tuple[ActiveAlarm, ...]] = field(default_factory=dict)



@dataclass(frozen=True)
class MibSpec:
    """One served MIB: the compiled module, its scalars and tables by object name, and
    the getter of each value. The first table's rows are the domains."""

    load: Callable[[], Mib]                                       # its compiled module
    scalars: Mapping[str, Getter]                                 # from the Snapshot
    status_scalars: Mapping[str, Callable[[AgentStatus], object]]  # the agent's own
    tables: tuple[TableSpec, ...]
    domain_index: str                                             # e.g. lvxDomainIndex
    # Tables of the host, not of a domain: rows of the Snapshot, ``index(0, row)``.
    host_tables: tuple[TableSpec, ...] = ()

    def columns(self, entry: str) -> Mapping[str, Getter]:
        """The getters of table ``entry``'s columns, by object name."""
        for table in self.tables:
            if table.entry == entry:
                return table.columns
        raise KeyError(f"the spec has no table {entry!r}")
