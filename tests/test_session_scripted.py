"""The session driver against a scripted master: refusals, bad PDUs, bad values, lost peers."""

from __future__ import annotations

import logging
import time

import pytest

from agentx_virt.agentx import pdu as p
from agentx_virt.agentx.constants import CloseReason, ErrorCode
from agentx_virt.agentx.constants import ValueType as T
from agentx_virt.agentx.encoder import encode
from agentx_virt.agentx.errors import SessionFatal
from agentx_virt.agentx.session_thread import SessionThread
from agentx_virt.agentx.store import OidTable
from agentx_virt.agentx.traps import SNMP_TRAP_OID_0, Trap, TrapQueue
from agentx_virt.ratelog import RateLimitedLog

from .conftest import AgentFactory, ScriptedMaster, wait_for

ROOT = (1, 3, 6, 1, 4, 1, 36957, 3)
GOOD = ROOT + (1, 1)
BAD = ROOT + (1, 2)
TABLE = OidTable([(GOOD, T.INTEGER, 1), (BAD, T.INTEGER, 2**40)], objects=[ROOT + (1,)])
FAST = {"response_timeout": 1.0, "backoff_first": 0.05, "backoff_max": 0.2}


def getnext(packet_id: int, start: tuple, big_endian: bool = True) -> bytes:  # type: ignore[type-arg]
    return encode(p.GetNext(session_id=42, transaction_id=packet_id, packet_id=packet_id,
                            big_endian=big_endian, ranges=(p.SearchRange(start),)))


def test_registration_and_identity(master: ScriptedMaster, start_agent: AgentFactory) -> None:
    start_agent(master.address, TABLE, (ROOT,), ident=ROOT, **FAST)
    opened, registered = master.accept().handshake()
    assert isinstance(opened, p.Open) and opened.id == ROOT
    assert opened.description == b"agentx-virt"
    assert isinstance(registered, p.Register)
    assert (registered.session_id, registered.subtree, registered.priority) == (42, ROOT, 127)


def test_open_refused_is_fatal(master: ScriptedMaster, start_agent: AgentFactory) -> None:
    agent = start_agent(master.address, TABLE, (ROOT,), **FAST)
    conn = master.accept()
    opened = conn.receive()
    conn.send(encode(p.Response(packet_id=opened.packet_id, error=ErrorCode.OPEN_FAILED)))
    agent.thread.join(5)
    assert isinstance(agent.error, SessionFatal)
    assert "refused Open: open_failed" in str(agent.error)


def test_duplicate_registration_is_fatal(master: ScriptedMaster,
                                         start_agent: AgentFactory) -> None:
    agent = start_agent(master.address, TABLE, (ROOT,), **FAST)
    conn = master.accept()
    opened = conn.receive()
    conn.send(encode(p.Response(session_id=7, packet_id=opened.packet_id)))
    registered = conn.receive()
    conn.send(encode(p.Response(session_id=7, packet_id=registered.packet_id,
                                error=ErrorCode.DUPLICATE_REGISTRATION)))
    agent.thread.join(5)
    assert isinstance(agent.error, SessionFatal)
    assert "duplicate_registration" in str(agent.error)
    assert ".1.3.6.1.4.1.36957.3" in str(agent.error)


def test_answers_in_the_masters_byte_order(master: ScriptedMaster,
                                           start_agent: AgentFactory) -> None:
    start_agent(master.address, TABLE, (ROOT,), **FAST)
    conn = master.accept()
    conn.handshake()
    for big in (False, True):
        conn.send(getnext(5, ROOT, big_endian=big))
        response = conn.receive()
        assert isinstance(response, p.Response) and response.big_endian is big
        assert response.varbinds == (p.VarBind(GOOD, T.INTEGER, 1),)


def test_bad_value_gives_generr_for_that_request_only(master: ScriptedMaster,
                                                      start_agent: AgentFactory) -> None:
    start_agent(master.address, TABLE, (ROOT,), **FAST)
    conn = master.accept()
    conn.handshake()
    conn.send(getnext(10, GOOD))            # lands on the out-of-range Integer32
    refused = conn.receive()
    assert isinstance(refused, p.Response) and refused.packet_id == 10
    assert (refused.error, refused.index, refused.varbinds) == (ErrorCode.GEN_ERR, 1, ())
    conn.send(getnext(11, ROOT))
    served = conn.receive()
    assert isinstance(served, p.Response) and served.varbinds[0].value == 1


def test_malformed_pdu_gets_parse_error_and_session_goes_on(
        master: ScriptedMaster, start_agent: AgentFactory) -> None:
    start_agent(master.address, TABLE, (ROOT,), **FAST)
    conn = master.accept()
    conn.handshake()
    # A GetNext whose OID claims 3 sub-identifiers but carries 1 (packetID 0x33).
    conn.send(bytes.fromhex("01061000 0000002a 00000033 00000033 00000008"
                            "03040000 00000001"))
    answer = conn.receive()
    assert isinstance(answer, p.Response)
    assert (answer.packet_id, answer.error) == (0x33, ErrorCode.PARSE_ERROR)
    conn.send(getnext(12, ROOT))
    served = conn.receive()
    assert isinstance(served, p.Response) and served.packet_id == 12 and not served.error


