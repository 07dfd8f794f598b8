"""The presenter's rules, with no Textual and no sockets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chat_client.events import Connected, Disconnected
from chat_client.tui.entries import Kind
from chat_client.tui.presenter import Presenter
from protocol import (
    AwayChanged,
    ChatMessage,
    DirectMessage,
    DmHistoryPage,
    HistoryPage,
    Joined,
    Left,
    NickChanged,
    ReadMarker,
    RoomInfo,
)

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def ts(minutes_ago: float = 0) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")


def message(seq: int, sender: str, text: str, room: str = "lobby", ago: float = 0) -> ChatMessage:
    return ChatMessage(room=room, seq=seq, sender=sender, text=text, ts=ts(ago))


def joined_presenter(*rooms: str) -> Presenter:
    presenter = Presenter("alice", clock=lambda: NOW)
    presenter.apply([Connected("alice", "srv", "", rooms)])
    for room in rooms:
        presenter.apply(
            [
                RoomInfo(room=room, topic="", members=["alice"]),
                Joined(room=room, nick="alice", ts=ts()),
            ]
        )
    return presenter


def test_a_first_joins_backlog_is_read_and_rings_nothing() -> None:
    presenter = Presenter("alice", clock=lambda: NOW)
    presenter.conversations.get("#lobby")
    presenter.conversations.get("#ops")
    changes = presenter.apply(
        [
            message(1, "bob", "ALICE, lunch?", room="ops", ago=9),
            message(2, "alice", "mine", room="ops", ago=8),
            Joined(room="ops", nick="alice", ts=ts()),
            RoomInfo(room="ops", topic="", members=["alice", "bob"]),
        ]
    )
    ops = presenter.conversations.get("#ops")
    assert (ops.unread, ops.mentioned, changes.ring, ops.read_seq) == (0, False, 0, 2)
    changes = presenter.apply([message(3, "bob", "alice: now?", room="ops")])
    assert (ops.unread, ops.mentioned, changes.ring) == (1, True, 1)


def test_after_a_drop_missed_lines_are_unread_but_silent() -> None:
    presenter = joined_presenter("lobby", "ops")
    presenter.apply([message(1, "bob", "seen", room="ops")])
    presenter.apply([Disconnected("gone", 1.0), Connected("alice", "srv", "", ())])
    changes = presenter.apply(
        [message(2, "bob", "alice: missed", room="ops"), Joined(room="ops", nick="alice", ts=ts())]
    )
    ops = presenter.conversations.get("#ops")
    assert (ops.unread, ops.mentioned, changes.ring) == (2, True, 0)


def test_own_lines_never_count_and_a_stored_marker_holds() -> None:
    presenter = Presenter("alice", clock=lambda: NOW)
    presenter.conversations.get("#lobby")
    ops = presenter.conversations.get("#ops")
    ops.read_seq = 5  # from the settings file
    presenter.apply(
        [message(n, "bob", f"m{n}", room="ops", ago=30) for n in range(3, 9)]
        + [message(9, "alice", "mine", room="ops", ago=1)]
    )
    assert ops.unread == 3  # 6, 7, 8


def test_the_bell_in_view_depends_on_terminal_focus() -> None:
    presenter = joined_presenter("lobby")
    assert presenter.apply([message(1, "bob", "alice hi")]).ring == 0
    presenter.focused = False
    assert presenter.apply([message(2, "bob", "alice hi")]).ring == 1
    presenter.bell = False
    assert presenter.apply([message(3, "bob", "alice hi")]).ring == 0


def test_old_messages_in_a_late_replay_page_ring_nothing() -> None:
    presenter = joined_presenter("lobby", "dev")
    assert presenter.apply([message(1, "bob", "alice?", room="dev", ago=60)]).ring == 0
    assert presenter.conversations.get("#dev").unread == 1


def test_a_pending_line_is_replaced_by_the_servers_copy() -> None:
    presenter = joined_presenter("lobby")
    entry = presenter.typed("#lobby", "hello")
    lobby = presenter.conversations.get("#lobby")
    assert lobby.pending == [entry] and entry.pending
    changes = presenter.apply([message(1, "alice", "hello")])
    assert lobby.pending == [] and changes.pending
    assert [e.text for e in lobby.entries if e.is_message] == ["hello"]
    assert presenter.acked("#lobby", entry, 1) is False


def test_an_ack_before_the_echo_keeps_one_copy() -> None:
    presenter = joined_presenter("lobby")
    entry = presenter.typed("#lobby", "hi")
    assert presenter.acked("#lobby", entry, 4) is True
    presenter.apply([message(3, "bob", "between"), message(4, "alice", "hi")])
    lobby = presenter.conversations.get("#lobby")
    assert lobby.pending == []
    assert [e.text for e in lobby.entries if e.is_message] == ["between", "hi"]


def test_a_refused_line_becomes_an_error() -> None:
    presenter = joined_presenter("lobby")
    entry = presenter.typed("#lobby", "x")
    presenter.refused("#lobby", entry, "too fast")
    lobby = presenter.conversations.get("#lobby")
    assert lobby.pending == []
    assert [(e.kind, e.failed) for e in lobby.entries][-2:] == [
        (Kind.CHAT, True),
        (Kind.ERROR, False),
    ]


def test_nick_changes_rename_the_dm_and_our_status() -> None:
    presenter = joined_presenter("lobby")
    presenter.apply(
        [
            Joined(room="lobby", nick="bob", ts=ts()),
            DirectMessage(sender="bob", to="alice", text="psst", ts=ts()),
        ]
    )
    presenter.show("@bob")
    presenter.apply([NickChanged(old="bob", new="bobby", ts=ts())])
    assert presenter.conversations.current == "@bobby"
    assert list(presenter.conversations.by_key) == ["#lobby", "@bobby"]
    assert presenter.conversations.get("#lobby").members == ["alice", "bobby"]
    changes = presenter.apply([NickChanged(old="alice", new="alice2", ts=ts())])
    assert presenter.nick == "alice2" and changes.status


def test_a_restart_is_two_lines_not_a_part_and_join_per_person() -> None:
    presenter = joined_presenter("lobby")
    presenter.apply([Joined(room="lobby", nick="bob", ts=ts())])
    presenter.apply(
        [
            Left(room="lobby", nick="bob", reason="shutdown", ts=ts()),
            Disconnected("the server said bye: shutdown", 0.5),
            Connected("alice", "srv", "", ("lobby",)),
            RoomInfo(room="lobby", topic="", members=["alice"]),
            Joined(room="lobby", nick="alice", ts=ts()),
            Joined(room="lobby", nick="bob", ts=ts()),
            Joined(room="lobby", nick="carol", ts=ts()),
        ]
    )
    texts = [e.text for e in presenter.conversations.get("#lobby").entries]
    assert texts == [
        "bob joined #lobby",
        "disconnected: the server said bye: shutdown",
        "reconnected",
        "carol joined #lobby",
    ]


def test_duplicate_members_are_listed_once() -> None:
    presenter = joined_presenter("lobby")
    presenter.apply([RoomInfo(room="lobby", topic="", members=["bob", "bob", "Bob", "alice"])])
    assert presenter.conversations.get("#lobby").members == ["alice", "Bob"]


def test_older_pages_are_never_unread_and_never_repeat() -> None:
    presenter = joined_presenter("lobby")
    presenter.apply([message(n, "bob", f"m{n}") for n in range(101, 151)])
    page = HistoryPage(
        room="lobby", messages=[message(n, "bob", f"m{n}") for n in range(1, 120)], more=False
    )
    added = presenter.older_page("#lobby", page)
    assert [e.seq for e in added] == list(range(1, 101))
    lobby = presenter.conversations.get("#lobby")
    assert lobby.unread == 0 and lobby.older_exhausted


def test_a_final_disconnect_is_reported() -> None:
    presenter = joined_presenter("lobby")
    changes = presenter.apply([Disconnected("wrong or missing password (auth_failed)", None)])
    assert changes.final is not None and "disconnected" in presenter.status.text


def test_unknown_events_are_ignored() -> None:
    presenter = joined_presenter("lobby")
    assert presenter.apply([object()]).appended == []


def test_a_nick_taken_on_reconnect_is_said_in_every_room() -> None:
    presenter = joined_presenter("lobby", "dev")
    presenter.apply([Disconnected("the connection dropped", 0.1)])
    reason = "the nick alice is taken (nick_taken)"
    refused = "connection refused"  # another node of the chat, tried in between
    presenter.apply(
        [Disconnected(reason, 0.2), Disconnected(refused, 0.3), Disconnected(reason, 0.4)]
    )  # said once
    for key in ("#lobby", "#dev"):
        texts = [e.text for e in presenter.conversations.get(key).entries]
        assert sum("someone else is using alice" in t for t in texts) == 1


def test_dropped_events_are_said_and_ask_for_a_catch_up() -> None:
    from chat_client.events import Lagged

    presenter = joined_presenter("lobby")
    changes = presenter.apply([Lagged(dropped=1234)])
    assert changes.lagged
    assert "skipped 1,234 events" in presenter.conversations.get("#lobby").entries[-1].text


# -- version 2: read markers, stored DMs, away ------------------------------------


def account_presenter(*rooms: str) -> Presenter:
    presenter = Presenter("alice", clock=lambda: NOW)
    for room in rooms:
        presenter.conversations.get("#" + room)
    presenter.apply([Connected("alice", "srv", "", rooms, account=True)])
    return presenter


def dm(seq: int, sender: str, text: str, ago: float = 0) -> DirectMessage:
    to = "alice" if sender != "alice" else "bob"
    return DirectMessage(sender=sender, to=to, text=text, ts=ts(ago), seq=seq)


def test_an_accounts_backlog_is_unread_above_the_servers_marker() -> None:
    presenter = account_presenter("lobby", "ops")
    replay: list[object] = [message(n, "bob", f"m{n}", room="ops", ago=30) for n in range(1, 6)]
    changes = presenter.apply(
        [
            *replay,
            RoomInfo(room="ops", topic="", members=["alice", "bob"], read=3),
            Joined(room="ops", nick="alice", ts=ts()),
        ]
    )
    ops = presenter.conversations.get("#ops")
    assert (ops.unread, ops.read_seq, ops.synced_seq, ops.line_seq) == (2, 3, 3, 3)
    assert changes.ring == 0


def test_a_read_event_moves_the_marker_forward_only() -> None:
    presenter = account_presenter("lobby", "ops")
    presenter.apply([message(n, "bob", f"alice {n}", room="ops") for n in range(1, 5)])
    ops = presenter.conversations.get("#ops")
    assert (ops.unread, ops.mentioned) == (4, True)
    presenter.apply([ReadMarker(room="ops", seq=3)])
    assert (ops.unread, ops.mentioned, ops.read_seq, ops.line_seq) == (1, True, 3, 3)
    presenter.apply([ReadMarker(room="ops", seq=1)])
    assert (ops.unread, ops.read_seq, ops.line_seq) == (1, 3, 3)
    changes = presenter.apply([ReadMarker(room="ops", seq=4)])
    assert (ops.unread, ops.mentioned) == (0, False) and changes.rooms
    lobby = presenter.conversations.get("#lobby")  # in view: the line moves, and it says so
    assert presenter.apply([ReadMarker(room="lobby", seq=2)]).marker
    assert lobby.line_seq == 2


def test_stored_dms_count_above_the_marker_and_merge_with_their_history() -> None:
    presenter = account_presenter("lobby")
    conversation = presenter.conversations.dm("bob")
    conversation.read_seq = 2  # read here before
    presenter.apply([dm(4, "bob", "four"), dm(5, "bob", "five")])  # offline, after welcome
    assert conversation.unread == 2
    page = DmHistoryPage.model_validate(
        {
            "type": "history",
            "with": "bob",
            "more": False,
            "messages": [
                dm(n, "bob" if n != 3 else "alice", f"n{n}", ago=60).model_dump(by_alias=True)
                for n in range(1, 6)
            ],
        }
    )
    changes = presenter.dm_page(page)
    assert [e.seq for e in conversation.entries] == [1, 2, 3, 4, 5]
    assert conversation.unread == 2 and changes.ring == 0
    presenter.apply([dm(5, "bob", "five")])  # the same DM again (a catch-up): shown once
    assert len(conversation.entries) == 5
    presenter.apply([ReadMarker.model_validate({"type": "read", "with": "bob", "seq": 5})])
    assert conversation.unread == 0


def test_a_dm_page_brings_the_marker_set_on_another_machine() -> None:
    presenter = account_presenter("lobby")
    page = DmHistoryPage.model_validate(
        {
            "type": "history",
            "with": "bob",
            "more": False,
            "read": 2,
            "messages": [
                dm(n, "bob", f"n{n}", ago=60).model_dump(by_alias=True) for n in range(1, 4)
            ],
        }
    )
    presenter.dm_page(page)
    conversation = presenter.conversations.dm("bob")
    assert (conversation.read_seq, conversation.unread) == (2, 1)


def test_in_view_without_focus_nothing_is_read_and_the_line_stays() -> None:
    presenter = account_presenter("lobby")
    lobby = presenter.conversations.get("#lobby")
    presenter.apply([message(1, "bob", "seen")])
    assert lobby.read_seq == 1
    assert presenter.blurred().marker and lobby.line_seq == 1
    presenter.focused = False
    presenter.apply([message(2, "bob", "while away")])
    assert (lobby.read_seq, lobby.unread) == (1, 0)
    assert presenter.seen("#lobby") and lobby.read_seq == 2 and lobby.line_seq == 1


def test_who_is_away_and_our_own_away_text() -> None:
    presenter = account_presenter("lobby")
    presenter.apply(
        [RoomInfo(room="lobby", topic="", members=["alice", "Bob", "carol"], away={"Bob": "lunch"})]
    )
    assert presenter.away == {"bob": "lunch"}
    changes = presenter.apply(
        [AwayChanged(nick="carol", text="meeting"), AwayChanged(nick="Bob", text=None)]
    )
    assert presenter.away == {"carol": "meeting"} and changes.details
    changes = presenter.apply([AwayChanged(nick="alice", text="idle")])
    assert presenter.status.away == "idle" and changes.status
    presenter.apply([RoomInfo(room="lobby", topic="", members=["alice", "carol"], away={})])
    assert presenter.away == {}  # the room's own list wins for its members
