"""ClientSession without sockets: edits, deletes, reactions and the `changed_since` resume."""

from __future__ import annotations

from chat_client.events import MessageUpdated
from chat_client.message_view import MessageView
from chat_client.session import ClientSession, Completed
from protocol import (
    Ack,
    ChatMessage,
    DeleteMessage,
    EditMessage,
    GetHistory,
    HistoryPage,
    Join,
    MessageDeleted,
    MessageEdited,
    React,
    ReactionChanged,
    RoomInfo,
    Say,
    Typing,
)
from tests.client.test_session import TS, feed, ready, reconnect, sent


def msg(seq: int, rev: int, text: str = "", **extra: object) -> ChatMessage:
    return ChatMessage.model_validate(
        {
            "room": "lobby",
            "seq": seq,
            "from": "bob",
            "text": text or f"m{seq}",
            "ts": TS,
            "rev": rev,
            **extra,
        }
    )


def edited(seq: int, rev: int, text: str) -> MessageEdited:
    return MessageEdited(room="lobby", seq=seq, text=text, by="bob", ts=TS, rev=rev)


def reacted(seq: int, rev: int, emoji: str = "👍", removed: bool = False) -> ReactionChanged:
    return ReactionChanged(
        room="lobby", seq=seq, emoji=emoji, nick="bob", removed=removed, ts=TS, rev=rev
    )


def in_lobby(session: ClientSession, *history: ChatMessage) -> None:
    request_id = session.send_join("lobby")
    sent(session)
    feed(
        session,
        RoomInfo(room="lobby", topic="", members=[session.nick], re=request_id),
        HistoryPage(room="lobby", messages=list(history), more=False),
    )


def test_requests_go_out_and_complete_with_their_ack() -> None:
    session = ready()
    in_lobby(session, msg(1, 1))
    ids = [
        session.send_edit("lobby", 1, "new"),
        session.send_delete("lobby", 1),
        session.send_react("lobby", 1, "👍", remove=True),
        session.send_typing("active", room="lobby"),
        session.send_say("lobby", "answer", reply_to=1),
    ]
    out = sent(session)
    assert isinstance(out[0], EditMessage) and out[0].text == "new"
    assert isinstance(out[1], DeleteMessage) and out[1].seq == 1
    assert isinstance(out[2], React) and out[2].remove and out[2].emoji == "👍"
    assert isinstance(out[3], Typing) and out[3].state == "active"
    assert isinstance(out[4], Say) and out[4].reply_to == 1
    events = feed(session, *(Ack(re=request_id) for request_id in ids[:4]))
    assert [e.request_id for e in events if isinstance(e, Completed)] == ids[:4]


def test_live_changes_are_events_and_a_repeat_is_dropped() -> None:
    session = ready()
    in_lobby(session, msg(1, 1), msg(2, 2))
    events = feed(session, edited(1, 3, "x"), edited(1, 3, "x"), reacted(2, 4))
    assert [type(e) for e in events] == [MessageEdited, ReactionChanged]
    deleted = MessageDeleted(room="lobby", seq=2, by="bob", ts=TS, rev=5)
    assert feed(session, deleted, reacted(2, 4)) == [deleted]


def test_a_rejoin_resumes_with_changed_since_and_delivers_each_change_once() -> None:
    session = ready()
    view = MessageView()
    history = [msg(1, 1), msg(2, 2), msg(3, 3)]
    in_lobby(session, *history)
    for event in [*history, *feed(session, reacted(2, 4))]:
        view.apply(event)
    out = reconnect(session)
    join = next(m for m in out if isinstance(m, Join))
    assert join.changed_since == 4 and join.since is None
    # The server's reply: old messages that changed, new ones, in rev order, in two pages.
    first = HistoryPage(
        room="lobby",
        messages=[msg(5, 6, "new five"), msg(1, 7, "edited one", edited=TS)],
        more=True,
    )
    events = feed(session, RoomInfo(room="lobby", topic="", members=["alice"], re=join.id), first)
    assert not [e for e in events if isinstance(e, ChatMessage | MessageUpdated)]  # gathering
    page_on = sent(session)
    assert isinstance(page_on[0], GetHistory) and page_on[0].changed_since == 7
    live = [edited(4, 9, "four live")]  # arrives while the pages are gathered: waits
    events += feed(session, *live)
    second = HistoryPage(room="lobby", messages=[msg(4, 8, "four")], more=False, re=page_on[0].id)
    events += feed(session, second)
    for event in events:
        view.apply(event)
    new = [e.seq for e in events if isinstance(e, ChatMessage)]
    assert new == [4, 5]  # seq order, each once
    updated = [e.message.seq for e in events if isinstance(e, MessageUpdated)]
    assert updated == [1]
    assert [e.rev for e in events if isinstance(e, MessageEdited)] == [9]  # after the replay
    texts = {m.seq: m.text for m in view.messages("lobby")}
    assert texts == {1: "edited one", 2: "m2", 3: "m3", 4: "four live", 5: "new five"}
    assert view.messages("lobby")[1].reactions == {"👍": ["bob"]}
    assert session.tracker.resume_rev("lobby") == 9
