"""How the subagent answers the master's requests: a pure function of the request and a table.

No sockets, threads or clocks here; the session passes in the table it read
once for this request and the sysUpTime to report.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Optional

from agentx_virt.agentx import pdu as p
from agentx_virt.agentx.constants import ErrorCode, ValueType
from agentx_virt.agentx.encoder import encode
from agentx_virt.agentx.errors import EncodeError
from agentx_virt.agentx.store import EMPTY_TABLE, OidTable

# A GetBulk answer stops growing here; RFC 2741 §7.2.3.3 allows fewer repetitions.
MAX_BULK_VARBINDS = 1000
# The largest Response sent, header included. snmpd relays an answer in one SNMP
# message over UDP (at most 65,507 octets): measured here, a 65,400-octet value went
# through, one of 65,480 failed in snmpd's sendto and snmpd closed our session.
MAX_RESPONSE_OCTETS = 65000

log = logging.getLogger(__name__)


def reply(request: p.PDU, sys_uptime: int, error: int = 0, index: int = 0,
          varbinds: tuple[p.VarBind, ...] = ()) -> p.Response:
    """A Response carrying the request's IDs and byte order (RFC 2741 §6.1, §7.2.2)."""
    return p.Response(
        session_id=request.session_id,
        transaction_id=request.transaction_id,
        packet_id=request.packet_id,
        big_endian=request.big_endian,
        sys_uptime=sys_uptime,
        error=error,
        index=index,
        varbinds=varbinds,
    )


def _bulk(table: OidTable, request: p.GetBulk) -> tuple[p.VarBind, ...]:
    ranges = request.ranges
    non_repeaters = min(request.non_repeaters, len(ranges))
    result: list[p.VarBind] = [
        table.next(r.start, r.include, r.end) for r in ranges[:non_repeaters]
    ]
    repeaters = ranges[non_repeaters:]
    if not repeaters:
        return tuple(result)
    repetitions = min(request.max_repetitions,
                      max(1, (MAX_BULK_VARBINDS - len(result)) // len(repeaters)))
    last: list[Optional[p.VarBind]] = [None] * len(repeaters)
    for _ in range(repetitions):
        all_ended = True
        for k, r in enumerate(repeaters):
            previous = last[k]
            if previous is None:
                vb = table.next(r.start, r.include, r.end)
            elif previous.type is ValueType.END_OF_MIB_VIEW:
                vb = previous
            else:
                vb = table.next(previous.name, False, r.end)
            last[k] = vb
            result.append(vb)
            all_ended = all_ended and vb.type is ValueType.END_OF_MIB_VIEW
        if all_ended:
            break
    return tuple(result)


def encoded_answer(request: p.PDU, table: OidTable, sys_uptime: int,
                   limit: int = MAX_RESPONSE_OCTETS) -> bytes:
    """The encoded answer to one request (b"" when none is due).

    A value that cannot be encoded makes genErr for that request only; an answer over
    ``limit`` octets becomes tooBig with no varbinds (RFC 2741 §7.2.4, as RFC 3416
    §4.2.1), except GetBulk, which returns the repetitions that fit (§7.2.3.3).
    """
    try:
        response = answer(request, table, sys_uptime)
        if response is None:
            return b""
        data = encode(response)
        if len(data) > limit:
            data = _fitted(request, response, data, limit)
    except EncodeError as exc:
        log.error("cannot encode the answer to %s packet %d: %s; answering genErr",
                  type(request).__name__, request.packet_id, exc)
        data = encode(reply(request, sys_uptime, ErrorCode.GEN_ERR, exc.varbind_index or 0))
    except Exception:
        log.exception("failed to answer %s packet %d; answering genErr",
                      type(request).__name__, request.packet_id)
        data = encode(reply(request, sys_uptime, ErrorCode.GEN_ERR))
    return data


def _fitted(request: p.PDU, response: p.Response, data: bytes, limit: int) -> bytes:
    varbinds = response.varbinds
    if isinstance(request, p.GetBulk):
        keep = len(varbinds)
        while keep > 1 and len(data) > limit:
            keep = max(1, keep * limit // len(data) - 1)
            data = encode(dataclasses.replace(response, varbinds=varbinds[:keep]))
        if len(data) <= limit:
            return data
    log.warning("the answer to %s packet %d would be %d octets, over %d: answering tooBig",
                type(request).__name__, request.packet_id, len(data), limit)
    return encode(reply(request, response.sys_uptime, ErrorCode.TOO_BIG))


def answer(request: p.PDU, table: OidTable, sys_uptime: int) -> Optional[p.Response]:
    """The Response to one request from the master, or ``None`` when none is due.

    Read-only agent: TestSet is refused with notWritable, CommitSet cannot
    commit anything, UndoSet has nothing to undo, CleanupSet gets no answer.
    A request in a non-default context sees an empty view.
    """
    if isinstance(request, p.ContextPDU) and request.context is not None:
        table = EMPTY_TABLE
    if isinstance(request, p.GetNext):
        return reply(request, sys_uptime, varbinds=tuple(
            table.next(r.start, r.include, r.end) for r in request.ranges))
    if isinstance(request, p.Get):
        return reply(request, sys_uptime, varbinds=tuple(
            table.get(r.start) for r in request.ranges))
    if isinstance(request, p.GetBulk):
        return reply(request, sys_uptime, varbinds=_bulk(table, request))
    if isinstance(request, p.TestSet):
        return reply(request, sys_uptime, ErrorCode.NOT_WRITABLE, 1 if request.varbinds else 0)
    if isinstance(request, p.CommitSet):
        return reply(request, sys_uptime, ErrorCode.COMMIT_FAILED)
    if isinstance(request, p.UndoSet):
        return reply(request, sys_uptime)
    if isinstance(request, p.CleanupSet):
        return None
    if isinstance(request, p.Ping):
        return reply(request, sys_uptime)
    # Open, Register, Notify, IndexAllocate…: PDUs only a subagent sends.
    return reply(request, sys_uptime, ErrorCode.PROCESSING_ERROR)
