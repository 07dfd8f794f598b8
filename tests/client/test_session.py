"""ClientSession without sockets: server lines in, events and client lines out."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from chat_client.events import Connected, NotConnectedError, RequestError
from chat_client.paging import HISTORY_PAGE
from chat_client.session import ClientSession, Completed, Failed, SessionEvent, State
from protocol import (
    Ack,
    Bye,
    ChatMessage,
    ClientMessage,
    ErrorCode,
    ErrorReply,
    GetHistory,
    HistoryPage,
    Join,
    Members,
    NickChanged,
    Pong,
    Register,
    RoomInfo,
    RoomList,
    RoomSummary,
    Say,
    ServerHello,
    ServerPing,
    ServerPong,
    Typing,
    Welcome,
    decode_client_line,
    encode,
)

TS = "2026-11-23T15:04:05.123Z"
E = TypeVar("E")


def sent(session: ClientSession) -> list[ClientMessage]:
    return [decode_client_line(line) for line in session.data_to_send().splitlines()]


def feed(session: ClientSession, *messages: BaseModel) -> list[SessionEvent]:
    session.receive_data(b"".join(encode(m) for m in messages))
    return session.events_received()


def msg(seq: int, text: str = "", sender: str = "bob", room: str = "lobby") -> ChatMessage:
    return ChatMessage(room=room, seq=seq, sender=sender, text=text or f"m{seq}", ts=TS)


def ready(nick: str = "alice", **kwargs: object) -> ClientSession:
    session = ClientSession(nick, **kwargs)  # type: ignore[arg-type]
    session.connection_opened()
    feed(session, ServerHello(server="test"))
    sent(session)
    feed(session, Welcome(nick=nick, rooms=["lobby"], re="register"))
    return session


def joined(session: ClientSession, room: str = "lobby", *history: ChatMessage) -> str:
    """Join `room` with its replay `history`; return the join's request id."""
    request_id = session.send_join(room)
    sent(session)
    feed(
        session,
        RoomInfo(room=room, topic="", members=[session.nick], re=request_id),
        HistoryPage(room=room, messages=list(history), more=False),
    )
    return request_id


def reconnect(session: ClientSession) -> list[ClientMessage]:
    """Drop the connection and register again; return what the session sent."""
    session.receive_eof()
    session.events_received()
    session.connection_opened()
    feed(session, ServerHello(server="test"))
    sent(session)
    feed(session, Welcome(nick=session.nick, rooms=["lobby"], re="register"))
    return sent(session)


def only(events: list[SessionEvent], kind: type[E]) -> list[E]:
    return [event for event in events if isinstance(event, kind)]


# -- registration and features ----------------------------------------------------------


def test_registration_sends_hello_and_reports_connected_with_granted_features() -> None:
    session = ClientSession("alice", password="sesame", features=frozenset({"reply", "edit"}))
    session.connection_opened()
    assert sent(session) == []  # the server speaks first
    feed(session, ServerHello(server="lan", motd="hi", features=["edit", "reply", "typing"]))
    assert session.server_features == {"edit", "reply", "typing"}
    [register] = sent(session)
    assert register == Register(
        nick="alice",
        password="sesame",
        client="chat-client/0.1",
        features=["edit", "reply"],
        id="register",
    )
    events = feed(session, Welcome(nick="alice", rooms=["lobby"], features=["reply"], re="r"))
    assert events == [Connected("alice", "lan", "hi", ("lobby",), frozenset({"reply"}))]
    assert session.state is State.READY and session.features == {"reply"}


def test_a_version_1_server_grants_no_features_and_hello_asks_for_none() -> None:
    session = ClientSession("alice")
    session.connection_opened()
    feed(session, ServerHello(server="old"))
    assert b"features" not in session.data_to_send()
    feed(session, Welcome(nick="alice", rooms=[]))
    assert session.state is State.READY and session.features == frozenset()


