"""The AgentX protocol object without sockets: bytes in, events out; PDUs in, bytes out."""

from __future__ import annotations

from typing import Union

import pytest

from agentx_virt.agentx import pdu as p
from agentx_virt.agentx.address import parse_address
from agentx_virt.agentx.constants import CloseReason, ErrorCode, ValueType
from agentx_virt.agentx.decoder import decode
from agentx_virt.agentx.encoder import encode
from agentx_virt.agentx.protocol import (
    MASTER_REQUESTS,
    MAY_SEND,
    NEED_DATA,
    AgentXProtocol,
    Answered,
    EndOfStream,
    Event,
    Ignored,
    LocalProtocolError,
    Malformed,
    MasterClosed,
    NeedData,
    Opened,
    Refused,
    Registered,
    Request,
    State,
    Stray,
    Unframeable,
    Unregistered,
)
from agentx_virt.agentx.session_config import SessionConfig
from agentx_virt.agentx.store import OidTable

A = (1, 3, 6, 1, 4, 1, 36957, 3)
B = (1, 3, 6, 1, 2, 1, 236)
TABLE = OidTable([(A + (1, 0), ValueType.INTEGER, 7)])


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def protocol(subtrees: tuple[tuple[int, ...], ...] = (A, B),
             clock: Clock | None = None) -> AgentXProtocol:
    config = SessionConfig(parse_address("unix:/unused"), subtrees, response_timeout=5.0,
                           ping_interval=15.0)
    return AgentXProtocol(config, lambda: 1234, clock or Clock())


def state_of(proto: AgentXProtocol) -> State:
    """The state now (a call, so mypy does not keep what an earlier check narrowed)."""
    return proto.state


def events(proto: AgentXProtocol) -> list[Event]:
    seen: list[Event] = []
    while True:
        event: Union[Event, NeedData] = proto.next_event()
        if isinstance(event, NeedData):
            return seen
        seen.append(event)


def answer_last(proto: AgentXProtocol, sent: bytes, session_id: int = 9,
                error: int = 0) -> bytes:
    request = decode(sent)
    return encode(p.Response(session_id=session_id, packet_id=request.packet_id, error=error))


def opened(proto: AgentXProtocol) -> None:
    sent = proto.send(p.Open(description=b"t"))
    proto.receive_data(answer_last(proto, sent))
    assert events(proto) == [Opened(9)]


def serving(proto: AgentXProtocol) -> None:
    opened(proto)
    for subtree in proto.config.subtrees:
        sent = proto.send(p.Register(subtree=subtree))
        proto.receive_data(answer_last(proto, sent))
        events(proto)
    assert state_of(proto) is State.SERVING


def test_the_handshake_goes_through_its_states_and_stamps_ids() -> None:
    proto = protocol()
    assert state_of(proto) is State.IDLE
    sent = decode(proto.send(p.Open(description=b"t")))
    assert (sent.packet_id, proto.state) == (1, State.OPENING)
    proto.receive_data(encode(p.Response(session_id=9, packet_id=1)))
    assert events(proto) == [Opened(9)] and state_of(proto) is State.REGISTERING
    register = decode(proto.send(p.Register(subtree=A)))
    assert (register.session_id, register.packet_id) == (9, 2)
    proto.receive_data(encode(p.Response(session_id=9, packet_id=2)))
    assert events(proto) == [Registered(A, (B,))] and state_of(proto) is State.REGISTERING
    proto.send(p.Register(subtree=B))
    proto.receive_data(encode(p.Response(session_id=9, packet_id=3)))
    assert events(proto) == [Registered(B, ())] and state_of(proto) is State.SERVING


def test_the_same_events_when_the_bytes_come_one_at_a_time_or_together() -> None:
    whole, dribbled = protocol(), protocol()
    for proto in (whole, dribbled):
        proto.send(p.Open())
    data = encode(p.Response(session_id=9, packet_id=1)) + encode(
        p.Get(session_id=9, packet_id=77, ranges=(p.SearchRange(A + (1, 0)),)))
    whole.receive_data(data + b"\x01")          # and a trailing byte of the next PDU
    dribbled_events: list[Event] = []
    for k in range(len(data)):
        dribbled.receive_data(data[k:k + 1])
        dribbled_events += events(dribbled)
    assert events(whole) == dribbled_events
    assert [type(e) for e in dribbled_events] == [Opened, Request]


