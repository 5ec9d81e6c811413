"""SNMP values as both the AgentX codec and the MIB layer see them."""

from __future__ import annotations

import enum
from typing import NamedTuple, Union

from agentx_virt.oid import OID


class ValueType(enum.IntEnum):
    """v.type of a VarBind (RFC 2741 §5.4)."""

    INTEGER = 2
    OCTET_STRING = 4
    NULL = 5
    OBJECT_IDENTIFIER = 6
    IP_ADDRESS = 64
    COUNTER32 = 65
    GAUGE32 = 66
    TIME_TICKS = 67
    OPAQUE = 68
    COUNTER64 = 70
    NO_SUCH_OBJECT = 128
    NO_SUCH_INSTANCE = 129
    END_OF_MIB_VIEW = 130


Value = Union[int, bytes, OID, None]


class VarBind(NamedTuple):
    """A name, its SNMP type and its value (RFC 2741 §5.4).

    ``value`` is an ``int`` for the integer types, ``bytes`` for octet strings,
    Opaque and IpAddress (4 octets), an OID tuple for OBJECT IDENTIFIER, and
    ``None`` for Null and the three exceptions.
    """

    name: OID
    type: ValueType
    value: Value = None