@pytest.mark.parametrize(
    ("code", "retry"),
    [
        (ErrorCode.NICK_TAKEN, True),
        (ErrorCode.AUTH_FAILED, False),
        (ErrorCode.INVALID_NICK, False),
    ],
)
def test_refused_registration_ends_the_connection_with_its_code(
    code: ErrorCode, retry: bool
) -> None:
    session = ClientSession("alice")
    session.connection_opened()
    feed(session, ServerHello(server="test"))
    feed(session, ErrorReply(code=code, message="no", re="register"))
    assert session.state is State.DISCONNECTED
    assert session.ending is not None and session.ending.retry is retry
    assert isinstance(session.ending.error, RequestError)
    assert session.ending.error.code is code


def test_garbage_before_welcome_ends_the_connection_with_a_reason() -> None:
    session = ClientSession("alice")
    session.connection_opened()
    session.receive_data(b"HTTP/1.1 400 Bad Request\r\n")
    session.events_received()
    assert session.ending is not None and session.ending.retry
    assert "does not speak the chat protocol" in session.ending.reason


def test_an_unreadable_line_between_hello_and_welcome_ends_the_handshake() -> None:
    session = ClientSession("alice")
    session.connection_opened()
    feed(session, ServerHello(server="test"))
    session.receive_data(b'{"type":"welcome","nick":1}\n' + b"x" * 70_000 + b"\n")
    assert session.events_received() == []
    assert session.ending is not None and session.ending.retry
    assert "does not speak the chat protocol" in session.ending.reason


def test_a_line_over_the_limit_ends_the_connection_with_a_reason() -> None:
    session = ClientSession("alice", max_line=1000)
    session.connection_opened()
    session.receive_data(b"x" * 5000)
    session.events_received()
    assert session.ending is not None and session.ending.retry
    assert session.ending.reason == "the server sent a line longer than 1,000 bytes"


def test_a_line_over_the_limit_after_welcome_also_ends_the_connection() -> None:
    session = ready(max_line=1000)
    session.receive_data(b'{"type":"message","text":"' + b"x" * 2000 + b'"}\n')
    session.events_received()
    assert session.state is State.DISCONNECTED and session.ending is not None


def test_bye_is_an_event_and_only_quit_is_final() -> None:
    session = ready()
    events = feed(session, Bye(reason="shutdown"))
    assert events == [Bye(reason="shutdown")]
    assert session.ending is not None and session.ending.retry
    session = ready()
    feed(session, Bye(reason="quit"))
    assert session.ending is not None and not session.ending.retry


@pytest.mark.parametrize("line", [b"not json\n", b'{"type":"message","text":"\xff"}\n'])
def test_a_line_that_is_not_json_after_welcome_ends_the_connection(line: bytes) -> None:
    session = ready()
    session.receive_data(line)
    session.events_received()
    assert session.ending is not None and session.ending.retry
    assert session.ending.reason.startswith("the server sent an unreadable line")


def test_an_unknown_message_type_after_welcome_is_skipped() -> None:
    session = ready()
    session.receive_data(b'{"type":"edited","room":"lobby","seq":1}\n')
    assert session.events_received() == []
    assert session.state is State.READY


def test_repr_does_not_show_the_password() -> None:
    assert "sesame" not in repr(ClientSession("alice", password="sesame"))


# -- requests and replies ------------------------------------------------------------------


REPLIES: list[tuple[str, BaseModel]] = [
    ("part", Ack(re="")),
    ("dm", Ack(re="")),
    ("nick", Ack(re="")),
    ("topic", Ack(re="")),
    ("who", Members(room="lobby", members=["alice"])),
    ("rooms", RoomList(rooms=[RoomSummary(room="lobby", topic="", members=1)])),
    ("ping", ServerPong()),
    ("history", HistoryPage(room="lobby", messages=[msg(1)], more=False)),
]


