"""Sans-IO AgentX codec: PDU objects to bytes and back (RFC 2741 §5, §6).

Nothing here touches a socket.  ``encode(pdu)`` returns the bytes of one PDU;
``Decoder.feed(data)`` takes bytes as they arrive and ``Decoder.next_pdu()``
returns each whole PDU in turn, or ``None`` until enough bytes are there.
Framing uses the header's payload length only, so a PDU split over many reads
and several PDUs in one read decode the same.

Errors: ``FramingError`` when the header itself is unusable (the stream cannot
be resynchronised), ``MalformedPDU`` when one framed PDU has a bad payload (the
caller may answer it with parseError and go on), ``EncodeError`` when we are
asked to send something that has no encoding.
"""

from __future__ import annotations

import struct
from typing import Callable, Optional, TypedDict

from agentx_virt.agentx import pdu as p
from agentx_virt.agentx.constants import (
    AGENTX_VERSION,
    CONTEXT_PDU_TYPES,
    HEADER_SIZE,
    Flag,
    PDUType,
    ValueType,
)
from agentx_virt.agentx.errors import EncodeError, FramingError, MalformedPDU
from agentx_virt.oid import MAX_OID_LENGTH, OID

# Larger PDUs are refused as framing errors rather than buffered without bound.
MAX_PAYLOAD = 1 << 20

_INTERNET = (1, 3, 6, 1)


class _Order:
    """Precompiled structs for one byte order."""

    def __init__(self, mark: str) -> None:
        self.header = struct.Struct(mark + "BBBBIIII")
        self.u32 = struct.Struct(mark + "I")
        self.i32 = struct.Struct(mark + "i")
        self.u64 = struct.Struct(mark + "Q")
        self.u16x2 = struct.Struct(mark + "HH")
        self.vb_head = struct.Struct(mark + "HH")
        self.response_head = struct.Struct(mark + "IHH")
        self.mark = mark
        self._subids: dict[int, struct.Struct] = {}

    def subids(self, count: int) -> struct.Struct:
        cached = self._subids.get(count)
        if cached is None:
            cached = self._subids[count] = struct.Struct(f"{self.mark}{count}I")
        return cached


# Plain ints: IntFlag arithmetic costs microseconds per PDU on the hot path.
_NETWORK_BYTE_ORDER = int(Flag.NETWORK_BYTE_ORDER)
_NON_DEFAULT_CONTEXT = int(Flag.NON_DEFAULT_CONTEXT)
_INSTANCE_REGISTRATION = int(Flag.INSTANCE_REGISTRATION)
_NEW_INDEX = int(Flag.NEW_INDEX)
_ANY_INDEX = int(Flag.ANY_INDEX)

_BIG = _Order(">")
_LITTLE = _Order("<")
_OID_HEAD = struct.Struct("BBBB")


def _order(big_endian: bool) -> _Order:
    return _BIG if big_endian else _LITTLE


# ---------------------------------------------------------------- encoding


def encode_oid(order: _Order, oid: OID, include: bool = False) -> bytes:
    """Encode an OID, using the 1.3.6.1.X prefix compression when it applies."""
    if len(oid) >= 5 and oid[:4] == _INTERNET and 0 < oid[4] <= 255:
        prefix, subids = oid[4], oid[5:]
    else:
        prefix, subids = 0, oid
    count = len(subids)
    if count > MAX_OID_LENGTH:
        raise EncodeError(f"OID has {count} sub-identifiers, more than {MAX_OID_LENGTH}")
    try:
        return _OID_HEAD.pack(count, prefix, 1 if include else 0, 0) + order.subids(count).pack(
            *subids
        )
    except struct.error:
        raise EncodeError(f"OID sub-identifier outside 0..4294967295 in {oid!r}") from None


def encode_octets(order: _Order, data: bytes | bytearray) -> bytes:
    """Encode an octet string: 4-byte length, the octets, zero padding to a multiple of 4."""
    if not isinstance(data, (bytes, bytearray)):
        raise EncodeError(f"octet string must be bytes, got {type(data).__name__}")
    pad = -len(data) % 4
    return order.u32.pack(len(data)) + bytes(data) + b"\0" * pad


def _encode_int(order: _Order, kind: ValueType, value: object) -> bytes:
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


def encode_value(order: _Order, kind: ValueType, value: object) -> bytes:
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


def encode_varbind(order: _Order, vb: p.VarBind) -> bytes:
    return order.vb_head.pack(vb.type, 0) + encode_oid(order, vb.name) + encode_value(
        order, vb.type, vb.value
    )


def encode_varbinds(order: _Order, varbinds: tuple[p.VarBind, ...]) -> bytes:
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


