"""The block-organised table answers exactly like a plain sorted list of entries."""

from __future__ import annotations

from bisect import bisect_left, bisect_right

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentx_virt.agentx.constants import ValueType as T
from agentx_virt.agentx.pdu import VarBind
from agentx_virt.agentx.store import Block, OidTable, Repeated
from agentx_virt.oid import OID

# Small sub-identifiers so generated OIDs collide, nest and share prefixes often.
subid = st.integers(0, 3)
oids = st.lists(subid, min_size=0, max_size=5).map(tuple)


@st.composite
def block_tables(draw: st.DrawFn) -> tuple[OidTable, list[VarBind]]:
    """Blocks as the MIB builder makes them (disjoint prefixes), and the same entries."""
    prefixes: list[OID] = []
    for candidate in sorted(set(draw(st.lists(st.lists(subid, min_size=1, max_size=3)
                                              .map(tuple), max_size=6)))):
        if not any(candidate[:len(p)] == p or p[:len(candidate)] == candidate
                   for p in prefixes):
            prefixes.append(candidate)
    blocks, entries = [], []
    for prefix in prefixes:
        instances = sorted(set(draw(st.lists(st.lists(subid, min_size=1, max_size=3)
                                             .map(tuple), max_size=6))))
        kind = draw(st.sampled_from([T.INTEGER, T.OCTET_STRING]))
        values = [len(i) if kind is T.INTEGER else bytes(i) for i in instances]
        types = Repeated(kind, len(instances)) if draw(st.booleans()) else \
            [kind] * len(instances)
        blocks.append(Block(prefix, instances, types, values))
        entries += [VarBind(prefix + i, kind, v) for i, v in zip(instances, values)]
    return OidTable.from_blocks(blocks), entries


def expected_next(entries: list[VarBind], start: OID, include: bool, end: OID) -> VarBind:
    names = [e.name for e in entries]
    i = bisect_left(names, start) if include else bisect_right(names, start)
    if i < len(entries) and (not end or names[i] < end):
        return entries[i]
    return VarBind(start, T.END_OF_MIB_VIEW)


@settings(max_examples=300, deadline=None)
@given(block_tables(), oids, st.booleans(), oids)
def test_blocks_answer_next_like_a_sorted_list(built: tuple[OidTable, list[VarBind]],
                                               start: OID, include: bool, end: OID) -> None:
    table, entries = built
    assert list(table.varbinds) == entries
    assert len(table) == len(entries)
    assert table.next(start, include, end) == expected_next(entries, start, include, end)
    found = {e.name: e for e in entries}.get(start)
    got = table.get(start)
    assert got == found if found is not None else got.type is T.NO_SUCH_OBJECT


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(oids.filter(bool), st.integers(0, 9), max_size=12), oids,
       st.booleans(), oids)
def test_entries_in_any_order_answer_like_a_sorted_list(
        values: dict[OID, int], start: OID, include: bool, end: OID) -> None:
    entries = [VarBind(name, T.INTEGER, v) for name, v in sorted(values.items())]
    table = OidTable(reversed([(e.name, e.type, e.value) for e in entries]))
    assert list(table.varbinds) == entries
    assert table.next(start, include, end) == expected_next(entries, start, include, end)


@pytest.mark.parametrize("blocks, message", [
    ([Block((1, 2), [(2,), (1,)], [T.INTEGER] * 2, [1, 2])], "not after"),
    ([Block((1, 2), [(1,)], [T.INTEGER], [1]), Block((1, 2, 3), [(1,)], [T.INTEGER], [1])],
     "lies under"),
    ([Block((1, 3), [(1,)], [T.INTEGER], [1]), Block((1, 2), [(1,)], [T.INTEGER], [1])],
     "not after"),
    ([Block((1, 2), [(1,)], [T.INTEGER], [])], "1 instances, 1 types, 0 values"),
    ([Block((1, 2), [()], [T.INTEGER], [1])], "an empty instance"),
])
def test_blocks_out_of_order_are_refused(blocks: list[Block], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OidTable.from_blocks(blocks)


def test_repeated_is_a_sequence_of_one_type() -> None:
    types = Repeated(T.COUNTER64, 3)
    assert len(types) == 3 and list(types) == [T.COUNTER64] * 3
    assert types[0] is types[-3] is T.COUNTER64
    assert types[1:] == [T.COUNTER64] * 2 and types[5:] == []
    for outside in (3, -4):
        with pytest.raises(IndexError):
            types[outside]
    assert list(Repeated(T.INTEGER, 0)) == []