def _send(session: ClientSession, kind: str) -> str:
    senders: dict[str, Callable[[], str]] = {
        "part": lambda: session.send_part("lobby"),
        "dm": lambda: session.send_dm("bob", "hi"),
        "nick": lambda: session.send_nick("Alice2"),
        "topic": lambda: session.send_topic("lobby", "news"),
        "who": lambda: session.send_who("lobby"),
        "rooms": session.send_rooms,
        "ping": session.send_ping,
        "history": lambda: session.send_history("lobby"),
    }
    return senders[kind]()


@pytest.mark.parametrize(("kind", "reply"), REPLIES)
def test_every_request_completes_with_its_one_reply(kind: str, reply: BaseModel) -> None:
    session = ready()
    joined(session)
    request_id = _send(session, kind)
    [request] = sent(session)
    wire_id = request.id
    assert wire_id is not None
    events = feed(session, reply.model_copy(update={"re": wire_id}))
    [done] = only(events, Completed)
    assert isinstance(done, Completed) and done.request_id == request_id
    assert type(done.reply) is type(reply)
    assert feed(session, reply.model_copy(update={"re": wire_id})) == []  # one reply per id


def test_part_forgets_the_room_and_nick_follows_the_ack() -> None:
    session = ready()
    joined(session)
    _send(session, "part")
    [part] = sent(session)
    feed(session, Ack(re=part.id or ""))
    assert session.tracker.rooms == {}
    _send(session, "nick")
    [nick] = sent(session)
    feed(session, Ack(re=nick.id or ""))
    assert session.nick == "Alice2"


@pytest.mark.parametrize(("kind", "_reply"), REPLIES)
def test_every_request_fails_with_the_error_code_of_its_error(kind: str, _reply: BaseModel) -> None:
    session = ready()
    joined(session)
    request_id = _send(session, kind)
    [request] = sent(session)
    events = feed(session, ErrorReply(code="rate_limited", message="slow down", re=request.id))
    [failed] = only(events, Failed)
    assert isinstance(failed, Failed) and failed.request_id == request_id
    assert isinstance(failed.error, RequestError)
    assert failed.error.code is ErrorCode.RATE_LIMITED


def test_an_error_code_the_library_does_not_know_keeps_the_servers_string() -> None:
    session = ready()
    request_id = session.send_who("lobby")
    [who] = sent(session)
    [failed] = feed(session, ErrorReply(code="teleported", message="go away", re=who.id))
    assert isinstance(failed, Failed) and failed.request_id == request_id
    assert isinstance(failed.error, RequestError)
    assert failed.error.code is ErrorCode.INTERNAL and failed.error.wire_code == "teleported"


def test_a_reply_of_the_wrong_type_fails_the_request() -> None:
    session = ready()
    session.send_who("lobby")
    [who] = sent(session)
    [failed] = feed(session, Ack(re=who.id or ""))
    assert isinstance(failed, Failed) and isinstance(failed.error, RequestError)
    assert failed.error.code is ErrorCode.INTERNAL


def test_an_error_for_no_request_is_an_event() -> None:
    session = ready()
    stray = ErrorReply(code="line_too_long", message="too long")
    assert feed(session, stray) == [stray]
    unknown = ErrorReply(code="not_in_room", message="no", re="nobody")
    assert feed(session, unknown) == [unknown]


def test_a_bad_request_is_refused_locally_with_the_servers_code() -> None:
    session = ready()
    with pytest.raises(RequestError) as refused:
        session.send_say("Not A Room", "hi")
    assert refused.value.code is ErrorCode.INVALID_ROOM
    with pytest.raises(RequestError) as refused:
        session.send_say("lobby", "bell \x07")
    assert refused.value.code is ErrorCode.INVALID_TEXT
    with pytest.raises(RequestError) as refused:
        session.send_history("lobby", limit=0)
    assert refused.value.code is ErrorCode.INVALID_MESSAGE
    assert sent(session) == []


def test_requests_need_a_registered_connection() -> None:
    session = ClientSession("alice")
    with pytest.raises(NotConnectedError):
        session.send_who("lobby")


