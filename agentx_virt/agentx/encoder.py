"""AgentX encoding, sans-IO: ``encode(pdu)`` returns the bytes of one PDU (RFC 2741 §5, §6).

``EncodeError`` when asked to send something that has no encoding (a value out of
its type's range, an OID longer than 128 sub-identifiers): the caller's fault.
"""

from __future__ import annotations

import struct

from agentx_virt.agentx import pdu as p
from agentx_virt.agentx.constants import AGENTX_VERSION, ValueType
from agentx_virt.agentx.errors import EncodeError
from agentx_virt.agentx.wire import (
    ANY_INDEX,
    INSTANCE_REGISTRATION,
    INTERNET,
    NETWORK_BYTE_ORDER,
    NEW_INDEX,
    NON_DEFAULT_CONTEXT,
    OID_HEAD,
    ByteOrder,
    byte_order,
)
from agentx_virt.oid import MAX_OID_LENGTH, OID


def encode_oid(order: ByteOrder, oid: OID, include: bool = False) -> bytes:
    """Encode an OID, using the 1.3.6.1.X prefix compression when it applies."""
    if len(oid) >= 5 and oid[:4] == INTERNET and 0 < oid[4] <= 255:
        prefix, subids = oid[4], oid[5:]
    else:
        prefix, subids = 0, oid
    count = len(subids)
    if count > MAX_OID_LENGTH:
        raise EncodeError(f"OID has {count} sub-identifiers, more than {MAX_OID_LENGTH}")
    try:
        return OID_HEAD.pack(count, prefix, 1 if include else 0, 0) + order.subids(count).pack(
            *subids
        )
    except struct.error:
        raise EncodeError(f"OID sub-identifier outside 0..4294967295 in {oid!r}") from None


def encode_octets(order: ByteOrder, data: bytes | bytearray) -> bytes:
    """Encode an octet string: 4-byte length, the octets, zero padding to a multiple of 4."""
    if not isinstance(data, (bytes, bytearray)):
        raise EncodeError(f"octet string must be bytes, got {type(data).__name__}")
    pad = -len(data) % 4
    return order.u32.pack(len(data)) + bytes(data) + b"\0" * pad


def _encode_int(order: ByteOrder, kind: ValueType, value: object) -> bytes:
    if not isinstance(value, int):
        raise EncodeError(f"{kind.name} value must be an int, got {type(value).__name__}")
    try:
        if kind is ValueType.INTEGER:
            return order.i32.pack(value)
        if kind is ValueType.COUNTER64:
            return order.u64.pack(value)
        return order.u32.pack(value)
    except struct.error:
        raise EncodeError(f"{kind.name} value {value} is out of range") from None


def encode_value(order: ByteOrder, kind: ValueType, value: object) -> bytes:
    """Encode the data part of a VarBind of type ``kind``."""
    if kind in (ValueType.INTEGER, ValueType.COUNTER32, ValueType.GAUGE32,
                ValueType.TIME_TICKS, ValueType.COUNTER64):
        return _encode_int(order, kind, value)
    if kind in (ValueType.OCTET_STRING, ValueType.OPAQUE):
        return encode_octets(order, value)  # type: ignore[arg-type]
    if kind is ValueType.IP_ADDRESS:
        if not isinstance(value, (bytes, bytearray)) or len(value) != 4:
            raise EncodeError(f"IpAddress must be 4 octets, got {value!r}")
        return encode_octets(order, value)
    if kind is ValueType.OBJECT_IDENTIFIER:
        if not isinstance(value, tuple):
            raise EncodeError(f"OBJECT IDENTIFIER value must be a tuple, got {value!r}")
        return encode_oid(order, value)
    if kind in (ValueType.NULL, ValueType.NO_SUCH_OBJECT, ValueType.NO_SUCH_INSTANCE,
                ValueType.END_OF_MIB_VIEW):
        return b""
    raise EncodeError(f"unknown value type {kind!r}")


def encode_varbind(order: ByteOrder, vb: p.VarBind) -> bytes:
    return order.vb_head.pack(vb.type, 0) + encode_oid(order, vb.name) + encode_value(
        order, vb.type, vb.value
    )


