"""Changes to messages and typing in the presenter (pure), and the log redrawing one
entry (real Textual, no network)."""

from __future__ import annotations

from textual.app import App, ComposeResult

from chat_client.events import MessageUpdated
from chat_client.tui.conversations import MAX_ENTRIES
from chat_client.tui.entries import Entry, Kind
from chat_client.tui.presenter import Presenter
from chat_client.tui.widgets import MessageLog
from protocol import (
    ChatMessage,
    HistoryPage,
    MessageDeleted,
    MessageEdited,
    ReactionChanged,
    TypingNotice,
)

from .test_presenter import joined_presenter, message, ts


def lobby_entry(presenter: Presenter, seq: int) -> Entry:
    found = presenter.conversations.get("#lobby").find(seq)
    assert found is not None
    return found


def test_edit_delete_and_reactions_change_the_entry_in_place() -> None:
    presenter = joined_presenter("lobby")
    presenter.apply([message(1, "bob", "helo"), message(2, "carol", "hi alice")])
    changes = presenter.apply(
        [MessageEdited(room="lobby", seq=1, text="hello", by="bob", ts=ts(), rev=3)]
    )
    first = lobby_entry(presenter, 1)
    assert (first.text, first.edited) == ("hello", True)
    assert changes.updated == [first] and not changes.appended
    presenter.apply(
        [
            ReactionChanged(
                room="lobby", seq=1, emoji="👍", nick="carol", removed=False, ts=ts(), rev=4
            ),
            ReactionChanged(
                room="lobby", seq=1, emoji="👍", nick="alice", removed=False, ts=ts(), rev=5
            ),
            ReactionChanged(
                room="lobby", seq=1, emoji="🎉", nick="carol", removed=False, ts=ts(), rev=6
            ),
            ReactionChanged(
                room="lobby", seq=1, emoji="🎉", nick="carol", removed=True, ts=ts(), rev=7
            ),
        ]
    )
    assert first.reactions == {"👍": ["carol", "alice"]} and first.mine == {"👍"}
    second = lobby_entry(presenter, 2)
    assert second.mention
    presenter.apply([MessageDeleted(room="lobby", seq=2, by="carol", ts=ts(), rev=8)])
    assert second.deleted and second.text == "" and not second.mention
    # Events for messages not in memory are left to history.
    assert not presenter.apply(
        [MessageEdited(room="lobby", seq=99, text="x", by="bob", ts=ts(), rev=9)]
    ).updated


def test_a_reply_quotes_its_original_and_follows_its_changes() -> None:
    presenter = joined_presenter("lobby")
    presenter.apply([message(1, "bob", "lunch?")])
    reply = ChatMessage(room="lobby", seq=2, sender="carol", text="yes", ts=ts(), reply_to=1)
    far = ChatMessage(room="lobby", seq=3, sender="carol", text="and", ts=ts(), reply_to=1)
    presenter.apply([reply, far])
    answer = lobby_entry(presenter, 2)
    assert answer.quote == "bob: lunch?"
    changes = presenter.apply(
        [MessageEdited(room="lobby", seq=1, text="lunch at 12?", by="bob", ts=ts(), rev=4)]
    )
    assert answer.quote == "bob: lunch at 12?" and answer in changes.updated
    assert lobby_entry(presenter, 3) in changes.updated  # every reply to it
    presenter.apply([MessageDeleted(room="lobby", seq=1, by="bob", ts=ts(), rev=5)])
    assert answer.quote == "bob: message deleted"
    lost = ChatMessage(room="lobby", seq=4, sender="carol", text="re", ts=ts(), reply_to=77)
    presenter.apply([lost])
    assert "reply to message 77 (not loaded" in lobby_entry(presenter, 4).quote


def test_a_resume_state_replaces_the_entry() -> None:
    presenter = joined_presenter("lobby")
    presenter.apply([message(1, "bob", "old")])
    state = ChatMessage(
        room="lobby", seq=1, sender="bob", text="new", ts=ts(), edited=ts(), rev=9,
        reactions={"❤": ["alice"]},
    )  # fmt: skip
    changes = presenter.apply([MessageUpdated(state)])
    entry = lobby_entry(presenter, 1)
    assert (entry.text, entry.edited, entry.reactions, entry.mine) == (
        "new", True, {"❤": ["alice"]}, frozenset({"❤"}),
    )  # fmt: skip
    assert changes.updated == [entry]


def test_around_page_goes_above_with_a_gap_line() -> None:
    presenter = joined_presenter("lobby")
    presenter.apply([message(50, "bob", "recent")])
    page = HistoryPage(
        room="lobby", messages=[message(9, "bob", "a"), message(10, "bob", "b")], more=True
    )
    added = presenter.around_page("#lobby", page)
    assert [e.seq for e in added] == [9, 10, None]
    assert added[-1].kind is Kind.NOTICE and "11 to 49 are not loaded" in added[-1].text
    assert presenter.conversations.get("#lobby").find(10) is added[1]