def test_server_ping_is_answered_with_its_token() -> None:
    session = ready()
    feed(session, ServerPing(token="t1"))
    assert sent(session) == [Pong(token="t1")]


def test_own_nick_follows_a_nick_event() -> None:
    session = ready()
    change = NickChanged(old="ALICE", new="alice_", ts=TS)
    assert feed(session, change) == [change]
    assert session.nick == "alice_"


# -- join, replay, catch-up and dedupe -----------------------------------------------------


def test_join_completes_after_its_replay_and_pages_on_while_more() -> None:
    session = ready()
    request_id = session.send_join("#lobby")
    [join] = sent(session)
    assert join == Join(room="lobby", id=request_id)
    info = RoomInfo(room="lobby", topic="", members=["alice"], re=request_id)
    events = feed(session, info, HistoryPage(room="lobby", messages=[msg(1), msg(2)], more=True))
    assert events == [msg(1), msg(2), info]  # the replay first, then the room as it is
    [page] = sent(session)
    assert isinstance(page, GetHistory)
    assert (page.after, page.limit) == (2, HISTORY_PAGE)
    # A live message during the catch-up waits until the gap is filled, then comes once.
    assert feed(session, msg(4)) == []
    last = HistoryPage(room="lobby", messages=[msg(3), msg(4)], more=False, re=page.id)
    events = feed(session, last)
    assert events == [msg(3), msg(4), Completed(request_id, info)]


def test_a_second_join_of_the_same_room_shares_the_first() -> None:
    session = ready()
    first = session.send_join("lobby")
    assert session.send_join("#lobby") == first
    assert len(sent(session)) == 1


def test_reconnect_rejoins_with_since_and_drops_duplicates() -> None:
    session = ready()
    joined(session, "lobby", msg(1), msg(2))
    joined(session, "dev", msg(1, room="dev"))
    rejoins = reconnect(session)
    assert [(j.room, j.since) for j in rejoins if isinstance(j, Join)] == [("lobby", 2), ("dev", 1)]
    lobby = next(j for j in rejoins if isinstance(j, Join) and j.room == "lobby")
    info = RoomInfo(room="lobby", topic="", members=["alice"], re=lobby.id)
    events = feed(
        session, info, HistoryPage(room="lobby", messages=[msg(2), msg(3)], more=False), msg(3)
    )
    assert [e for e in events if isinstance(e, ChatMessage)] == [msg(3)]


def test_requests_in_flight_fail_when_the_connection_drops() -> None:
    session = ready()
    request_id = session.send_who("lobby")
    session.receive_eof()
    [failed] = session.events_received()
    assert isinstance(failed, Failed) and failed.request_id == request_id
    assert isinstance(failed.error, NotConnectedError)
    assert session.ending is not None and session.ending.retry


def test_a_first_join_cut_by_a_drop_fails_and_is_not_rejoined() -> None:
    session = ready()
    request_id = session.send_join("lobby")
    session.receive_eof()
    [failed] = session.events_received()
    assert isinstance(failed, Failed) and failed.request_id == request_id
    assert not [m for m in reconnect(session) if isinstance(m, Join)]


def test_a_refused_rejoin_is_shown_and_fails_the_says_waiting_for_it() -> None:
    session = ready()
    joined(session, "lobby", msg(1))
    say_id = session.send_say("lobby", "hi")
    sent(session)
    [rejoin] = [m for m in reconnect(session) if isinstance(m, Join)]
    events = feed(session, ErrorReply(code="rate_limited", message="slow down", re=rejoin.id))
    shown = only(events, ErrorReply)
    assert shown and "could not rejoin #lobby" in shown[0].message
    assert [f.request_id for f in only(events, Failed)] == [say_id, rejoin.id]


# -- say retry ------------------------------------------------------------------------------


def _rejoin(session: ClientSession, *replay: ChatMessage) -> list[SessionEvent]:
    [rejoin] = [m for m in reconnect(session) if isinstance(m, Join)]
    info = RoomInfo(room="lobby", topic="", members=["alice"], re=rejoin.id)
    return feed(session, info, HistoryPage(room="lobby", messages=list(replay), more=False))


