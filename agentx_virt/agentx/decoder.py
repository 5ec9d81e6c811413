"""AgentX decoding, sans-IO: bytes as they arrive to whole PDUs (RFC 2741 §5, §6).

``Decoder.feed(data)`` takes bytes as ``recv`` returned them and ``Decoder.next_pdu()``
returns each whole PDU in turn, or ``None`` until enough bytes are there. Framing uses
the header's payload length only, so a PDU split over many reads and several PDUs in
one read decode the same.

Errors say whose fault they are, the master's: ``FramingError`` when the header itself
is unusable (the stream cannot be resynchronised), ``MalformedPDU`` when one framed PDU
has a bad payload (the caller may answer it with parseError and go on).
"""

from __future__ import annotations

from typing import Callable, Optional, TypedDict

from agentx_virt.agentx import pdu as p
from agentx_virt.agentx.constants import (
    AGENTX_VERSION,
    CONTEXT_PDU_TYPES,
    HEADER_SIZE,
    PDUType,
    ValueType,
)
from agentx_virt.agentx.errors import FramingError, MalformedPDU
from agentx_virt.agentx.wire import (
    ANY_INDEX,
    BIG,
    INSTANCE_REGISTRATION,
    INTERNET,
    LITTLE,
    MAX_PAYLOAD,
    NETWORK_BYTE_ORDER,
    NEW_INDEX,
    NON_DEFAULT_CONTEXT,
    ByteOrder,
)
from agentx_virt.oid import MAX_OID_LENGTH, OID


class _Malformed(Exception):
    """Internal: raised by the payload reader, turned into MalformedPDU with header details."""


class _Reader:
    """Reads a payload from the front, checking every bound."""

    __slots__ = ("data", "order", "pos")

    def __init__(self, data: bytes, order: ByteOrder) -> None:
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
            subids = INTERNET + (prefix,) + subids
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
        instance_registration=bool(flags & INSTANCE_REGISTRATION), context=context, **ids,
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
    return p.IndexAllocate(varbinds=r.varbinds(), new_index=bool(flags & NEW_INDEX),
                           any_index=bool(flags & ANY_INDEX), context=context, **ids)


def _read_index_deallocate(r: _Reader, ids: _Ids, context: Optional[bytes],
                           flags: int) -> p.PDU:
    return p.IndexDeallocate(varbinds=r.varbinds(), new_index=bool(flags & NEW_INDEX),
                             any_index=bool(flags & ANY_INDEX), context=context, **ids)


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


def _read_header(data: bytes | bytearray) -> tuple[ByteOrder, int, int, int, int, int, int]:
    """Validate a 20-byte header; returns (order, type, flags, sid, tid, pid, payload length)."""
    order = BIG if data[2] & NETWORK_BYTE_ORDER else LITTLE
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


def _decode_framed(frame: bytes, header: tuple[ByteOrder, int, int, int, int, int, int]) -> p.PDU:
    order, kind, flags, sid, tid, pid, length = header
    big = order is BIG

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
        if flags & NON_DEFAULT_CONTEXT:
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
