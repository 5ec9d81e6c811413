"""The served table and the answers built from it, per RFC 2741 §7.2.3 and §7.2.4."""

from __future__ import annotations

import pytest

from agentx_virt.agentx import pdu as p
from agentx_virt.agentx.constants import ErrorCode
from agentx_virt.agentx.constants import ValueType as T
from agentx_virt.agentx.responder import MAX_BULK_VARBINDS, answer
from agentx_virt.agentx.store import OidTable, ServedStore

COL1 = (1, 3, 6, 1, 4, 1, 9, 1, 1)
COL2 = (1, 3, 6, 1, 4, 1, 9, 1, 2)
SCALAR = (1, 3, 6, 1, 4, 1, 9, 2)
TABLE = OidTable(
    [
        (COL2 + (1,), T.OCTET_STRING, b"a"),
        (COL1 + (1,), T.INTEGER, 10),
        (COL1 + (3,), T.INTEGER, 30),   # row 2 is a gap
        (COL2 + (3,), T.OCTET_STRING, b"c"),
        (SCALAR + (0,), T.GAUGE32, 5),
    ],
    objects=[COL1, COL2, SCALAR, (1, 3, 6, 1, 4, 1, 9, 3)],  # column 3 has no rows
)


def test_entries_come_out_sorted() -> None:
    assert [vb.name for vb in TABLE.varbinds] == sorted(vb.name for vb in TABLE.varbinds)


def test_duplicate_oids_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"\.1\.2\.3 appears twice"):
        OidTable([((1, 2, 3), T.INTEGER, 1), ((1, 2, 3), T.INTEGER, 2)])


def test_get_exact_missing_instance_and_missing_object() -> None:
    assert TABLE.get(COL1 + (3,)) == p.VarBind(COL1 + (3,), T.INTEGER, 30)
    assert TABLE.get(COL1 + (2,)).type is T.NO_SUCH_INSTANCE
    assert TABLE.get(COL1).type is T.NO_SUCH_INSTANCE  # the column itself, no instance
    assert TABLE.get((1, 3, 6, 1, 4, 1, 9, 3, 1)).type is T.NO_SUCH_INSTANCE  # empty column
    assert TABLE.get((1, 3, 6, 1, 4, 1, 9, 1, 4, 1)).type is T.NO_SUCH_OBJECT
    assert TABLE.get((1, 3, 6, 1, 4, 1, 9)).type is T.NO_SUCH_OBJECT  # above every object
    assert TABLE.get((1, 3, 6, 1, 4, 1, 9, 2, 0)).value == 5


def test_next_excludes_start_unless_include() -> None:
    assert TABLE.next(COL1 + (1,)).name == COL1 + (3,)
    assert TABLE.next(COL1 + (1,), include=True).name == COL1 + (1,)
    assert TABLE.next(COL1 + (2,), include=True).name == COL1 + (3,)  # include of a gap


def test_next_from_a_gap_and_from_a_prefix() -> None:
    assert TABLE.next(COL1 + (2,)).name == COL1 + (3,)
    assert TABLE.next(COL1 + (2, 7, 7)).name == COL1 + (3,)
    assert TABLE.next((1, 3, 6, 1, 4, 1, 9)).name == COL1 + (1,)
    assert TABLE.next(()).name == COL1 + (1,)


def test_next_honours_the_range_end_and_ends_with_end_of_mib_view() -> None:
    assert TABLE.next(COL1 + (1,), end=COL1 + (3,)) == p.VarBind(COL1 + (1,), T.END_OF_MIB_VIEW)
    assert TABLE.next(COL1 + (1,), end=COL1 + (3, 0)).name == COL1 + (3,)
    assert TABLE.next(SCALAR + (0,)) == p.VarBind(SCALAR + (0,), T.END_OF_MIB_VIEW)