def test_a_say_whose_ack_was_lost_is_not_resent_when_the_replay_has_it() -> None:
    session = ready()
    joined(session, "lobby", msg(1))
    say_id = session.send_say("lobby", "hello")
    assert sent(session) == [Say(room="lobby", text="hello", id=say_id)]
    events = _rejoin(session, msg(2, "hello", sender="Alice"))
    assert Completed(say_id, Ack(re=say_id, seq=2)) in events
    assert sent(session) == []


def test_a_say_the_server_never_got_is_sent_again_after_the_rejoin() -> None:
    session = ready()
    joined(session, "lobby", msg(1))
    say_id = session.send_say("lobby", "hello")
    sent(session)
    _rejoin(session, msg(2, "other"))
    assert sent(session) == [Say(room="lobby", text="hello", id=say_id)]
    [done] = feed(session, Ack(re=say_id, seq=3))
    assert done == Completed(say_id, Ack(re=say_id, seq=3))


def test_a_say_seen_live_before_the_drop_completes_with_that_seq() -> None:
    session = ready()
    joined(session, "lobby", msg(1))
    say_id = session.send_say("lobby", "hello")
    sent(session)
    feed(session, msg(2, "hello", sender="alice"))
    session.receive_eof()
    assert Completed(say_id, Ack(re=say_id, seq=2)) in session.events_received()


def test_a_say_made_while_disconnected_waits_for_the_rejoin() -> None:
    session = ready()
    joined(session, "lobby", msg(1))
    session.receive_eof()
    session.events_received()
    say_id = session.send_say("lobby", "later")
    assert sent(session) == []
    _rejoin(session)
    assert sent(session) == [Say(room="lobby", text="later", id=say_id)]


def test_close_fails_every_open_request_and_say() -> None:
    session = ready()
    joined(session)
    who = session.send_who("lobby")
    say = session.send_say("lobby", "bye")
    session.close()
    failed = session.events_received()
    assert {f.request_id for f in failed if isinstance(f, Failed)} == {who, say}
    with pytest.raises(NotConnectedError):
        session.send_say("lobby", "after close")


# -- bounded paging and long lines ----------------------------------------------------------


def test_a_long_history_request_is_paged_backwards_and_merged() -> None:
    session = ready()
    request_id = session.send_history("lobby", limit=120)
    top = 1000
    pages: list[tuple[int | None, int]] = []
    while True:
        requests = sent(session)
        if not requests:
            break
        [request] = requests
        assert isinstance(request, GetHistory) and request.after is None
        pages.append((request.before, request.limit))
        newest = (request.before or top + 1) - 1
        seqs = range(newest - request.limit + 1, newest + 1)
        events = feed(
            session,
            HistoryPage(room="lobby", messages=[msg(s) for s in seqs], more=True, re=request.id),
        )
    assert pages == [(None, 50), (951, 50), (901, 20)]
    [done] = events
    assert isinstance(done, Completed) and done.request_id == request_id
    assert isinstance(done.reply, HistoryPage) and done.reply.more
    assert [m.seq for m in done.reply.messages] == list(range(881, 1001))


def test_a_forward_history_request_stops_at_the_end() -> None:
    session = ready()
    request_id = session.send_history("lobby", after=10, limit=500)
    [first] = sent(session)
    assert isinstance(first, GetHistory) and (first.after, first.limit) == (10, HISTORY_PAGE)
    page = [msg(s) for s in range(11, 61)]
    feed(session, HistoryPage(room="lobby", messages=page, more=True, re=first.id))
    [second] = sent(session)
    assert isinstance(second, GetHistory) and second.after == 60
    [done] = feed(session, HistoryPage(room="lobby", messages=[msg(61)], more=False, re=second.id))
    assert isinstance(done, Completed) and done.request_id == request_id
    assert isinstance(done.reply, HistoryPage) and not done.reply.more
    assert [m.seq for m in done.reply.messages] == list(range(11, 62))


