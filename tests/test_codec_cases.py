"""One table of (PDU, bytes), written by hand from RFC 2741 §5 and §6, checked both ways.

Every case is decoded whole, fed one byte at a time, and fed with the start of
another PDU behind it; and every case is encoded back to the same bytes.
Hex is grouped by 32-bit words; header = version, type, flags, reserved,
sessionID, transactionID, packetID, payload_length.
"""

from __future__ import annotations

import pytest

from agentx_virt.agentx import pdu as p
from agentx_virt.agentx.constants import CloseReason
from agentx_virt.agentx.constants import ValueType as T
from agentx_virt.agentx.decoder import Decoder, decode
from agentx_virt.agentx.encoder import encode

H = bytes.fromhex

# Names used by several cases, encoded by hand (n_subid, prefix, include, reserved, subids).
# 1.3.6.1.4.1.1.1 is 1.3.6.1.4 (prefix 4) followed by 1.1.1 (n_subid 3).
NAME_A = (1, 3, 6, 1, 4, 1, 1, 1)
NAME_A_LE = "03040000 01000000 01000000 01000000"
NAME_A_BE = "03040000 00000001 00000001 00000001"
TRAP_OID_0 = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
TRAP_OID_0_BE = "06060000 00000003 00000001 00000001 00000004 00000001 00000000"
MODULE = (1, 3, 6, 1, 4, 1, 36957, 3)
MODULE_BE = "03040000 00000001 0000905d 00000003"
MODULE_LE = "03040000 01000000 5d900000 03000000"