def test_get_answer_keeps_ids_byte_order_and_order_of_ranges() -> None:
    request = p.Get(session_id=4, transaction_id=5, packet_id=6, big_endian=False, ranges=(
        p.SearchRange(SCALAR + (0,)), p.SearchRange(COL1 + (2,)), p.SearchRange((1, 2))))
    response = answer(request, TABLE, 77)
    assert response is not None
    assert (response.session_id, response.transaction_id, response.packet_id,
            response.big_endian, response.sys_uptime) == (4, 5, 6, False, 77)
    assert [vb.type for vb in response.varbinds] == [
        T.GAUGE32, T.NO_SUCH_INSTANCE, T.NO_SUCH_OBJECT]


def test_getnext_answer_per_range() -> None:
    request = p.GetNext(ranges=(
        p.SearchRange(COL1, COL2), p.SearchRange(COL2 + (3,), SCALAR), p.SearchRange(COL2)))
    response = answer(request, TABLE, 0)
    assert response is not None
    assert [(vb.name, vb.type) for vb in response.varbinds] == [
        (COL1 + (1,), T.INTEGER),
        (COL2 + (3,), T.END_OF_MIB_VIEW),
        (COL2 + (1,), T.OCTET_STRING),
    ]


def test_getbulk_non_repeaters_then_repetitions_in_rfc_order() -> None:
    request = p.GetBulk(non_repeaters=1, max_repetitions=3, ranges=(
        p.SearchRange(SCALAR), p.SearchRange(COL1), p.SearchRange(COL2)))
    response = answer(request, TABLE, 0)
    assert response is not None
    assert [vb.name for vb in response.varbinds] == [
        SCALAR + (0,),
        COL1 + (1,), COL2 + (1,),
        COL1 + (3,), COL2 + (3,),
        COL2 + (1,), SCALAR + (0,),
    ]


def test_getbulk_stops_when_every_repeater_has_ended() -> None:
    request = p.GetBulk(max_repetitions=50, ranges=(p.SearchRange(COL2 + (1,)),))
    response = answer(request, TABLE, 0)
    assert response is not None
    assert [vb.type for vb in response.varbinds] == [
        T.OCTET_STRING, T.GAUGE32, T.END_OF_MIB_VIEW]


def test_getbulk_answer_is_bounded() -> None:
    big = OidTable([((1, 3, i), T.INTEGER, i) for i in range(5000)])
    response = answer(p.GetBulk(max_repetitions=65535, ranges=(p.SearchRange((1, 3)),)), big, 0)
    assert response is not None
    assert len(response.varbinds) == MAX_BULK_VARBINDS


def test_writes_are_refused_read_only() -> None:
    test = answer(p.TestSet(varbinds=(p.VarBind(SCALAR + (0,), T.GAUGE32, 1),)), TABLE, 0)
    assert test is not None and (test.error, test.index) == (ErrorCode.NOT_WRITABLE, 1)
    commit = answer(p.CommitSet(), TABLE, 0)
    assert commit is not None and commit.error == ErrorCode.COMMIT_FAILED
    undo = answer(p.UndoSet(), TABLE, 0)
    assert undo is not None and undo.error == ErrorCode.NO_AGENTX_ERROR
    assert answer(p.CleanupSet(), TABLE, 0) is None


def test_a_non_default_context_sees_an_empty_view() -> None:
    response = answer(p.Get(context=b"other", ranges=(p.SearchRange(SCALAR + (0,)),)), TABLE, 0)
    assert response is not None and response.varbinds[0].type is T.NO_SUCH_OBJECT


def test_pdus_only_a_subagent_sends_get_processing_error() -> None:
    response = answer(p.Register(subtree=(1, 3)), TABLE, 0)
    assert response is not None and response.error == ErrorCode.PROCESSING_ERROR


def test_served_store_swaps_whole_tables() -> None:
    store = ServedStore()
    assert len(store.table) == 0
    old = store.swap(TABLE)
    assert len(old) == 0 and store.table is TABLE
