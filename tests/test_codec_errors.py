"""Bad bytes in, bad values out: the codec raises only its own errors, and says why."""

from __future__ import annotations

from typing import Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentx_virt.agentx import pdu as p
from agentx_virt.agentx.constants import ValueType as T
from agentx_virt.agentx.decoder import Decoder, decode
from agentx_virt.agentx.encoder import encode
from agentx_virt.agentx.errors import EncodeError, FramingError, MalformedPDU, ProtocolError

H = bytes.fromhex
GETNEXT_HEAD = "01061000 00000001 00000002 00000003"


def test_wrong_version_is_a_framing_error() -> None:
    with pytest.raises(FramingError, match="version 2"):
        decode(H("02061000 00000001 00000002 00000003 00000000"))


def test_payload_length_not_a_multiple_of_four_is_a_framing_error() -> None:
    decoder = Decoder()
    decoder.feed(H(GETNEXT_HEAD + "00000006"))
    with pytest.raises(FramingError, match="multiple of 4"):
        decoder.next_pdu()


def test_huge_payload_length_is_refused_before_buffering() -> None:
    decoder = Decoder()
    decoder.feed(H(GETNEXT_HEAD + "7ffffffc"))
    with pytest.raises(FramingError, match="exceeds"):
        decoder.next_pdu()


def malformed(wire: bytes) -> MalformedPDU:
    with pytest.raises(MalformedPDU) as caught:
        decode(wire)
    return caught.value


def test_unknown_pdu_type_keeps_the_ids_for_a_parse_error_answer() -> None:
    error = malformed(H("01631000 00000001 00000002 00000003 00000000"))
    assert (error.pdu_type, error.session_id, error.transaction_id, error.packet_id) == (
        99, 1, 2, 3)
    assert error.big_endian


def test_octet_string_longer_than_the_payload() -> None:
    error = malformed(H("010d1800 00000001 00000002 00000003 00000004 000000ff"))
    assert "octet string claims 255 bytes" in str(error)


def test_oid_with_too_many_subids() -> None:
    error = malformed(H(GETNEXT_HEAD + "00000004 81000000"))
    assert "129 sub-identifiers" in str(error)


def test_truncated_oid() -> None:
    error = malformed(H(GETNEXT_HEAD + "00000008 03000000 00000001"))
    assert "ends" in str(error)


def test_unknown_varbind_type() -> None:
    error = malformed(H("01121000 00000001 00000002 00000003 00000010"
                        "00000000 00000000 00090000 00000000"))
    assert "unknown VarBind type 9" in str(error)


def test_ip_address_of_the_wrong_length() -> None:
    error = malformed(H("01121000 00000001 00000002 00000003 00000018"
                        "00000000 00000000 00400000 00000000 00000003 0a000100"))
    assert "IpAddress of 3 octets" in str(error)


def test_context_flag_on_a_pdu_without_context() -> None:
    error = malformed(H("01121800 00000001 00000002 00000003 00000008 00000000 00000000"))
    assert "context" in str(error)


def test_a_malformed_pdu_does_not_desynchronise_the_stream() -> None:
    bad = H("01631000 00000001 00000002 00000003 00000004 00000000")
    good = encode(p.Ping(session_id=1, packet_id=4))
    decoder = Decoder()
    decoder.feed(bad + good)
    with pytest.raises(MalformedPDU):
        decoder.next_pdu()
    assert decoder.next_pdu() == p.Ping(session_id=1, packet_id=4)