CASES: list[tuple[str, p.PDU, bytes]] = [
    (
        "open, network byte order, prefix-compressed id, padded description",
        p.Open(packet_id=1, timeout=5, id=MODULE, description=b"agentx-virt"),
        H("01011000 00000000 00000000 00000001 00000024"
          "05000000" + MODULE_BE + "0000000b 6167656e 74782d76 69727400"),
    ),
    (
        "open, little-endian",
        p.Open(packet_id=1, timeout=5, id=MODULE, description=b"agentx-virt",
               big_endian=False),
        H("01010000 00000000 00000000 01000000 24000000"
          "05000000" + MODULE_LE + "0b000000 6167656e 74782d76 69727400"),
    ),
    (
        "close, little-endian, reason shutdown",
        p.Close(session_id=3, packet_id=9, reason=CloseReason.SHUTDOWN, big_endian=False),
        H("01020000 03000000 00000000 09000000 04000000 05000000"),
    ),
    (
        "register with range_subid and upper_bound, instance registration",
        p.Register(session_id=5, packet_id=2, priority=127, range_subid=5,
                   subtree=(1, 3, 6, 1, 2, 1, 2, 2, 1, 1), upper_bound=22,
                   instance_registration=True),
        H("01031100 00000005 00000000 00000002 00000020"
          "007f0500 05020000 00000001 00000002 00000002 00000001 00000001 00000016"),
    ),
    (
        "register without range, non-default context",
        p.Register(session_id=5, packet_id=3, timeout=10, priority=100, subtree=MODULE,
                   context=b"vm"),
        H("01031800 00000005 00000000 00000003 0000001c"
          "00000002 766d0000 0a640000" + MODULE_BE),
    ),
    (
        "unregister",
        p.Unregister(session_id=5, packet_id=4, subtree=MODULE),
        H("01041000 00000005 00000000 00000004 00000014 007f0000" + MODULE_BE),
    ),
    (
        "get, OIDs prefix compression cannot apply to",
        p.Get(session_id=1, transaction_id=2, packet_id=3, ranges=(
            p.SearchRange((1, 3, 6, 1, 256, 1)),   # fifth sub-identifier above 255
            p.SearchRange((1, 3, 6, 1, 0, 5)),     # fifth sub-identifier 0
            p.SearchRange((1, 3, 6, 2, 1)),        # not under internet
        )),
        H("01051000 00000001 00000002 00000003 0000005c"
          "06000000 00000001 00000003 00000006 00000001 00000100 00000001 00000000"
          "06000000 00000001 00000003 00000006 00000001 00000000 00000005 00000000"
          "05000000 00000001 00000003 00000006 00000002 00000001 00000000"),
    ),
    (
        "getnext in a non-default context, include flag and range end",
        p.GetNext(session_id=7, transaction_id=9, packet_id=11, context=b"ctx", ranges=(
            p.SearchRange((1, 3, 6, 1, 2, 1, 1), (1, 3, 6, 1, 2, 1, 2), include=True),
            p.SearchRange((1, 2, 3)),
        )),
        H("01061800 00000007 00000009 0000000b 00000034"
          "00000003 63747800"
          "02020100 00000001 00000001"
          "02020000 00000001 00000002"
          "03000000 00000001 00000002 00000003"
          "00000000"),
    ),
    (
        "getbulk, one non-repeater",
        p.GetBulk(session_id=1, transaction_id=2, packet_id=3, non_repeaters=1,
                  max_repetitions=10, ranges=(
                      p.SearchRange((1, 3, 6, 1, 2, 1, 1, 3)),
                      p.SearchRange((1, 3, 6, 1, 2, 1, 2, 2, 1, 2)),
                  )),
        H("01071000 00000001 00000002 00000003 00000034"
          "0001000a"
          "03020000 00000001 00000001 00000003 00000000"
          "05020000 00000001 00000002 00000002 00000001 00000002 00000000"),
    ),
    (
        "testset, little-endian",
        p.TestSet(session_id=1, transaction_id=4, packet_id=5, big_endian=False,
                  varbinds=(p.VarBind(NAME_A, T.INTEGER, 5),)),
        H("01080000 01000000 04000000 05000000 18000000"
          "02000000" + NAME_A_LE + "05000000"),
    ),
    ("commitset", p.CommitSet(session_id=1, transaction_id=4, packet_id=6),
     H("01091000 00000001 00000004 00000006 00000000")),
    ("undoset", p.UndoSet(session_id=1, transaction_id=4, packet_id=7),
     H("010a1000 00000001 00000004 00000007 00000000")),
    ("cleanupset", p.CleanupSet(session_id=1, transaction_id=4, packet_id=8),
     H("010b1000 00000001 00000004 00000008 00000000")),
    (
        "notify: snmpTrapOID.0 first, then a negative Integer32 at its minimum",
        p.Notify(session_id=2, packet_id=40, varbinds=(
            p.VarBind(TRAP_OID_0, T.OBJECT_IDENTIFIER, MODULE + (0, 1)),
            p.VarBind(MODULE + (1, 1), T.INTEGER, -2147483648),
        )),
        H("010c1000 00000002 00000000 00000028 00000058"
          "00060000" + TRAP_OID_0_BE +
          "05040000 00000001 0000905d 00000003 00000000 00000001"
          "00020000 05040000 00000001 0000905d 00000003 00000001 00000001"
          "80000000"),
    ),
    (
        "ping with an empty non-default context",
        p.Ping(session_id=2, packet_id=41, context=b""),
        H("010d1800 00000002 00000000 00000029 00000004 00000000"),
    ),
    (
        "indexallocate with NEW_INDEX",
        p.IndexAllocate(session_id=2, packet_id=42, new_index=True,
                        varbinds=(p.VarBind(NAME_A, T.INTEGER, 0),)),
        H("010e1200 00000002 00000000 0000002a 00000018"
          "00020000" + NAME_A_BE + "00000000"),
    ),
    (
        "indexdeallocate with ANY_INDEX",
        p.IndexDeallocate(session_id=2, packet_id=43, any_index=True,
                          varbinds=(p.VarBind(NAME_A, T.INTEGER, 7),)),
        H("010f1400 00000002 00000000 0000002b 00000018"
          "00020000" + NAME_A_BE + "00000007"),
    ),
    (
        "addagentcaps, description a whole word long (no padding)",
        p.AddAgentCaps(session_id=2, packet_id=44, id=MODULE, description=b"caps"),
        H("01101000 00000002 00000000 0000002c 00000018" + MODULE_BE + "00000004 63617073"),
    ),
    (
        "removeagentcaps, little-endian",
        p.RemoveAgentCaps(session_id=2, packet_id=45, id=MODULE, big_endian=False),
        H("01110000 02000000 00000000 2d000000 10000000" + MODULE_LE),
    ),
    (
        "response with an error and no varbinds (duplicateRegistration, index 1)",
        p.Response(session_id=5, packet_id=3, error=263, index=1),
        H("01121000 00000005 00000000 00000003 00000008 00000000 01070001"),
    ),
    (
        "response, little-endian, every value type",
        p.Response(session_id=9, transaction_id=8, packet_id=7, sys_uptime=100,
                   big_endian=False, varbinds=(
                       p.VarBind(NAME_A, T.INTEGER, -1),
                       p.VarBind(NAME_A, T.OCTET_STRING, b""),
                       p.VarBind(NAME_A, T.OCTET_STRING, b"abcde"),
                       p.VarBind(NAME_A, T.COUNTER64, 0x0102030405060708),
                       p.VarBind(NAME_A, T.IP_ADDRESS, bytes((10, 0, 0, 1))),
                       p.VarBind(NAME_A, T.OPAQUE, b"\x9f\x78\x04"),
                       p.VarBind(NAME_A, T.OBJECT_IDENTIFIER, (1, 3, 6, 1, 6, 3, 1, 1, 5, 1)),
                       p.VarBind(NAME_A, T.COUNTER32, 4294967295),
                       p.VarBind(NAME_A, T.GAUGE32, 7),
                       p.VarBind(NAME_A, T.TIME_TICKS, 360000),
                       p.VarBind(NAME_A, T.NULL),
                       p.VarBind(NAME_A, T.NO_SUCH_OBJECT),
                       p.VarBind(NAME_A, T.NO_SUCH_INSTANCE),
                       p.VarBind(NAME_A, T.END_OF_MIB_VIEW),
                   )),
        H("01120000 09000000 08000000 07000000 70010000"
          "64000000 00000000"
          "02000000" + NAME_A_LE + "ffffffff"
          "04000000" + NAME_A_LE + "00000000"
          "04000000" + NAME_A_LE + "05000000 61626364 65000000"
          "46000000" + NAME_A_LE + "08070605 04030201"
          "40000000" + NAME_A_LE + "04000000 0a000001"
          "44000000" + NAME_A_LE + "03000000 9f780400"
          "06000000" + NAME_A_LE + "05060000 03000000 01000000 01000000 05000000 01000000"
          "41000000" + NAME_A_LE + "ffffffff"
          "42000000" + NAME_A_LE + "07000000"
          "43000000" + NAME_A_LE + "407e0500"
          "05000000" + NAME_A_LE +
          "80000000" + NAME_A_LE +
          "81000000" + NAME_A_LE +
          "82000000" + NAME_A_LE),
    ),
]