def test_unframeable_stream_closes_with_parse_error_and_reconnects(
        master: ScriptedMaster, start_agent: AgentFactory) -> None:
    start_agent(master.address, TABLE, (ROOT,), **FAST)
    conn = master.accept()
    conn.handshake()
    conn.send(bytes.fromhex("02061000 0000002a 00000001 00000001 00000000"))
    closed = conn.receive()
    assert isinstance(closed, p.Close) and closed.reason == CloseReason.PARSE_ERROR
    again = master.accept()
    again.handshake()
    again.send(getnext(7, ROOT))
    served = again.receive()
    assert isinstance(served, p.Response) and served.varbinds[0].value == 1


def test_close_from_master_reconnects(master: ScriptedMaster,
                                      start_agent: AgentFactory) -> None:
    agent = start_agent(master.address, TABLE, (ROOT,), **FAST)
    conn = master.accept()
    conn.handshake()
    conn.send(encode(p.Close(session_id=42, reason=CloseReason.BY_MANAGER)))
    master.accept().handshake(session_id=43)
    wait_for(lambda: agent.session.session_id == 43 and agent.session.serving.is_set())


def test_silent_master_is_detected_by_ping(master: ScriptedMaster,
                                           start_agent: AgentFactory) -> None:
    agent = start_agent(master.address, TABLE, (ROOT,), ping_interval=0.2, **FAST)
    conn = master.accept()
    conn.handshake()
    ping = conn.receive()
    assert isinstance(ping, p.Ping) and ping.session_id == 42
    # No answer: the subagent gives the master up and comes back on a new connection.
    master.accept().handshake()
    wait_for(lambda: agent.session.connections == 2)


def test_notify_is_matched_by_packet_id_and_refusals_are_counted(
        master: ScriptedMaster, start_agent: AgentFactory) -> None:
    queue = TrapQueue(capacity=10)
    start_agent(master.address, TABLE, (ROOT,), traps=queue, **FAST)
    conn = master.accept()
    conn.handshake()
    queue.put(Trap(ROOT + (0, 1), (p.VarBind(GOOD, T.INTEGER, 5),)))
    queue.put(Trap(ROOT + (0, 2)))
    first, second = conn.receive(), conn.receive()
    assert isinstance(first, p.Notify) and isinstance(second, p.Notify)
    assert first.varbinds[0] == p.VarBind(SNMP_TRAP_OID_0, T.OBJECT_IDENTIFIER, ROOT + (0, 1))
    assert first.varbinds[1:] == (p.VarBind(GOOD, T.INTEGER, 5),)
    conn.send(encode(p.Response(session_id=42, packet_id=second.packet_id,
                                error=ErrorCode.PROCESSING_ERROR)))
    conn.send(encode(p.Response(session_id=42, packet_id=first.packet_id)))
    wait_for(lambda: queue.stats().sent == 1 and queue.stats().refused == 1)


def test_unacknowledged_traps_are_resent_after_reconnect(
        master: ScriptedMaster, start_agent: AgentFactory) -> None:
    queue = TrapQueue(capacity=10)
    start_agent(master.address, TABLE, (ROOT,), traps=queue, **FAST)
    conn = master.accept()
    conn.handshake()
    queue.put(Trap(ROOT + (0, 1)))
    lost = conn.receive()
    assert isinstance(lost, p.Notify)
    conn.close()                            # the master goes away before answering
    again = master.accept()
    again.handshake()
    resent = again.receive()
    assert isinstance(resent, p.Notify) and resent.varbinds == lost.varbinds
    again.send(encode(p.Response(session_id=42, packet_id=resent.packet_id)))
    wait_for(lambda: queue.stats().sent == 1)


def test_stop_sends_close_shutdown(master: ScriptedMaster, start_agent: AgentFactory) -> None:
    agent: SessionThread = start_agent(master.address, TABLE, (ROOT,), **FAST)
    conn = master.accept()
    conn.handshake()
    agent.session.stop()
    closed = conn.receive()
    assert isinstance(closed, p.Close) and closed.reason == CloseReason.SHUTDOWN
    conn.send(encode(p.Response(session_id=42, packet_id=closed.packet_id)))
    agent.thread.join(5)
    assert not agent.thread.is_alive() and agent.error is None


def test_needs_a_subtree() -> None:
    from agentx_virt.agentx.address import parse_address
    from agentx_virt.agentx.session import AgentXSession
    from agentx_virt.agentx.session_config import SessionConfig
    from agentx_virt.agentx.store import ServedStore

    with pytest.raises(ValueError, match="at least one subtree"):
        AgentXSession(SessionConfig(parse_address("/x"), ()), ServedStore())


def test_a_master_that_drops_every_connection_gets_backoff_not_a_busy_loop(
        master: ScriptedMaster, start_agent: AgentFactory) -> None:
    # backoff 0.05 s doubling to 0.4 s: without backoff there would be ~30 attempts.
    start_agent(master.address, TABLE, (ROOT,), response_timeout=1.0, backoff_first=0.05,
                backoff_max=0.4)
    attempts = 0
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        try:
            conn = master.accept(timeout=max(0.01, deadline - time.monotonic()))
        except OSError:
            break
        attempts += 1
        conn.close()                       # hang up before answering Open
    assert 2 <= attempts <= 8