def test_refusals_say_what_was_refused_and_end_only_a_session_with_nothing_served() -> None:
    proto = protocol()
    sent = proto.send(p.Open())
    proto.receive_data(answer_last(proto, sent, error=ErrorCode.OPEN_FAILED))
    assert events(proto) == [Refused("Open", ErrorCode.OPEN_FAILED)]
    assert state_of(proto) is State.CLOSED
    proto = protocol()
    opened(proto)
    sent = proto.send(p.Register(subtree=A))
    proto.receive_data(answer_last(proto, sent, error=ErrorCode.DUPLICATE_REGISTRATION))
    assert events(proto) == [Refused("Register", ErrorCode.DUPLICATE_REGISTRATION, A, (B,))]
    assert state_of(proto) is State.REGISTERING        # B may still be served
    sent = proto.send(p.Register(subtree=B))
    proto.receive_data(answer_last(proto, sent))
    assert events(proto) == [Registered(B, ())]
    assert state_of(proto) is State.SERVING and proto.refused == (A,)
    alone = protocol(subtrees=(A,))
    opened(alone)
    sent = alone.send(p.Register(subtree=A))
    alone.receive_data(answer_last(alone, sent, error=ErrorCode.DUPLICATE_REGISTRATION))
    assert events(alone) == [Refused("Register", ErrorCode.DUPLICATE_REGISTRATION, A)]
    assert state_of(alone) is State.CLOSED             # nothing left to serve


# Every state, every PDU we could send: legal exactly where MAY_SEND says.
def in_state(state: State) -> AgentXProtocol:
    proto = protocol(subtrees=(A,))
    if state is State.OPENING:
        proto.send(p.Open())
    elif state is State.REGISTERING:
        opened(proto)
    elif state in (State.SERVING, State.CLOSING):
        serving(proto)
        if state is State.CLOSING:
            proto.send(p.Close(reason=CloseReason.SHUTDOWN))
    elif state is State.CLOSED:
        serving(proto)
        proto.receive_data(encode(p.Close(session_id=9, reason=CloseReason.SHUTDOWN)))
        assert events(proto) == [MasterClosed(CloseReason.SHUTDOWN)]
    assert proto.state is state
    return proto


OURS = [p.Open(), p.Register(subtree=A), p.Notify(), p.Ping(), p.Close(reason=1)]


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("pdu", OURS, ids=[type(x).__name__ for x in OURS])
def test_what_may_be_sent_in_each_state(state: State, pdu: p.PDU) -> None:
    proto = in_state(state)
    if isinstance(pdu, p.Register) and state is State.SERVING:
        proto.change_subtrees((A, B))       # serving: only a subtree newly asked for
        pdu = p.Register(subtree=B)
    if type(pdu) in MAY_SEND[state]:
        assert decode(proto.send(pdu)).packet_id == proto.last_packet_id
    else:
        with pytest.raises(LocalProtocolError, match=f"cannot send {type(pdu).__name__} "
                                                     f"while {state.value}"):
            proto.send(pdu)


@pytest.mark.parametrize("state", [s for s in State if s is not State.CLOSED])
def test_the_masters_requests_are_answered_only_where_the_table_says(state: State) -> None:
    proto = in_state(state)
    get = p.Get(session_id=9, transaction_id=3, packet_id=70, ranges=(p.SearchRange(A + (1, 0)),))
    proto.receive_data(encode(get))
    [event] = events(proto)
    if MASTER_REQUESTS[state]:
        assert event == Request(get)
        response = decode(proto.answer(get, TABLE))
        assert isinstance(response, p.Response)
        assert (response.transaction_id, response.packet_id, response.sys_uptime) == (3, 70, 1234)
        assert response.varbinds[0].value == 7
    else:
        assert event == Ignored(get)
        with pytest.raises(LocalProtocolError, match="cannot answer Get"):
            proto.answer(get, TABLE)


def test_one_register_at_a_time_and_only_the_configured_subtrees() -> None:
    proto = protocol()
    opened(proto)
    with pytest.raises(LocalProtocolError, match="not a subtree still to register"):
        proto.send(p.Register(subtree=(1, 3, 6, 1, 9)))
    proto.send(p.Register(subtree=A))
    with pytest.raises(LocalProtocolError, match="one Register or Unregister at a time"):
        proto.send(p.Register(subtree=B))


def test_while_serving_subtrees_are_registered_and_unregistered_one_at_a_time() -> None:
    proto = protocol(subtrees=(A,))
    serving(proto)
    assert proto.registered == (A,)
    assert proto.change_subtrees((B,)) == ((B,), (A,))
    with pytest.raises(LocalProtocolError, match="is not registered"):
        proto.send(p.Unregister(subtree=B))
    sent = proto.send(p.Unregister(subtree=A))
    assert proto.change_subtrees((B,)) == ((B,), ())      # A's answer is awaited
    with pytest.raises(LocalProtocolError, match="one Register or Unregister at a time"):
        proto.send(p.Register(subtree=B))
    proto.receive_data(answer_last(proto, sent))
    assert events(proto) == [Unregistered(A, 0)]
    sent = proto.send(p.Register(subtree=B))
    proto.receive_data(answer_last(proto, sent))
    assert events(proto) == [Registered(B, ())]
    assert (proto.registered, proto.state) == ((B,), State.SERVING)
    # A refusal while serving leaves the session serving what it has.
    assert proto.change_subtrees((B, A)) == ((A,), ())
    sent = proto.send(p.Register(subtree=A))
    proto.receive_data(encode(p.Response(session_id=9, packet_id=decode(sent).packet_id,
                                         error=ErrorCode.DUPLICATE_REGISTRATION)))
    assert events(proto) == [Refused("Register", ErrorCode.DUPLICATE_REGISTRATION, A, ())]
    assert proto.state is State.SERVING
    assert proto.change_subtrees((B, A)) == ((), ())       # not asked again on this one


