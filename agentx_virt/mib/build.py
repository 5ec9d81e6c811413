"""Snapshot → OID table: a pure function of a Snapshot, a MIB spec and the indexes.

A ``MibSpec`` (``spec.py``) names the module's scalars and, per table, which rows a
domain has, the row's index values and one getter per column.  OIDs, wire types, enumeration
numbers, ranges and sizes all come from the compiled MIB; Python holds names
only.  A getter returning ``None`` leaves the object absent.  A value the MIB's
syntax does not allow is left out and reported in ``BuiltTable.rejected``, so
one odd domain never costs the others their rows.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional

from agentx_virt.mib.convert import Converter, Reject, converter
from agentx_virt.mib.model import Mib, MibObject
from agentx_virt.mib.spec import AgentStatus, MibSpec, TableSpec
from agentx_virt.model.snapshot import DomainStats, Snapshot, uuid_key
from agentx_virt.oid import OID, format_oid
from agentx_virt.snmp.table import Block, OidTable, Repeated, Stored, served


@dataclass(frozen=True)
class Rejected:
    """A value left out of the table, and why (bad input from libvirt or a bug)."""

    object: str
    instance: str
    value: str
    reason: str

    def __str__(self) -> str:
        return f"{self.object}{self.instance} = {self.value}: {self.reason}"


@dataclass(frozen=True)
class BuiltTable:
    table: OidTable
    rejected: tuple[Rejected, ...]


def _index_subids(obj: MibObject, convert: Converter, value: object, implied: bool) -> OID:
    """The sub-identifiers an index value adds to the instance (RFC 2578 §7.7)."""
    wire = served(convert(value))
    if isinstance(wire, bytes):
        syntax = obj.syntax
        fixed = syntax is not None and len(syntax.sizes) == 1 and \
            syntax.sizes[0][0] == syntax.sizes[0][1]
        return tuple(wire) if implied or fixed else (len(wire), *wire)
    if isinstance(wire, int):
        return (wire,)
    raise Reject(f"{obj.name} cannot be an index")


@dataclass
class _MibParts:
    """What every build of one Mib needs and no snapshot changes: made at its first build."""

    converters: dict[str, Converter]
    served: list[OID]        # every readable scalar and column, in OID order


_PARTS: weakref.WeakKeyDictionary[Mib, _MibParts] = weakref.WeakKeyDictionary()


def _parts(mib: Mib) -> _MibParts:
    parts = _PARTS.get(mib)
    if parts is None:
        parts = _PARTS[mib] = _MibParts({}, [obj.oid for obj in mib.served()])
    return parts


class _Builder:
    """Collects one block per scalar and per column, each already in instance order."""

    def __init__(self, mib: Mib) -> None:
        self.mib = mib
        self.parts = _parts(mib)
        self.blocks: list[Block] = []
        self.rejected: list[Rejected] = []

    def converter(self, obj: MibObject) -> Converter:
        convert = self.parts.converters.get(obj.name)
        if convert is None:
            convert = self.parts.converters[obj.name] = converter(obj)
        return convert

    def reject(self, name: str, instance: OID, value: object, reason: str) -> None:
        self.rejected.append(Rejected(name, format_oid(instance), repr(value), reason))

    def scalar(self, obj: MibObject, value: object) -> None:
        if value is None:
            return
        try:
            wire = self.converter(obj)(value)
        except Reject as exc:
            self.reject(obj.name, (0,), value, str(exc))
            return
        assert obj.syntax is not None
        self.blocks.append(Block(obj.oid, [(0,)], [obj.syntax.base], [wire]))

    def _rows(self, spec: TableSpec, domains: Iterable[tuple[int, DomainStats]]
              ) -> list[tuple[OID, Any]]:
        """(instance, row) for every row of every domain, in instance order; a row whose
        index does not convert, or repeats an earlier row's, is left out and reported."""
        entry = self.mib.object(spec.entry)
        index_objects = [(obj, self.converter(obj), implied)
                         for obj, implied in ((self.mib.object(n), i) for n, i in entry.indices)]
        rows: list[tuple[OID, Any]] = []
        for domain_index, domain in domains:
            for row in spec.rows(domain):
                values = spec.index(domain_index, row)
                try:
                    instance: OID = ()
                    for (index_obj, convert, implied), value in zip(index_objects, values):
                        instance += _index_subids(index_obj, convert, value, implied)
                except Reject as exc:
                    self.reject(spec.entry, (), values, f"bad index: {exc}")
                    continue
                rows.append((instance, row))
        rows.sort(key=_first)                     # stable: of equal instances the first stays
        unique = rows[:1]
        for instance, row in rows[1:]:
            if instance == unique[-1][0]:
                self.reject(spec.entry, instance, row, "duplicate row; the first one is kept")
            else:
                unique.append((instance, row))
        return unique

    def table(self, spec: TableSpec, domains: Iterable[tuple[int, DomainStats]]) -> None:
        rows = self._rows(spec, domains)
        every_row = [instance for instance, _ in rows]
        for name, getter in spec.columns.items():
            obj = self.mib.object(name)
            assert obj.syntax is not None
            convert = self.converter(obj)
            # A column with a value in every row shares the table's instance list; one
            # that skips a row gets its own list from the first skip on.
            instances: Optional[list[OID]] = None
            values: list[Stored] = []
            for k, (instance, row) in enumerate(rows):
                value = getter(row)
                wire: Stored = None
                if value is not None:
                    try:
                        wire = convert(value)
                    except Reject as exc:
                        self.reject(name, instance, value, str(exc))
                        value = None
                if value is None:
                    if instances is None:          # rows before k all had values
                        instances = every_row[:k]
                    continue
                if instances is not None:
                    instances.append(instance)
                values.append(wire)
            self.blocks.append(Block(obj.oid, every_row if instances is None else instances,
                                     Repeated(obj.syntax.base, len(values)), values))