def test_an_answer_over_the_size_snmpd_can_relay_is_toobig(
        master: ScriptedMaster, start_agent: AgentFactory) -> None:
    """A 30,000-range GetNext (840 kB) would make a Response of about 1.9 MB."""
    columns = [(ROOT + (2, n, 0), T.OCTET_STRING, b"v" * 30) for n in range(1, 30001)]
    start_agent(master.address, OidTable(columns, objects=[ROOT + (2,)]), (ROOT,), **FAST)
    conn = master.accept()
    conn.handshake()
    ranges = tuple(p.SearchRange(ROOT + (2, n)) for n in range(1, 30001))
    conn.send(encode(p.GetNext(session_id=42, packet_id=20, ranges=ranges)))
    big = conn.receive()
    assert isinstance(big, p.Response) and big.packet_id == 20
    assert (big.error, big.index, big.varbinds) == (ErrorCode.TOO_BIG, 0, ())
    conn.send(encode(p.GetNext(session_id=42, packet_id=21, ranges=ranges[:100])))
    small = conn.receive()                  # the session goes on: 100 ranges fit
    assert isinstance(small, p.Response) and not small.error and len(small.varbinds) == 100
    conn.send(encode(p.GetBulk(session_id=42, packet_id=22, max_repetitions=5000,
                               ranges=(p.SearchRange(ROOT + (2,)),))))
    bulk = conn.receive()                   # GetBulk: the repetitions that fit
    assert isinstance(bulk, p.Response) and not bulk.error
    assert 100 < len(bulk.varbinds) < 1000 and len(encode(bulk)) <= 65000


def test_stray_responses_and_malformed_pdus_are_logged_once_a_minute_with_a_count(
        master: ScriptedMaster, start_agent: AgentFactory,
        caplog: pytest.LogCaptureFixture) -> None:
    start_agent(master.address, TABLE, (ROOT,), **FAST)
    conn = master.accept()
    conn.handshake()
    malformed = bytes.fromhex("01061000 0000002a 00000033 00000033 00000008"
                              "03040000 00000001")
    with caplog.at_level(logging.WARNING, logger="agentx_virt"):
        conn.send(b"".join(encode(p.Response(session_id=42, packet_id=90000 + n))
                           for n in range(5000)))
        for _ in range(50):
            conn.send(malformed)
            refused = conn.receive()                               # each still answered
            assert isinstance(refused, p.Response) and refused.error == ErrorCode.PARSE_ERROR
        conn.send(getnext(13, ROOT))
        served = conn.receive()
        assert isinstance(served, p.Response) and served.packet_id == 13
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("agentx_virt")]
    assert len([m for m in lines if "unknown packetID" in m]) == 1
    assert len([m for m in lines if "parse error" in m]) == 1
    assert len(lines) == 2, lines


def test_the_count_of_what_was_not_logged_comes_when_the_minute_is_over(
        caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    odd = RateLimitedLog(logging.getLogger("agentx_virt.test"), clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="agentx_virt.test"):
        for n in range(5000):
            odd.warning("stray Responses", "Response for unknown packetID %d", n)
            now[0] += 0.01                  # 50 s
        odd.flush()                         # the minute is not over: nothing yet
        now[0] = 61
        odd.flush()
        odd.warning("stray Responses", "Response for unknown packetID %d", 1)
    assert [r.getMessage()[:36] for r in caplog.records] == [
        "Response for unknown packetID 0 (mor", "4999 more stray Responses in the las",
        "Response for unknown packetID 1 (mor"]


def test_a_close_right_after_register_is_not_a_failure_to_back_off_from(
        master: ScriptedMaster, start_agent: AgentFactory,
        caplog: pytest.LogCaptureFixture) -> None:
    """The master answers Register and closes in the same write (as snmpd does when it
    drops a session it just registered)."""
    agent = start_agent(master.address, TABLE, (ROOT,), response_timeout=1.0,
                        backoff_first=0.05, backoff_max=5.0)
    with caplog.at_level(logging.WARNING, logger="agentx_virt"):
        for session_id in (50, 51, 52):
            conn = master.accept()
            opened = conn.receive()
            conn.send(encode(p.Response(session_id=session_id, packet_id=opened.packet_id)))
            registered = conn.receive()
            conn.send(encode(p.Response(session_id=session_id,
                                        packet_id=registered.packet_id)) +
                      encode(p.Close(session_id=session_id, reason=CloseReason.BY_MANAGER)))
        master.accept().handshake(session_id=53)
        wait_for(lambda: agent.session.session_id == 53 and agent.session.serving.is_set())
    lost = [r.getMessage() for r in caplog.records if "closed session" in r.getMessage()]
    assert len(lost) == 3 and all(m.endswith("; reconnecting") for m in lost), lost
    assert agent.session.connections == 4