def _encode_ranges(order: _Order, ranges: tuple[p.SearchRange, ...]) -> bytes:
    return b"".join(
        encode_oid(order, r.start, r.include) + encode_oid(order, r.end) for r in ranges
    )


def _range_registration(order: _Order, pdu: p.Register | p.Unregister) -> bytes:
    if (pdu.range_subid == 0) != (pdu.upper_bound is None):
        raise EncodeError("range_subid and upper_bound must be given together")
    if pdu.upper_bound is None:
        return b""
    return order.u32.pack(pdu.upper_bound)


def _payload(order: _Order, pdu: p.PDU) -> bytes:
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
    flags = _NETWORK_BYTE_ORDER if pdu.big_endian else 0
    if isinstance(pdu, p.ContextPDU) and pdu.context is not None:
        flags |= _NON_DEFAULT_CONTEXT
    if isinstance(pdu, p.Register) and pdu.instance_registration:
        flags |= _INSTANCE_REGISTRATION
    if isinstance(pdu, (p.IndexAllocate, p.IndexDeallocate)):
        if pdu.new_index:
            flags |= _NEW_INDEX
        if pdu.any_index:
            flags |= _ANY_INDEX
    return flags


def encode(pdu: p.PDU) -> bytes:
    """Encode one PDU, header included, in the byte order ``pdu.big_endian`` names.

    Raises:
        EncodeError: a field or value has no valid encoding (``varbind_index``
            says which VarBind, when one is to blame).
    """
    order = _order(pdu.big_endian)
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


# ---------------------------------------------------------------- decoding


class _Malformed(Exception):
    """Internal: raised by the payload reader, turned into MalformedPDU with header details."""