def encode_varbinds(order: ByteOrder, varbinds: tuple[p.VarBind, ...]) -> bytes:
    parts = []
    for position, vb in enumerate(varbinds, 1):
        try:
            parts.append(encode_varbind(order, vb))
        except EncodeError as exc:
            raise EncodeError(f"VarBind {position} ({vb.name!r}): {exc}", position) from None
        except ValueError:
            raise EncodeError(f"VarBind {position} has unknown type {vb.type!r}",
                              position) from None
    return b"".join(parts)


def _encode_ranges(order: ByteOrder, ranges: tuple[p.SearchRange, ...]) -> bytes:
    return b"".join(
        encode_oid(order, r.start, r.include) + encode_oid(order, r.end) for r in ranges
    )


def _range_registration(order: ByteOrder, pdu: p.Register | p.Unregister) -> bytes:
    if (pdu.range_subid == 0) != (pdu.upper_bound is None):
        raise EncodeError("range_subid and upper_bound must be given together")
    if pdu.upper_bound is None:
        return b""
    return order.u32.pack(pdu.upper_bound)


def _payload(order: ByteOrder, pdu: p.PDU) -> bytes:
    if isinstance(pdu, p.Response):
        return order.response_head.pack(pdu.sys_uptime, pdu.error, pdu.index) + encode_varbinds(
            order, pdu.varbinds
        )
    if isinstance(pdu, (p.Get, p.GetNext)):
        return _encode_ranges(order, pdu.ranges)
    if isinstance(pdu, p.GetBulk):
        return order.u16x2.pack(pdu.non_repeaters, pdu.max_repetitions) + _encode_ranges(
            order, pdu.ranges
        )
    if isinstance(pdu, (p.TestSet, p.Notify, p.IndexAllocate, p.IndexDeallocate)):
        return encode_varbinds(order, pdu.varbinds)
    if isinstance(pdu, p.Open):
        return (
            bytes((pdu.timeout, 0, 0, 0))
            + encode_oid(order, pdu.id)
            + encode_octets(order, pdu.description)
        )
    if isinstance(pdu, p.Close):
        return bytes((pdu.reason, 0, 0, 0))
    if isinstance(pdu, p.Register):
        return (
            bytes((pdu.timeout, pdu.priority, pdu.range_subid, 0))
            + encode_oid(order, pdu.subtree)
            + _range_registration(order, pdu)
        )
    if isinstance(pdu, p.Unregister):
        return (
            bytes((0, pdu.priority, pdu.range_subid, 0))
            + encode_oid(order, pdu.subtree)
            + _range_registration(order, pdu)
        )
    if isinstance(pdu, p.AddAgentCaps):
        return encode_oid(order, pdu.id) + encode_octets(order, pdu.description)
    if isinstance(pdu, p.RemoveAgentCaps):
        return encode_oid(order, pdu.id)
    if isinstance(pdu, (p.Ping, p.CommitSet, p.UndoSet, p.CleanupSet)):
        return b""
    raise EncodeError(f"cannot encode {type(pdu).__name__}")


def _flags(pdu: p.PDU) -> int:
    flags = NETWORK_BYTE_ORDER if pdu.big_endian else 0
    if isinstance(pdu, p.ContextPDU) and pdu.context is not None:
        flags |= NON_DEFAULT_CONTEXT
    if isinstance(pdu, p.Register) and pdu.instance_registration:
        flags |= INSTANCE_REGISTRATION
    if isinstance(pdu, (p.IndexAllocate, p.IndexDeallocate)):
        if pdu.new_index:
            flags |= NEW_INDEX
        if pdu.any_index:
            flags |= ANY_INDEX
    return flags


def encode(pdu: p.PDU) -> bytes:
    """Encode one PDU, header included, in the byte order ``pdu.big_endian`` names.

    Raises:
        EncodeError: a field or value has no valid encoding (``varbind_index``
            says which VarBind, when one is to blame).
    """
    order = byte_order(pdu.big_endian)
    try:
        body = _payload(order, pdu)
        if isinstance(pdu, p.ContextPDU) and pdu.context is not None:
            body = encode_octets(order, pdu.context) + body
        header = order.header.pack(
            AGENTX_VERSION, pdu.type, _flags(pdu), 0,
            pdu.session_id, pdu.transaction_id, pdu.packet_id, len(body),
        )
    except struct.error as exc:
        raise EncodeError(f"{type(pdu).__name__}: header or field out of range: {exc}") from None
    except (ValueError, TypeError) as exc:
        raise EncodeError(f"{type(pdu).__name__}: {exc}") from None
    return header + body
