"""Numbers fixed by RFC 2741: PDU types, header flags, error and close codes; the value
types are the SNMP layer's (``agentx_virt.snmp.types``), re-exported for the codec."""

from __future__ import annotations

import enum

from agentx_virt.snmp.types import ValueType as ValueType  # the codec's too

AGENTX_VERSION = 1
HEADER_SIZE = 20


class PDUType(enum.IntEnum):
    """h.type (RFC 2741 §6.1)."""

    OPEN = 1
    CLOSE = 2
    REGISTER = 3
    UNREGISTER = 4
    GET = 5
    GET_NEXT = 6
    GET_BULK = 7
    TEST_SET = 8
    COMMIT_SET = 9
    UNDO_SET = 10
    CLEANUP_SET = 11
    NOTIFY = 12
    PING = 13
    INDEX_ALLOCATE = 14
    INDEX_DEALLOCATE = 15
    ADD_AGENT_CAPS = 16
    REMOVE_AGENT_CAPS = 17
    RESPONSE = 18


class Flag(enum.IntFlag):
    """h.flags bits (RFC 2741 §6.1)."""

    INSTANCE_REGISTRATION = 0x01
    NEW_INDEX = 0x02
    ANY_INDEX = 0x04
    NON_DEFAULT_CONTEXT = 0x08
    NETWORK_BYTE_ORDER = 0x10


# PDU types whose payload starts with an optional context octet string (RFC 2741 §6.1.1).
CONTEXT_PDU_TYPES = frozenset(
    {
        PDUType.REGISTER,
        PDUType.UNREGISTER,
        PDUType.GET,
        PDUType.GET_NEXT,
        PDUType.GET_BULK,
        PDUType.TEST_SET,
        PDUType.NOTIFY,
        PDUType.PING,
        PDUType.INDEX_ALLOCATE,
        PDUType.INDEX_DEALLOCATE,
        PDUType.ADD_AGENT_CAPS,
        PDUType.REMOVE_AGENT_CAPS,
    }
)


class ErrorCode(enum.IntEnum):
    """res.error of a Response-PDU (RFC 2741 §6.2.16)."""

    NO_AGENTX_ERROR = 0
    TOO_BIG = 1          # SNMPv2 error-status (RFC 3416), which AgentX Responses carry too
    GEN_ERR = 5
    NO_ACCESS = 6
    WRONG_TYPE = 7
    WRONG_LENGTH = 8
    WRONG_ENCODING = 9
    WRONG_VALUE = 10
    NO_CREATION = 11
    INCONSISTENT_VALUE = 12
    RESOURCE_UNAVAILABLE = 13
    COMMIT_FAILED = 14
    UNDO_FAILED = 15
    AUTHORIZATION_ERROR = 16
    NOT_WRITABLE = 17
    INCONSISTENT_NAME = 18
    OPEN_FAILED = 256
    NOT_OPEN = 257
    INDEX_WRONG_TYPE = 258
    INDEX_ALREADY_ALLOCATED = 259
    INDEX_NONE_AVAILABLE = 260
    INDEX_NOT_ALLOCATED = 261
    UNSUPPORTED_CONTEXT = 262
    DUPLICATE_REGISTRATION = 263
    UNKNOWN_REGISTRATION = 264
    UNKNOWN_AGENT_CAPS = 265
    PARSE_ERROR = 266
    REQUEST_DENIED = 267
    PROCESSING_ERROR = 268


class CloseReason(enum.IntEnum):
    """c.reason of a Close-PDU (RFC 2741 §6.2.2)."""

    OTHER = 1
    PARSE_ERROR = 2
    PROTOCOL_ERROR = 3
    TIMEOUTS = 4
    SHUTDOWN = 5
    BY_MANAGER = 6


def error_name(code: int) -> str:
    """A readable name for a res.error value, also for codes outside the RFC's list."""
    try:
        return ErrorCode(code).name.lower()
    except ValueError:
        return f"error {code}"