def test_responses_are_matched_by_packet_id_and_strays_reported() -> None:
    proto = protocol(subtrees=(A,))
    serving(proto)
    first = decode(proto.send(p.Notify())).packet_id
    second = decode(proto.send(p.Notify())).packet_id
    assert proto.awaited == 2
    proto.receive_data(encode(p.Response(session_id=9, packet_id=second, error=ErrorCode.GEN_ERR))
                       + encode(p.Response(session_id=9, packet_id=999))
                       + encode(p.Response(session_id=9, packet_id=first)))
    assert events(proto) == [Answered("Notify", second, ErrorCode.GEN_ERR), Stray(999),
                             Answered("Notify", first, 0)]
    assert proto.awaited == 0


def test_a_malformed_pdu_gets_its_parse_error_reply_and_the_stream_goes_on() -> None:
    proto = protocol(subtrees=(A,))
    serving(proto)
    bad = bytearray(encode(p.Get(session_id=9, transaction_id=4, packet_id=71,
                                 ranges=(p.SearchRange(A),))))
    bad[1] = 200                                  # an unknown PDU type, framed correctly
    ping_id = decode(proto.send(p.Ping())).packet_id
    proto.receive_data(bytes(bad) + encode(p.Response(session_id=9, packet_id=ping_id)))
    malformed, answered = events(proto)
    assert isinstance(malformed, Malformed) and "unknown PDU type 200" in malformed.message
    reply = decode(malformed.reply)
    assert isinstance(reply, p.Response)
    assert (reply.error, reply.transaction_id, reply.packet_id) == (ErrorCode.PARSE_ERROR, 4, 71)
    assert answered == Answered("Ping", ping_id, 0)


def test_an_unframeable_header_ends_the_stream_with_a_parse_error_close() -> None:
    proto = protocol(subtrees=(A,))
    serving(proto)
    proto.receive_data(b"\x02" + bytes(19))       # AgentX version 2 does not exist
    [event] = events(proto)
    assert isinstance(event, Unframeable) and "version 2" in event.message
    close = decode(event.close_bytes)
    assert isinstance(close, p.Close) and close.reason == CloseReason.PARSE_ERROR
    assert state_of(proto) is State.CLOSED and proto.next_event() is NEED_DATA


def test_end_of_stream_comes_after_the_pdus_before_it() -> None:
    proto = protocol(subtrees=(A,))
    serving(proto)
    get = p.Get(session_id=9, packet_id=5, ranges=(p.SearchRange(A),))
    proto.receive_data(encode(get))
    proto.receive_data(b"")
    assert events(proto) == [Request(get), EndOfStream(State.SERVING)]
    with pytest.raises(LocalProtocolError, match="after the connection ended"):
        proto.receive_data(b"x")


def test_close_and_its_answer_while_a_notify_is_still_answered() -> None:
    proto = protocol(subtrees=(A,))
    serving(proto)
    notify = decode(proto.send(p.Notify())).packet_id
    close = decode(proto.send(p.Close(reason=CloseReason.SHUTDOWN))).packet_id
    assert state_of(proto) is State.CLOSING
    proto.receive_data(encode(p.Response(session_id=9, packet_id=notify))
                       + encode(p.Response(session_id=9, packet_id=close)))
    assert events(proto) == [Answered("Notify", notify, 0), Answered("Close", close, 0)]
    assert state_of(proto) is State.CLOSED


def test_deadlines_and_ping_times_follow_the_injected_clock() -> None:
    clock = Clock()
    proto = protocol(subtrees=(A,), clock=clock)
    proto.send(p.Open())
    assert proto.next_deadline() == 105.0 and proto.overdue(104.9) is None
    assert proto.overdue(105.0) == "the master did not answer our Open within 5 s"
    clock.now = 101.0
    proto.receive_data(encode(p.Response(session_id=9, packet_id=1)))
    events(proto)
    assert proto.next_deadline() is None and proto.ping_due() == 116.0
    proto.send(p.Register(subtree=A))
    clock.now = 102.0
    proto.receive_data(encode(p.Response(session_id=9, packet_id=2)))
    events(proto)
    assert proto.ping_due() == 117.0 and not proto.ping_awaited()
    proto.send(p.Ping())
    assert proto.ping_awaited() and proto.next_deadline() == 107.0


def test_a_probe_with_nothing_to_register_serves_once_open() -> None:
    proto = protocol(subtrees=())
    opened(proto)
    assert state_of(proto) is State.SERVING
    assert decode(proto.send(p.Ping())).session_id == 9


def test_a_new_connection_is_a_new_object_that_starts_afresh() -> None:
    first = protocol()
    serving(first)
    again = protocol()
    assert decode(again.send(p.Open())).packet_id == 1 and again.session_id == 0