def test_the_gap_below_an_around_page_fills_page_by_page() -> None:
    presenter = joined_presenter("lobby")
    presenter.apply([message(50, "bob", "recent")])
    around = HistoryPage(room="lobby", messages=[message(9, "bob", "a")], more=True)
    presenter.around_page("#lobby", around)
    conversation = presenter.conversations.get("#lobby")
    assert conversation.gap_seqs == (10, 49)
    first = HistoryPage(room="lobby", messages=[message(s, "bob", "x") for s in range(10, 30)],
                        more=True)  # fmt: skip
    assert [e.seq for e in presenter.gap_page("#lobby", first)] == list(range(10, 30))
    assert conversation.gap_seqs == (30, 49)
    texts = [e.text for e in conversation.entries if e.seq is None]
    assert texts == ["messages 30 to 49 are not loaded here"]
    rest = HistoryPage(room="lobby", messages=[message(s, "bob", "x") for s in range(30, 55)],
                       more=False)  # fmt: skip
    added = presenter.gap_page("#lobby", rest)
    assert [e.seq for e in added] == list(range(30, 50))  # 50 and on were there already
    assert conversation.gap is None
    assert [e.seq for e in conversation.entries] == [9, *range(10, 50), 50]


def test_a_gap_is_kept_when_the_log_is_full() -> None:
    presenter = joined_presenter("lobby")
    presenter.apply([message(s, "bob", "x") for s in range(6000, 6000 + MAX_ENTRIES - 3)])
    around = HistoryPage(room="lobby", messages=[message(9, "bob", "a")], more=True)
    presenter.around_page("#lobby", around)
    page = HistoryPage(room="lobby", messages=[message(s, "bob", "x") for s in range(10, 20)],
                       more=True)  # fmt: skip
    assert [e.seq for e in presenter.gap_page("#lobby", page)] == [10]  # room for one
    conversation = presenter.conversations.get("#lobby")
    assert conversation.gap_seqs == (11, 5999) and len(conversation.entries) == MAX_ENTRIES


def test_who_is_typing_and_for_how_long() -> None:
    presenter = joined_presenter("lobby")
    clock = [0.0]
    presenter.monotonic = lambda: clock[0]

    def typing(nick: str, state: str) -> None:
        presenter.apply([TypingNotice(room="lobby", sender=nick, state=state)])

    typing("bob", "active")
    assert presenter.typing_line("#lobby") == "bob is typing…"
    typing("carol", "active")
    assert presenter.typing_line("#lobby") == "bob and carol are typing…"
    typing("dave", "active")
    assert presenter.typing_line("#lobby") == "bob, carol and dave are typing…"
    typing("erin", "active")
    assert presenter.typing_line("#lobby") == "bob, carol and 2 others are typing…"
    typing("erin", "done")
    presenter.apply([message(1, "dave", "here it is")])
    assert presenter.typing_line("#lobby") == "bob and carol are typing…"
    clock[0] = 3.0
    typing("carol", "paused")
    clock[0] = 6.5
    assert presenter.typing_line("#lobby") == "carol has stopped typing"
    clock[0] = 33.5
    assert presenter.typing_line("#lobby") == ""
    assert presenter.typing_line("#elsewhere") == ""


class LogApp(App[None]):
    def compose(self) -> ComposeResult:
        yield MessageLog(id="log")


async def test_the_log_redraws_only_the_entry_that_changed() -> None:
    entries = [Entry(Kind.CHAT, f"message {n}", None, "bob", n) for n in range(1, 11)]
    app = LogApp()
    async with app.run_test(size=(60, 20)) as pilot:
        log = app.query_one(MessageLog)
        log.show(entries)
        await pilot.pause(0.05)
        cached = set(log._strips.keys())
        assert len(cached) >= 10
        entries[4].text = "message 5, edited"
        entries[4].edited = True
        assert log.update_entry(entries[4])
        line = log.plain_lines.index("bob message 5, edited (edited)")
        width = log.scrollable_content_region.width
        assert set(log._strips.keys()) == cached - {(line, width)}  # the others stay cached
        await pilot.pause(0.05)
        assert (line, width) in log._strips  # drawn again
        # A change of height (reactions under it) moves the lines below.
        await pilot.pause(0.05)
        cached = set(log._strips.keys())
        entries[4].reactions = {"👍": ["carol"]}
        assert log.update_entry(entries[4])
        assert set(log._strips.keys()) == {key for key in cached if key[0] < line}
        assert log.plain_lines[line + 1].strip() == "👍 1"
        assert log.line_count == 11
        assert not log.update_entry(Entry(Kind.CHAT, "not shown", None, "x", 99))