def _first(pair: tuple[OID, Any]) -> OID:
    return pair[0]


def build_table(snapshot: Snapshot, indexes: Mapping[str, int], spec: MibSpec,
                status: Optional[AgentStatus] = None, mib: Optional[Mib] = None
                ) -> BuiltTable:
    """The OID table ``spec`` serves for ``snapshot`` and the agent's ``status``, and
    the values that had to be left out.

    ``indexes`` maps each domain's UUID (lower case) to its domain index: the SNMP
    side's, which the Snapshot does not carry; a domain without one is left out and
    reported. ``mib`` replaces the spec's compiled module (one compiled elsewhere).
    """
    return build_tables(snapshot, indexes, [(spec, mib or spec.load())], status)


def build_tables(snapshot: Snapshot, indexes: Mapping[str, int],
                 views: Sequence[tuple[MibSpec, Mib]], status: Optional[AgentStatus] = None
                 ) -> BuiltTable:
    """One OID table serving every view (a spec and its compiled module) from the same
    Snapshot and the same domain indexes; the modules' subtrees do not overlap."""
    status = status or AgentStatus()
    blocks: list[Block] = []
    served: list[OID] = []
    rejected: list[Rejected] = []
    for spec, mib in views:
        builder = _Builder(mib)
        _fill(builder, spec, snapshot, indexes, status)
        blocks += builder.blocks
        served += builder.parts.served
        rejected += builder.rejected
    blocks.sort(key=lambda block: block.prefix)
    table = OidTable.from_blocks(blocks, objects=sorted(served))
    return BuiltTable(table, tuple(rejected))


def _fill(builder: _Builder, spec: MibSpec, snapshot: Snapshot, indexes: Mapping[str, int],
          status: AgentStatus) -> None:
    mib = builder.mib
    domains = []
    for domain in snapshot.domains:
        domain_index = indexes.get(uuid_key(domain.uuid))
        if domain_index is None:
            builder.reject(spec.tables[0].entry, (), domain.uuid, f"no {spec.domain_index} for it")
        else:
            domains.append((domain_index, domain))
    for name, getter in spec.scalars.items():
        builder.scalar(mib.object(name), getter(snapshot))
    for name, status_getter in spec.status_scalars.items():
        builder.scalar(mib.object(name), status_getter(status))
    for table_spec in spec.tables:
        builder.table(table_spec, domains)
    for table_spec in spec.host_tables:
        builder.table(table_spec, [(0, snapshot)])  # type: ignore[list-item]