@pytest.mark.parametrize("kind, value, why", [
    (T.INTEGER, 2**31, "out of range"),
    (T.INTEGER, -(2**31) - 1, "out of range"),
    (T.COUNTER32, -1, "out of range"),
    (T.GAUGE32, 2**32, "out of range"),
    (T.COUNTER64, 2**64, "out of range"),
    (T.COUNTER64, "12", "must be an int"),
    (T.OCTET_STRING, "text", "must be bytes"),
    (T.IP_ADDRESS, b"\x7f\0\0", "4 octets"),
    (T.OBJECT_IDENTIFIER, (1, 2**32), "outside"),
    (T.OBJECT_IDENTIFIER, "1.3.6", "must be a tuple"),
])
def test_unencodable_values_name_the_varbind(kind: T, value: object, why: str) -> None:
    good = p.VarBind((1, 3, 6, 1, 4, 1, 1), T.INTEGER, 1)
    bad = p.VarBind((1, 3, 6, 1, 4, 1, 2), kind, value)  # type: ignore[arg-type]
    with pytest.raises(EncodeError, match=why) as caught:
        encode(p.Response(varbinds=(good, bad)))
    assert caught.value.varbind_index == 2


def test_unencodable_header_field() -> None:
    with pytest.raises(EncodeError):
        encode(p.Ping(packet_id=2**32))


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_protocol_errors(data: bytes) -> None:
    decoder = Decoder()
    decoder.feed(data)
    for _ in range(len(data) // 20 + 1):
        try:
            pdu: Optional[p.PDU] = decoder.next_pdu()
        except MalformedPDU:
            continue
        except FramingError:
            return
        if pdu is None:
            return


@settings(max_examples=2000, deadline=None)
@given(st.binary(min_size=0, max_size=160), st.sampled_from(range(1, 19)),
       st.sampled_from([0x00, 0x10, 0x08, 0x18, 0x1f]))
def test_valid_headers_with_arbitrary_payloads_raise_only_protocol_errors(
        payload: bytes, pdu_type: int, flags: int) -> None:
    payload = payload[: len(payload) // 4 * 4]
    big = bool(flags & 0x10)
    length = len(payload).to_bytes(4, "big" if big else "little")
    header = bytes([1, pdu_type, flags, 0]) + b"\0" * 12 + length
    try:
        decode(header + payload)
    except ProtocolError:
        pass


oids = st.lists(st.integers(0, 2**32 - 1), max_size=20).map(tuple)
values = st.one_of(
    st.tuples(st.just(T.INTEGER), st.integers(-(2**31), 2**31 - 1)),
    st.tuples(st.sampled_from([T.COUNTER32, T.GAUGE32, T.TIME_TICKS]),
              st.integers(0, 2**32 - 1)),
    st.tuples(st.just(T.COUNTER64), st.integers(0, 2**64 - 1)),
    st.tuples(st.sampled_from([T.OCTET_STRING, T.OPAQUE]), st.binary(max_size=40)),
    st.tuples(st.just(T.IP_ADDRESS), st.binary(min_size=4, max_size=4)),
    st.tuples(st.just(T.OBJECT_IDENTIFIER), oids),
    st.tuples(st.sampled_from([T.NULL, T.NO_SUCH_OBJECT, T.NO_SUCH_INSTANCE,
                               T.END_OF_MIB_VIEW]), st.none()),
)
varbinds = st.lists(st.builds(lambda name, tv: p.VarBind(name, tv[0], tv[1]), oids, values),
                    max_size=8).map(tuple)
ids = st.integers(0, 2**32 - 1)
contexts = st.one_of(st.none(), st.binary(max_size=12))


@settings(max_examples=500, deadline=None)
@given(st.one_of(
    st.builds(p.Response, session_id=ids, transaction_id=ids, packet_id=ids,
              big_endian=st.booleans(), sys_uptime=ids, error=st.integers(0, 0xFFFF),
              index=st.integers(0, 0xFFFF), varbinds=varbinds),
    st.builds(p.Notify, session_id=ids, packet_id=ids, big_endian=st.booleans(),
              context=contexts, varbinds=varbinds),
    st.builds(p.GetNext, session_id=ids, packet_id=ids, big_endian=st.booleans(),
              context=contexts, ranges=st.lists(
                  st.builds(p.SearchRange, oids, oids, st.booleans()), max_size=5).map(tuple)),
))
def test_round_trip(pdu: p.PDU) -> None:
    assert decode(encode(pdu)) == pdu