IDS = [case[0] for case in CASES]


@pytest.mark.parametrize("name, pdu, wire", CASES, ids=IDS)
def test_encode_gives_the_hand_written_bytes(name: str, pdu: p.PDU, wire: bytes) -> None:
    assert encode(pdu).hex(" ", 4) == wire.hex(" ", 4)


@pytest.mark.parametrize("name, pdu, wire", CASES, ids=IDS)
def test_decode_whole(name: str, pdu: p.PDU, wire: bytes) -> None:
    assert decode(wire) == pdu
    decoder = Decoder()
    decoder.feed(wire)
    assert decoder.next_pdu() == pdu
    assert decoder.next_pdu() is None
    assert decoder.pending == 0


@pytest.mark.parametrize("name, pdu, wire", CASES, ids=IDS)
def test_decode_byte_by_byte(name: str, pdu: p.PDU, wire: bytes) -> None:
    decoder = Decoder()
    for byte in wire[:-1]:
        decoder.feed(bytes([byte]))
        assert decoder.next_pdu() is None
    decoder.feed(wire[-1:])
    assert decoder.next_pdu() == pdu


@pytest.mark.parametrize("name, pdu, wire", CASES, ids=IDS)
def test_decode_with_trailing_bytes(name: str, pdu: p.PDU, wire: bytes) -> None:
    decoder = Decoder()
    decoder.feed(wire + CASES[0][2][:7])
    assert decoder.next_pdu() == pdu
    assert decoder.next_pdu() is None
    assert decoder.pending == 7


def test_all_cases_in_one_read_and_in_odd_chunks() -> None:
    stream = b"".join(wire for _, _, wire in CASES)
    expected = [pdu for _, pdu, _ in CASES]
    for chunk in (len(stream), 3, 7, 64):
        decoder = Decoder()
        got: list[p.PDU] = []
        for start in range(0, len(stream), chunk):
            decoder.feed(stream[start:start + chunk])
            while (pdu := decoder.next_pdu()) is not None:
                got.append(pdu)
        assert got == expected


def test_every_pdu_type_is_in_the_table() -> None:
    assert {type(pdu) for _, pdu, _ in CASES} == set(p.PDU_CLASSES.values())


def test_decoder_accepts_an_uncompressed_internet_oid() -> None:
    # A master may spell 1.3.6.1.2.1.1 out in full (prefix 0); it is the same OID.
    wire = H("01061000 00000001 00000002 00000003 00000024"
             "07000100 00000001 00000003 00000006 00000001 00000002 00000001 00000001"
             "00000000")
    pdu = decode(wire)
    assert pdu == p.GetNext(session_id=1, transaction_id=2, packet_id=3,
                            ranges=(p.SearchRange((1, 3, 6, 1, 2, 1, 1), include=True),))
