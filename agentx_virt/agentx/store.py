"""The served store: an immutable, sorted OID table, swapped whole.

An ``OidTable`` is built once and never changed; the agent publishes a new one
with ``ServedStore.swap``.  A request reads ``ServedStore.table`` once, so a
walk never sees half of an update.  Lookups bisect a sorted list: O(log n).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence

from agentx_virt.agentx.constants import ValueType
from agentx_virt.agentx.pdu import Value, VarBind
from agentx_virt.oid import OID, format_oid


def _name(varbind: VarBind) -> OID:
    return varbind.name


class OidTable:
    """Sorted OID → typed value, plus the object types (scalars and columns) it serves.

    ``objects`` are the OIDs of object types without an instance part, e.g. a
    table column.  RFC 2741 §7.2.3.1 needs them to tell noSuchInstance (the
    object type exists, the instance does not) from noSuchObject.
    """

    __slots__ = ("_names", "_objects", "_varbinds")

    def __init__(
        self,
        entries: Iterable[tuple[OID, ValueType, Value]] = (),
        objects: Iterable[OID] = (),
    ) -> None:
        varbinds = [VarBind(name, kind, value) for name, kind, value in entries]
        varbinds.sort(key=_name)
        names = [vb.name for vb in varbinds]
        for earlier, later in zip(names, names[1:]):
            if earlier == later:
                raise ValueError(f"OID {format_oid(earlier)} appears twice in the table")
        self._names: list[OID] = names
        self._varbinds: list[VarBind] = varbinds
        self._objects: list[OID] = sorted(set(objects))

    def __len__(self) -> int:
        return len(self._names)

    @property
    def varbinds(self) -> Sequence[VarBind]:
        """Every entry in OID order."""
        return self._varbinds

    def get(self, name: OID) -> VarBind:
        """The exact entry, or a noSuchInstance / noSuchObject VarBind (RFC 2741 §7.2.3.1)."""
        names = self._names
        i = bisect_left(names, name)
        if i < len(names) and names[i] == name:
            return self._varbinds[i]
        objects = self._objects
        j = bisect_right(objects, name) - 1
        if j >= 0 and name[: len(objects[j])] == objects[j]:
            return VarBind(name, ValueType.NO_SUCH_INSTANCE)
        return VarBind(name, ValueType.NO_SUCH_OBJECT)

    def next(self, start: OID, include: bool = False, end: OID = ()) -> VarBind:
        """The first entry after ``start`` (or at it, when ``include``) and before ``end``.

        ``end`` is exclusive and ``()`` means no bound.  With nothing in range the
        answer is endOfMibView named ``start`` (RFC 2741 §7.2.3.2).
        """
        names = self._names
        i = bisect_left(names, start) if include else bisect_right(names, start)
        if i < len(names) and (not end or names[i] < end):
            return self._varbinds[i]
        return VarBind(start, ValueType.END_OF_MIB_VIEW)


EMPTY_TABLE = OidTable()


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