class _Reader:
    """Reads a payload from the front, checking every bound."""

    __slots__ = ("data", "order", "pos")

    def __init__(self, data: bytes, order: _Order) -> None:
        self.data = data
        self.pos = 0
        self.order = order

    def take(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            raise _Malformed(f"payload ends {end - len(self.data)} bytes early")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def u8x4(self) -> tuple[int, int, int, int]:
        a, b, c, d = self.take(4)
        return a, b, c, d

    def u32(self) -> int:
        value: int = self.order.u32.unpack(self.take(4))[0]
        return value

    def u16x2(self) -> tuple[int, int]:
        a, b = self.order.u16x2.unpack(self.take(4))
        return a, b

    def oid(self) -> tuple[OID, bool]:
        count, prefix, include, _ = self.u8x4()
        if count > MAX_OID_LENGTH:
            raise _Malformed(f"OID claims {count} sub-identifiers, more than {MAX_OID_LENGTH}")
        subids: OID = self.order.subids(count).unpack(self.take(4 * count))
        if prefix:
            subids = _INTERNET + (prefix,) + subids
        return subids, bool(include)

    def octets(self) -> bytes:
        size = self.u32()
        if size > len(self.data) - self.pos:
            raise _Malformed(f"octet string claims {size} bytes, payload has fewer")
        data = self.take(size)
        self.take(-size % 4)
        return data

    def value(self, kind: ValueType) -> p.Value:
        order = self.order
        if kind is ValueType.INTEGER:
            return int(order.i32.unpack(self.take(4))[0])
        if kind in (ValueType.COUNTER32, ValueType.GAUGE32, ValueType.TIME_TICKS):
            return self.u32()
        if kind is ValueType.COUNTER64:
            return int(order.u64.unpack(self.take(8))[0])
        if kind in (ValueType.OCTET_STRING, ValueType.OPAQUE):
            return self.octets()
        if kind is ValueType.IP_ADDRESS:
            address = self.octets()
            if len(address) != 4:
                raise _Malformed(f"IpAddress of {len(address)} octets")
            return address
        if kind is ValueType.OBJECT_IDENTIFIER:
            return self.oid()[0]
        return None

    def varbinds(self) -> tuple[p.VarBind, ...]:
        result: list[p.VarBind] = []
        while self.pos < len(self.data):
            raw_type, _ = self.order.vb_head.unpack(self.take(4))
            try:
                kind = ValueType(raw_type)
            except ValueError:
                raise _Malformed(f"unknown VarBind type {raw_type}") from None
            name = self.oid()[0]
            result.append(p.VarBind(name, kind, self.value(kind)))
        return tuple(result)

    def ranges(self) -> tuple[p.SearchRange, ...]:
        result: list[p.SearchRange] = []
        while self.pos < len(self.data):
            start, include = self.oid()
            end, _ = self.oid()
            result.append(p.SearchRange(start, end, include))
        return tuple(result)

    def upper_bound(self, range_subid: int) -> Optional[int]:
        return self.u32() if range_subid else None


class _Ids(TypedDict):
    """The header fields every decoded PDU carries."""

    session_id: int
    transaction_id: int
    packet_id: int
    big_endian: bool


_Read = Callable[[_Reader, _Ids, Optional[bytes], int], p.PDU]


def _read_open(r: _Reader, ids: _Ids, context: Optional[bytes], flags: int) -> p.PDU:
    timeout = r.u8x4()[0]
    ident, _ = r.oid()
    return p.Open(timeout=timeout, id=ident, description=r.octets(), **ids)


def _read_close(r: _Reader, ids: _Ids, context: Optional[bytes], flags: int) -> p.PDU:
    return p.Close(reason=r.u8x4()[0], **ids)


def _read_register(r: _Reader, ids: _Ids, context: Optional[bytes], flags: int) -> p.PDU:
    timeout, priority, range_subid, _ = r.u8x4()
    subtree, _ = r.oid()
    return p.Register(
        timeout=timeout, priority=priority, subtree=subtree, range_subid=range_subid,
        upper_bound=r.upper_bound(range_subid),
        instance_registration=bool(flags & _INSTANCE_REGISTRATION), context=context, **ids,
    )


def _read_unregister(r: _Reader, ids: _Ids, context: Optional[bytes], flags: int) -> p.PDU:
    _, priority, range_subid, _ = r.u8x4()
    subtree, _ = r.oid()
    return p.Unregister(
        priority=priority, subtree=subtree, range_subid=range_subid,
        upper_bound=r.upper_bound(range_subid), context=context, **ids,
    )


def _read_get(r: _Reader, ids: _Ids, context: Optional[bytes], flags: int) -> p.PDU:
    return p.Get(ranges=r.ranges(), context=context, **ids)


def _read_get_next(r: _Reader, ids: _Ids, context: Optional[bytes], flags: int) -> p.PDU:
    return p.GetNext(ranges=r.ranges(), context=context, **ids)


def _read_get_bulk(r: _Reader, ids: _Ids, context: Optional[bytes], flags: int) -> p.PDU:
    non_repeaters, max_repetitions = r.u16x2()
    return p.GetBulk(non_repeaters=non_repeaters, max_repetitions=max_repetitions,
                     ranges=r.ranges(), context=context, **ids)


def _read_test_set(r: _Reader, ids: _Ids, context: Optional[bytes], flags: int) -> p.PDU:
    return p.TestSet(varbinds=r.varbinds(), context=context, **ids)


def _read_notify(r: _Reader, ids: _Ids, context: Optional[bytes], flags: int) -> p.PDU:
    return p.Notify(varbinds=r.varbinds(), context=context, **ids)


def _read_index_allocate(r: _Reader, ids: _Ids, context: Optional[bytes], flags: int) -> p.PDU:
    return p.IndexAllocate(varbinds=r.varbinds(), new_index=bool(flags & _NEW_INDEX),
                           any_index=bool(flags & _ANY_INDEX), context=context, **ids)


def _read_index_deallocate(r: _Reader, ids: _Ids, context: Optional[bytes],
                           flags: int) -> p.PDU:
    return p.IndexDeallocate(varbinds=r.varbinds(), new_index=bool(flags & _NEW_INDEX),
                             any_index=bool(flags & _ANY_INDEX), context=context, **ids)


def _read_commit_set(r: _Reader, ids: _Ids, context: Optional[bytes], flags: int) -> p.PDU:
    return p.CommitSet(**ids)


def _read_undo_set(r: _Reader, ids: _Ids, context: Optional[bytes], flags: int) -> p.PDU:
    return p.UndoSet(**ids)


def _read_cleanup_set(r: _Reader, ids: _Ids, context: Optional[bytes], flags: int) -> p.PDU:
    return p.CleanupSet(**ids)


def _read_ping(r: _Reader, ids: _Ids, context: Optional[bytes], flags: int) -> p.PDU:
    return p.Ping(context=context, **ids)


def _read_add_caps(r: _Reader, ids: _Ids, context: Optional[bytes], flags: int) -> p.PDU:
    ident, _ = r.oid()
    return p.AddAgentCaps(id=ident, description=r.octets(), context=context, **ids)


def _read_remove_caps(r: _Reader, ids: _Ids, context: Optional[bytes], flags: int) -> p.PDU:
    return p.RemoveAgentCaps(id=r.oid()[0], context=context, **ids)


def _read_response(r: _Reader, ids: _Ids, context: Optional[bytes], flags: int) -> p.PDU:
    uptime, error, index = r.order.response_head.unpack(r.take(8))
    return p.Response(sys_uptime=uptime, error=error, index=index, varbinds=r.varbinds(), **ids)


_READERS: dict[int, _Read] = {
    PDUType.OPEN: _read_open,
    PDUType.CLOSE: _read_close,
    PDUType.REGISTER: _read_register,
    PDUType.UNREGISTER: _read_unregister,
    PDUType.GET: _read_get,
    PDUType.GET_NEXT: _read_get_next,
    PDUType.GET_BULK: _read_get_bulk,
    PDUType.TEST_SET: _read_test_set,
    PDUType.COMMIT_SET: _read_commit_set,
    PDUType.UNDO_SET: _read_undo_set,
    PDUType.CLEANUP_SET: _read_cleanup_set,
    PDUType.NOTIFY: _read_notify,
    PDUType.PING: _read_ping,
    PDUType.INDEX_ALLOCATE: _read_index_allocate,
    PDUType.INDEX_DEALLOCATE: _read_index_deallocate,
    PDUType.ADD_AGENT_CAPS: _read_add_caps,
    PDUType.REMOVE_AGENT_CAPS: _read_remove_caps,
    PDUType.RESPONSE: _read_response,
}


def _read_header(data: bytes | bytearray) -> tuple[_Order, int, int, int, int, int, int]:
    """Validate a 20-byte header; returns (order, type, flags, sid, tid, pid, payload length)."""
    order = _BIG if data[2] & _NETWORK_BYTE_ORDER else _LITTLE
    version, kind, flags, _, sid, tid, pid, length = order.header.unpack_from(data, 0)
    if version != AGENTX_VERSION:
        raise FramingError(f"AgentX version {version} in header, only version 1 exists")
    if length % 4:
        raise FramingError(f"payload length {length} is not a multiple of 4")
    if length > MAX_PAYLOAD:
        raise FramingError(f"payload length {length} exceeds the {MAX_PAYLOAD}-byte limit")
    return order, kind, flags, sid, tid, pid, length


def decode(frame: bytes) -> p.PDU:
    """Decode exactly one whole PDU (header and payload).

    Raises:
        FramingError: the header is unusable or the frame length disagrees with it.
        MalformedPDU: the payload cannot be decoded.
    """
    if len(frame) < HEADER_SIZE:
        raise FramingError(f"{len(frame)} bytes are too few for a 20-byte header")
    header = _read_header(frame)
    if len(frame) != HEADER_SIZE + header[6]:
        raise FramingError(
            f"frame has {len(frame) - HEADER_SIZE} payload bytes, header says {header[6]}"
        )
    return _decode_framed(frame, header)


def _decode_framed(frame: bytes, header: tuple[_Order, int, int, int, int, int, int]) -> p.PDU:
    order, kind, flags, sid, tid, pid, length = header
    big = order is _BIG

    def malformed(why: str) -> MalformedPDU:
        return MalformedPDU(
            f"malformed PDU (type {kind}, packetID {pid}): {why}",
            pdu_type=kind, session_id=sid, transaction_id=tid, packet_id=pid, big_endian=big,
        )

    read = _READERS.get(kind)
    if read is None:
        raise malformed(f"unknown PDU type {kind}")
    ids: _Ids = {"session_id": sid, "transaction_id": tid, "packet_id": pid, "big_endian": big}
    reader = _Reader(frame[HEADER_SIZE:], order)
    context: Optional[bytes] = None
    try:
        if flags & _NON_DEFAULT_CONTEXT:
            if kind not in CONTEXT_PDU_TYPES:
                raise _Malformed("non-default context flag on a PDU type that has no context")
            context = reader.octets()
        pdu = read(reader, ids, context, flags)
    except _Malformed as exc:
        raise malformed(str(exc)) from None
    if reader.pos != length:
        raise malformed(f"{length - reader.pos} unexpected bytes after the payload")
    return pdu


class Decoder:
    """Turns a byte stream into PDUs; feed it whatever ``recv`` returned."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        self._buffer += data

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a returned PDU."""
        return len(self._buffer)

    def next_pdu(self) -> Optional[p.PDU]:
        """Return the next whole PDU, or ``None`` when more bytes are needed.

        A ``MalformedPDU`` consumes its frame, so the next call continues with
        the PDU after it.  A ``FramingError`` leaves the stream unusable.
        """
        buffer = self._buffer
        if len(buffer) < HEADER_SIZE:
            return None
        header = _read_header(buffer)
        total = HEADER_SIZE + header[6]
        if len(buffer) < total:
            return None
        frame = bytes(buffer[:total])
        del buffer[:total]
        return _decode_framed(frame, header)