def test_a_long_join_replay_is_validated_in_slices() -> None:
    session = ready()
    request_id = session.send_join("lobby")
    sent(session)
    feed(session, RoomInfo(room="lobby", topic="", members=["alice"], re=request_id))
    replay = [msg(s, "x" * 100) for s in range(1, 5001)]
    session.receive_data(encode(HistoryPage(room="lobby", messages=replay, more=False)))
    calls, delivered = 0, []
    while session.has_pending_input:
        calls += 1
        delivered += session.next_events(budget=500)
    assert calls >= 10  # 5,000 messages, 500 per call
    assert [m for m in delivered if isinstance(m, ChatMessage)] == replay
    assert isinstance(delivered[-1], Completed)


def test_a_broken_long_page_keeps_its_good_part_and_pages_on() -> None:
    session = ready()
    request_id = session.send_join("lobby")
    sent(session)
    feed(session, RoomInfo(room="lobby", topic="", members=["alice"], re=request_id))
    good = b",".join(encode(msg(s, "y" * 200))[:-1] for s in range(1, 2001))
    line = (
        b'{"type":"history","room":"lobby","more":false,"messages":[' + good + b',{"seq":"x"}]}\n'
    )
    session.receive_data(line)
    events = session.events_received()
    assert len(only(events, ChatMessage)) == 2000
    [catch_up] = sent(session)
    assert isinstance(catch_up, GetHistory) and catch_up.after == 2000


# -- the byte stream may be cut anywhere -----------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=30))
def test_events_do_not_depend_on_how_the_bytes_are_cut(cuts: list[int]) -> None:
    def run(chunks: list[bytes]) -> list[SessionEvent]:
        session = ClientSession("alice")
        session.connection_opened()
        events: list[SessionEvent] = []
        for chunk in chunks:
            session.receive_data(chunk)
            events += session.events_received()
            sent(session)  # ids are deterministic: the same stream answers both runs
        return events

    stream = b"".join(
        encode(m)
        for m in [
            ServerHello(server="test"),
            Welcome(nick="alice", rooms=["lobby"], re="register"),
            ServerPing(token="t"),
            msg(1, "live\nline", room="dev"),
            ErrorReply(code="rate_limited", message="slow"),
            NickChanged(old="alice", new="alice2", ts=TS),
        ]
    ).replace(b"\n", b"\r\n", 2)
    points = sorted({min(cut, len(stream)) for cut in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    assert run(chunks) == run([stream])
    assert len(run([stream])) == 4


def test_a_long_room_list_completes_its_request() -> None:
    session = ready()
    request_id = session.send_rooms()
    [request] = sent(session)
    rooms = [RoomSummary(room=f"r{n}", topic="t" * 50, members=n) for n in range(8000)]
    session.receive_data(encode(RoomList(rooms=rooms, re=request.id)))
    calls, events = 0, []
    while session.has_pending_input:
        calls += 1
        events += session.next_events(budget=1000)
    assert calls >= 8
    [done] = events
    assert isinstance(done, Completed) and done.request_id == request_id
    assert isinstance(done.reply, RoomList) and done.reply.rooms == rooms


def test_a_room_typing_notice_has_no_id_and_waits_for_nothing() -> None:
    session = ready()
    sent(session)
    session.send_typing_notice("active", "lobby")
    session.send_typing_notice("active", "lobby")
    lines = session.data_to_send().splitlines()
    assert len(lines) == 2 and lines[0] == lines[1]  # the same bytes: the server decodes once
    first = decode_client_line(lines[0])
    assert isinstance(first, Typing) and first.id is None and first.room == "lobby"
    assert feed(session, Ack(re="c-1")) == []  # nothing was waiting for an answer
    with pytest.raises(NotConnectedError):
        ClientSession("alice").send_typing_notice("active", "lobby")
