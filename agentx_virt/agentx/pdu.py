"""AgentX PDUs as frozen dataclasses: what the codec produces and consumes.

Every PDU carries the four header fields it needs (session, transaction and
packet IDs, and the byte order).  Flags that follow from the content (a
non-default context, instance registration, new/any index) are fields of the
PDUs they belong to, so a PDU object cannot disagree with its own header.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple, Optional

from agentx_virt.agentx.constants import CloseReason, PDUType
from agentx_virt.oid import OID
from agentx_virt.snmp.types import Value as Value
from agentx_virt.snmp.types import VarBind as VarBind


class SearchRange(NamedTuple):
    """A start OID with its include flag, and an exclusive end (``()``: none); RFC 2741 §5.2."""

    start: OID
    end: OID = ()
    include: bool = False


@dataclass(frozen=True)
class PDU:
    """Header fields shared by every PDU (RFC 2741 §6.1)."""

    type: ClassVar[PDUType]
    session_id: int = 0
    transaction_id: int = 0
    packet_id: int = 0
    big_endian: bool = True


@dataclass(frozen=True)
class ContextPDU(PDU):
    """A PDU that may name a non-default context; ``None`` is the default context."""

    context: Optional[bytes] = None


@dataclass(frozen=True)
class Open(PDU):
    type: ClassVar[PDUType] = PDUType.OPEN
    timeout: int = 0
    id: OID = ()
    description: bytes = b""


@dataclass(frozen=True)
class Close(PDU):
    type: ClassVar[PDUType] = PDUType.CLOSE
    reason: int = CloseReason.OTHER


@dataclass(frozen=True)
class Register(ContextPDU):
    type: ClassVar[PDUType] = PDUType.REGISTER
    timeout: int = 0
    priority: int = 127
    subtree: OID = ()
    range_subid: int = 0
    upper_bound: Optional[int] = None
    instance_registration: bool = False


@dataclass(frozen=True)
class Unregister(ContextPDU):
    type: ClassVar[PDUType] = PDUType.UNREGISTER
    priority: int = 127
    subtree: OID = ()
    range_subid: int = 0
    upper_bound: Optional[int] = None


@dataclass(frozen=True)
class Get(ContextPDU):
    type: ClassVar[PDUType] = PDUType.GET
    ranges: tuple[SearchRange, ...] = ()


@dataclass(frozen=True)
class GetNext(ContextPDU):
    type: ClassVar[PDUType] = PDUType.GET_NEXT
    ranges: tuple[SearchRange, ...] = ()


@dataclass(frozen=True)
class GetBulk(ContextPDU):
    type: ClassVar[PDUType] = PDUType.GET_BULK
    non_repeaters: int = 0
    max_repetitions: int = 0
    ranges: tuple[SearchRange, ...] = ()


@dataclass(frozen=True)
class TestSet(ContextPDU):
    type: ClassVar[PDUType] = PDUType.TEST_SET
    varbinds: tuple[VarBind, ...] = ()


@dataclass(frozen=True)
class CommitSet(PDU):
    type: ClassVar[PDUType] = PDUType.COMMIT_SET


@dataclass(frozen=True)
class UndoSet(PDU):
    type: ClassVar[PDUType] = PDUType.UNDO_SET


@dataclass(frozen=True)
class CleanupSet(PDU):
    type: ClassVar[PDUType] = PDUType.CLEANUP_SET


@dataclass(frozen=True)
class Notify(ContextPDU):
    type: ClassVar[PDUType] = PDUType.NOTIFY
    varbinds: tuple[VarBind, ...] = ()


@dataclass(frozen=True)
class Ping(ContextPDU):
    type: ClassVar[PDUType] = PDUType.PING


@dataclass(frozen=True)
class IndexAllocate(ContextPDU):
    type: ClassVar[PDUType] = PDUType.INDEX_ALLOCATE
    varbinds: tuple[VarBind, ...] = ()
    new_index: bool = False
    any_index: bool = False


@dataclass(frozen=True)
class IndexDeallocate(ContextPDU):
    type: ClassVar[PDUType] = PDUType.INDEX_DEALLOCATE
    varbinds: tuple[VarBind, ...] = ()
    new_index: bool = False
    any_index: bool = False


@dataclass(frozen=True)
class AddAgentCaps(ContextPDU):
    type: ClassVar[PDUType] = PDUType.ADD_AGENT_CAPS
    id: OID = ()
    description: bytes = b""


@dataclass(frozen=True)
class RemoveAgentCaps(ContextPDU):
    type: ClassVar[PDUType] = PDUType.REMOVE_AGENT_CAPS
    id: OID = ()


@dataclass(frozen=True)
class Response(PDU):
    type: ClassVar[PDUType] = PDUType.RESPONSE
    sys_uptime: int = 0
    error: int = 0
    index: int = 0
    varbinds: tuple[VarBind, ...] = ()


PDU_CLASSES = {
    cls.type: cls
    for cls in (
        Open, Close, Register, Unregister, Get, GetNext, GetBulk, TestSet, CommitSet,
        UndoSet, CleanupSet, Notify, Ping, IndexAllocate, IndexDeallocate,
        AddAgentCaps, RemoveAgentCaps, Response,
    )
}
