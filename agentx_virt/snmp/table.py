"""The served table: immutable, sorted OIDs with their types and values.

An ``OidTable`` is built once and never changed; the agent publishes a new one
with ``agentx.store.ServedStore.swap``.  A request reads ``ServedStore.table`` once, so a
walk never sees half of an update.

The table is kept in blocks, one per MIB column (or scalar): the column's OID
and three parallel lists, the instance parts in order, their wire types and
their values.  Rows share their instance tuples across columns and no VarBind
is kept, so an entry costs three list slots plus its value; VarBinds are made
when a request asks.  Lookups bisect the block prefixes, then the block: O(log n).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple, Union, overload

from agentx_virt.oid import OID, format_oid
from agentx_virt.snmp.types import Value, ValueType, VarBind

# A stored value: a VarBind value, or text that is served as its UTF-8 octets.  Text
# is encoded per request, so the table shares the snapshot's strings instead of
# holding an encoded copy of every name, path and MAC-less string column.
Stored = Union[Value, str]


def served(value: Stored) -> Value:
    """The VarBind value for a stored one."""
    return value.encode("utf-8") if type(value) is str else value  # type: ignore[return-value]


class Repeated(Sequence[ValueType]):
    """``count`` times the same type: a column's types without a list slot per entry."""

    __slots__ = ("_count", "_kind")

    def __init__(self, kind: ValueType, count: int) -> None:
        self._kind = kind
        self._count = count

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, i: int) -> ValueType: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[ValueType]: ...

    def __getitem__(self, i: int | slice) -> ValueType | Sequence[ValueType]:
        if isinstance(i, slice):
            return [self._kind] * len(range(*i.indices(self._count)))
        if not -self._count <= i < self._count:
            raise IndexError(i)
        return self._kind


class Block(NamedTuple):
    """The entries under one OID prefix: ``prefix + instances[i]`` is a ``types[i]``
    whose value is ``values[i]`` (see ``served``); ``instances`` are non-empty and
    strictly increasing."""

    prefix: OID
    instances: Sequence[OID]
    types: Sequence[ValueType]
    values: Sequence[Stored]


class OidTable:
    """Sorted OID → typed value, plus the object types (scalars and columns) it serves.

    ``objects`` are the OIDs of object types without an instance part, e.g. a
    table column.  RFC 2741 §7.2.3.1 needs them to tell noSuchInstance (the
    object type exists, the instance does not) from noSuchObject.

    Build it from (OID, type, value) entries in any order, or with
    ``from_blocks`` from blocks that are already in order (the MIB builder).
    """

    __slots__ = ("_blocks", "_count", "_objects", "_prefixes")

    def __init__(
        self,
        entries: Iterable[tuple[OID, ValueType, Value]] = (),
        objects: Iterable[OID] = (),
    ) -> None:
        ordered = sorted(entries, key=lambda entry: entry[0])
        for earlier, later in zip(ordered, ordered[1:]):
            if earlier[0] == later[0]:
                raise ValueError(f"OID {format_oid(earlier[0])} appears twice in the table")
        # Any OIDs: one block under the empty prefix.
        if ordered and not ordered[0][0]:
            raise ValueError("an empty OID cannot be a table entry")
        blocks = [Block((), [e[0] for e in ordered], [e[1] for e in ordered],
                        [e[2] for e in ordered])] if ordered else []
        self._init(blocks, objects, check=False)

    @classmethod
    def from_blocks(cls, blocks: Iterable[Block], objects: Iterable[OID] = ()) -> OidTable:
        """A table from blocks in OID order, none under another's prefix (checked)."""
        table = cls.__new__(cls)
        table._init([b for b in blocks if b.instances], objects, check=True)
        return table

    def _init(self, blocks: list[Block], objects: Iterable[OID], check: bool) -> None:
        if check:
            ordered: set[int] = set()   # instance lists already checked (columns share them)
            for block in blocks:
                if not len(block.instances) == len(block.types) == len(block.values):
                    raise ValueError(f"block {format_oid(block.prefix)}: "
                                     f"{len(block.instances)} instances, {len(block.types)} "
                                     f"types, {len(block.values)} values")
                instances = block.instances
                if id(instances) in ordered:
                    continue
                ordered.add(id(instances))
                for earlier, later in zip(instances, instances[1:]):
                    if not earlier < later:
                        raise ValueError(f"block {format_oid(block.prefix)}: instance "
                                         f"{format_oid(later)} is not after "
                                         f"{format_oid(earlier)}")
                if not instances[0]:
                    raise ValueError(f"block {format_oid(block.prefix)}: an empty instance")
            for earlier_block, later_block in zip(blocks, blocks[1:]):
                a, b = earlier_block.prefix, later_block.prefix
                if not a < b or b[:len(a)] == a:
                    raise ValueError(f"block {format_oid(b)} is not after block "
                                     f"{format_oid(a)} or lies under it")
        self._blocks: list[Block] = blocks
        self._prefixes: list[OID] = [b.prefix for b in blocks]
        self._objects: list[OID] = sorted(set(objects))
        self._count = sum(len(b.instances) for b in blocks)

    def __len__(self) -> int:
        return self._count

    @property
    def varbinds(self) -> Sequence[VarBind]:
        """Every entry in OID order (made on each call: for dumps and tests)."""
        return list(self._iterate())

    def _iterate(self) -> Iterator[VarBind]:
        for prefix, instances, types, values in self._blocks:
            for instance, kind, value in zip(instances, types, values):
                yield VarBind(prefix + instance, kind, served(value))

    def _block_of(self, name: OID) -> int:
        """The index of the block whose prefix ``name`` starts with, or -1 - (the index of
        the last block before ``name``)."""
        j = bisect_right(self._prefixes, name) - 1
        if j >= 0:
            prefix = self._prefixes[j]
            if name[:len(prefix)] == prefix:
                return j
        return -2 - j

    def get(self, name: OID) -> VarBind:
        """The exact entry, or a noSuchInstance / noSuchObject VarBind (RFC 2741 §7.2.3.1)."""
        j = self._block_of(name)
        if j >= 0:
            prefix, instances, types, values = self._blocks[j]
            instance = name[len(prefix):]
            i = bisect_left(instances, instance)
            if i < len(instances) and instances[i] == instance:
                return VarBind(name, types[i], served(values[i]))
        objects = self._objects
        k = bisect_right(objects, name) - 1
        if k >= 0 and name[: len(objects[k])] == objects[k]:
            return VarBind(name, ValueType.NO_SUCH_INSTANCE)
        return VarBind(name, ValueType.NO_SUCH_OBJECT)

    def next(self, start: OID, include: bool = False, end: OID = ()) -> VarBind:
        """The first entry after ``start`` (or at it, when ``include``) and before ``end``.

        ``end`` is exclusive and ``()`` means no bound.  With nothing in range the
        answer is endOfMibView named ``start`` (RFC 2741 §7.2.3.2).
        """
        blocks = self._blocks
        j = self._block_of(start)
        found = None
        if j >= 0:
            prefix, instances, types, values = blocks[j]
            instance = start[len(prefix):]
            i = bisect_left(instances, instance) if include else bisect_right(instances, instance)
            if i < len(instances):
                found = VarBind(prefix + instances[i], types[i], served(values[i]))
            j += 1
        else:
            j = -1 - j       # the first block after start
        if found is None and j < len(blocks):
            prefix, instances, types, values = blocks[j]
            found = VarBind(prefix + instances[0], types[0], served(values[0]))
        if found is not None and (not end or found.name < end):
            return found
        return VarBind(start, ValueType.END_OF_MIB_VIEW)


EMPTY_TABLE = OidTable()
