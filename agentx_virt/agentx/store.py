"""The served store: the table being served, swapped whole.

A request reads ``ServedStore.table`` once, so a walk never sees half of an update.
The table itself (``OidTable``) is the SNMP layer's, shared with the MIB builder.
"""

from __future__ import annotations

from agentx_virt.snmp.table import EMPTY_TABLE as EMPTY_TABLE
from agentx_virt.snmp.table import Block as Block
from agentx_virt.snmp.table import OidTable as OidTable
from agentx_virt.snmp.table import Repeated as Repeated
from agentx_virt.snmp.table import Stored as Stored
from agentx_virt.snmp.table import served as served


class ServedStore:
    """Holds the table being served; ``swap`` replaces it atomically."""

    def __init__(self, table: OidTable = EMPTY_TABLE) -> None:
        self._table = table

    @property
    def table(self) -> OidTable:
        return self._table

    def swap(self, table: OidTable) -> OidTable:
        """Publish ``table``; returns the one it replaces."""
        old, self._table = self._table, table
        return old
