"""What the AgentX encoder and decoder share about the wire (RFC 2741 §5, §6.1).

The header's NETWORK_BYTE_ORDER flag picks the byte order of everything in a PDU;
``ByteOrder`` holds the structs for one of them, compiled once.
"""

from __future__ import annotations

import struct

from agentx_virt.agentx.constants import Flag

# Larger PDUs are refused as framing errors rather than buffered without bound.
MAX_PAYLOAD = 1 << 20

# The prefix an OID's "prefix" byte stands for (RFC 2741 §5.1).
INTERNET = (1, 3, 6, 1)


class ByteOrder:
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
NETWORK_BYTE_ORDER = int(Flag.NETWORK_BYTE_ORDER)
NON_DEFAULT_CONTEXT = int(Flag.NON_DEFAULT_CONTEXT)
INSTANCE_REGISTRATION = int(Flag.INSTANCE_REGISTRATION)
NEW_INDEX = int(Flag.NEW_INDEX)
ANY_INDEX = int(Flag.ANY_INDEX)

BIG = ByteOrder(">")
LITTLE = ByteOrder("<")
OID_HEAD = struct.Struct("BBBB")


def byte_order(big_endian: bool) -> ByteOrder:
    return BIG if big_endian else LITTLE
