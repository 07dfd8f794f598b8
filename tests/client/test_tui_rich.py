"""Replies, edits, deletes, reactions and typing in the TUI, driven by Pilot against a
real server on loopback; bob is a raw version-2 client that sees what alice sends."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from textual.widgets import Input, Static

from chat_client.tui.app import ChatApp
from chat_client.tui.entries import Entry
from chat_client.tui.screens.message_actions import ConfirmDelete, ReactionPicker
from chat_server.server import ChatServer
from tests.conftest import StartServer
from tests.support import TIMEOUT, UNIT, LineClient, open_client

from .tui_support import (
    FAST,
    SIZE,
    composer,
    joined,
    log_text,
    log_view,
    make_app,
    type_line,
    until,
)

FEATURES = ["reply", "edit", "react", "typing"]
Json = dict[str, Any]


async def bob_in_lobby(port: int) -> LineClient:
    bob = await open_client(port)
    welcome = await bob.request({"type": "hello", "nick": "bob", "features": FEATURES})
    assert welcome["type"] == "welcome", welcome
    reply = await bob.request({"type": "join", "room": "lobby"})
    assert reply["type"] == "room", reply
    await bob.expect("joined", nick="bob", room="lobby")
    return bob


async def bob_says(bob: LineClient, text: str, **extra: Any) -> int:
    ack = await bob.request({"type": "say", "room": "lobby", "text": text, **extra})
    assert ack["type"] == "ack", ack
    seq = ack["seq"]
    assert isinstance(seq, int)
    return seq


def entry(app: ChatApp, seq: int) -> Entry | None:
    return app.presenter.conversations.get("#lobby").find(seq)


def shown(app: ChatApp, seq: int) -> bool:
    found = entry(app, seq)
    return found is not None and found in log_view(app).entries


def typing_text(app: ChatApp) -> str:
    return str(app.chat.query_one("#typing", Static).render())


async def test_reply_to_a_selected_message_shows_a_quote(server: ChatServer) -> None:
    bob = await bob_in_lobby(server.port)
    app = make_app(server.port, "alice", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        seq = await bob_says(bob, "[b]lunch[/b] at noon?")
        await until(pilot, lambda: shown(app, seq), "bob's message")
        await pilot.press("alt+up")
        assert app.chat.selected is entry(app, seq)
        await pilot.press("alt+r")
        context = str(app.chat.query_one("#context", Static).render())
        assert "replying to bob: [b]lunch[/b] at noon?" in context
        await pilot.press(*"yes", "enter")
        got = await bob.expect("message", text="yes")
        assert got["reply_to"] == seq
        await until(pilot, lambda: shown(app, got["seq"]), "the reply, acked")
        lines = log_view(app).plain_lines
        quote = next(i for i, line in enumerate(lines) if "↳ bob: [b]lunch[/b] at noon?" in line)
        assert lines[quote + 1].endswith("alice yes")
        assert not app.chat.query_one("#context").display
    await bob.close()


async def test_a_click_selects_a_message_and_a_drag_selects_text(server: ChatServer) -> None:
    bob = await bob_in_lobby(server.port)
    app = make_app(server.port, "alice", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        first = await bob_says(bob, "first message")
        second = await bob_says(bob, "second message")
        await until(pilot, lambda: shown(app, second), "bob's messages")
        await pilot.pause(0.1)
        log = log_view(app)
        row = next(i for i, line in enumerate(log.plain_lines) if "first message" in line)
        y = row - log.scroll_offset.y
        await pilot.click("#log", offset=(8, y))
        assert app.chat.selected is entry(app, first)
        # A drag over the other line selects its text and leaves the selected message alone.
        row2 = next(i for i, line in enumerate(log.plain_lines) if "second message" in line)
        y2 = row2 - log.scroll_offset.y
        await pilot.mouse_down("#log", offset=(1, y2))
        await pilot.hover("#log", offset=(20, y2))
        await pilot.mouse_up("#log", offset=(20, y2))
        await pilot.pause(0.1)
        assert app.chat.selected is entry(app, first)
        selected_text = app.screen.get_selected_text() or ""
        assert "second" in selected_text
        await pilot.press("escape")
        assert app.chat.selected is None
    await bob.close()


async def test_up_in_an_empty_input_edits_the_last_message(server: ChatServer) -> None:
    bob = await bob_in_lobby(server.port)
    app = make_app(server.port, "alice", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        await type_line(pilot, "helo wrld")
        sent = await bob.expect("message", text="helo wrld")
        await until(pilot, lambda: shown(app, sent["seq"]), "the message, acked")
        await pilot.press("up")
        box = composer(app)
        assert box.text == "helo wrld"
        assert "editing message" in str(app.chat.query_one("#context", Static).render())
        box.load_text("hello world")
        box.move_cursor(box.document.end)
        await pilot.press("enter")
        edited = await bob.expect("edited", seq=sent["seq"])
        assert edited["text"] == "hello world"
        await until(pilot, lambda: "hello world (edited)" in log_text(app), "the edit shown")
        assert "helo wrld" not in log_text(app)
        # bob's edits of his own messages show too.
        seq = await bob_says(bob, "teh typo")
        await until(pilot, lambda: shown(app, seq), "bob's message")
        await bob.request({"type": "edit", "room": "lobby", "seq": seq, "text": "the typo"})
        await until(pilot, lambda: "bob the typo (edited)" in log_text(app), "bob's edit")
    await bob.close()


async def test_delete_asks_first_and_leaves_a_placeholder(server: ChatServer) -> None:
    bob = await bob_in_lobby(server.port)
    app = make_app(server.port, "alice", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        await type_line(pilot, "oops, wrong room")
        sent = await bob.expect("message", text="oops, wrong room")
        await until(pilot, lambda: shown(app, sent["seq"]), "the message, acked")
        await pilot.press("alt+up", "alt+d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDelete), "the question")
        await pilot.press("n")  # keep it
        await until(pilot, lambda: not isinstance(app.screen, ConfirmDelete), "the answer")
        assert not [m for m in await bob.quiet() if m.get("type") == "deleted"]
        await pilot.press("alt+d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDelete), "the question again")
        await pilot.press("enter")  # "Keep" has the focus: Enter alone never deletes
        assert not [m for m in await bob.quiet() if m.get("type") == "deleted"]
        await pilot.press("alt+d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDelete), "the question again")
        await pilot.press("y")
        await bob.expect("deleted", seq=sent["seq"])
        await until(pilot, lambda: "message deleted" in log_text(app), "the placeholder")
        assert "oops" not in log_text(app)
        # /delete SEQ asks too.
        await type_line(pilot, "second try")
        again = await bob.expect("message", text="second try")
        await until(pilot, lambda: shown(app, again["seq"]), "acked")
        await type_line(pilot, f"/delete {again['seq']}")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDelete), "the question")
        await pilot.press("y")
        await bob.expect("deleted", seq=again["seq"])
    await bob.close()


async def test_react_with_the_picker_and_take_it_back(server: ChatServer) -> None:
    bob = await bob_in_lobby(server.port)
    app = make_app(server.port, "alice", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        seq = await bob_says(bob, "ship it")
        await until(pilot, lambda: shown(app, seq), "bob's message")
        await pilot.press("alt+up", "alt+s")
        await until(pilot, lambda: isinstance(app.screen, ReactionPicker), "the picker")
        await pilot.press("1")
        got = await bob.expect("reaction", seq=seq, nick="alice")
        assert (got["emoji"], got["removed"]) == ("👍", False)
        await until(pilot, lambda: "👍 1" in log_text(app), "the count")
        assert entry(app, seq) is not None and entry(app, seq).mine == {"👍"}  # type: ignore[union-attr]
        await bob.request({"type": "react", "room": "lobby", "seq": seq, "emoji": "👍"})
        await bob.request({"type": "react", "room": "lobby", "seq": seq, "emoji": "🎉"})
        await until(pilot, lambda: "👍 2" in log_text(app) and "🎉 1" in log_text(app), "counts")
        # Free text in the picker.
        await pilot.press("alt+s")
        await until(pilot, lambda: isinstance(app.screen, ReactionPicker), "the picker")
        field = app.screen.query_one("#emoji-other", Input)
        field.focus()
        field.value = "🚀"
        await pilot.press("enter")
        got = await bob.expect("reaction", seq=seq, nick="alice", emoji="🚀")
        await until(pilot, lambda: "🚀 1" in log_text(app), "the typed one")
        # The same again takes it back; so does /react SEQ EMOJI.
        await pilot.press("alt+s")
        await until(pilot, lambda: isinstance(app.screen, ReactionPicker), "the picker")
        await pilot.press("1")
        got = await bob.expect("reaction", seq=seq, nick="alice", emoji="👍")
        assert got["removed"] is True
        await type_line(pilot, f"/react {seq} 🚀")
        got = await bob.expect("reaction", seq=seq, nick="alice", emoji="🚀")
        assert got["removed"] is True
        await until(pilot, lambda: "👍 1" in log_text(app) and "🚀" not in log_text(app), "gone")
    await bob.close()


async def test_jump_to_an_original_that_is_not_in_memory(server: ChatServer) -> None:
    bob = await bob_in_lobby(server.port)
    app = make_app(server.port, "alice", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        original = await bob_says(bob, "the original question")
        for n in range(5):
            await bob_says(bob, f"filler {n}")
        await until(pilot, lambda: shown(app, original + 5), "bob's messages")
        await type_line(pilot, "/clear")
        assert entry(app, original) is None
        reply = await bob_says(bob, "an answer", reply_to=original)
        await until(pilot, lambda: shown(app, reply), "the reply")
        assert f"reply to message {original} (not loaded" in log_text(app)
        await pilot.press("alt+up", "alt+j")
        await until(pilot, lambda: shown(app, original), "the original, fetched around")
        assert app.chat.selected is entry(app, original)
        text = log_text(app)
        assert "the original question" in text and "filler 4" in text
        # With it in memory, Alt+J from the reply selects it without a request.
        await pilot.press("escape", "alt+up", "alt+j")
        assert app.chat.selected is entry(app, original)
    await bob.close()


async def test_a_jump_far_back_fills_the_gap_up_to_the_log(server: ChatServer) -> None:
    bob = await bob_in_lobby(server.port)
    app = make_app(server.port, "alice", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        original = await bob_says(bob, "the original question")
        for n in range(60):  # far more than the page fetched around the original
            await bob_says(bob, f"filler {n}")
        await until(pilot, lambda: shown(app, original + 60), "bob's messages")
        await type_line(pilot, "/clear")
        reply = await bob_says(bob, "an answer", reply_to=original)
        await until(pilot, lambda: shown(app, reply), "the reply")
        await pilot.press("alt+up", "alt+j")
        await until(pilot, lambda: shown(app, original), "the original, fetched around")
        conversation = app.presenter.conversations.get("#lobby")
        await until(pilot, lambda: conversation.gap is None, "the gap filled")
        seqs = [e.seq for e in log_view(app).entries if e.seq is not None]
        assert seqs == list(range(1, reply + 1))  # every message once, in order
        assert "not loaded here" not in log_text(app)
        assert app.chat.selected is entry(app, original)
        await pilot.pause()
        found = entry(app, original)
        assert found is not None and log_view(app).shows(found)  # the fill kept it in view
        assert "bob: the original question" in log_text(app)  # the reply's quote, now loaded
        assert "not loaded: Alt+J" not in log_text(app)
    await bob.close()


async def test_typing_shown_with_expiry_and_sent_at_most_every_3_s(
    start_server: StartServer,
) -> None:
    server = await start_server(typing_interval=0.0)  # the server forwards every `active`
    bob = await bob_in_lobby(server.port)
    app = make_app(server.port, "alice", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        clock = [1000.0]
        app.presenter.monotonic = lambda: clock[0]
        await bob.send({"type": "typing", "room": "lobby", "state": "active"})
        await until(pilot, lambda: typing_text(app) == "bob is typing…", "bob typing")
        clock[0] += 5.0
        app.chat._draw_typing()
        assert typing_text(app) == "bob is typing…"
        clock[0] += 1.5  # 6.5 s without news: an `active` is dropped
        app.chat._draw_typing()
        assert typing_text(app) == ""
        await bob.send({"type": "typing", "room": "lobby", "state": "paused"})
        await until(pilot, lambda: "bob has stopped typing" in typing_text(app), "paused")
        clock[0] += 29.0
        app.chat._draw_typing()
        assert "bob" in typing_text(app)
        clock[0] += 2.0  # 31 s: a `paused` is dropped
        app.chat._draw_typing()
        assert typing_text(app) == ""
        await bob.send({"type": "typing", "room": "lobby", "state": "active"})
        await until(pilot, lambda: "bob is typing" in typing_text(app), "typing again")
        await bob_says(bob, "done typing")  # a message from bob ends it
        await until(pilot, lambda: typing_text(app) == "", "typing ended by the message")

        # What alice sends: one `active` for a burst of keys, `done` when cleared.
        await pilot.press(*"hel")
        got = await bob.expect("typing", state="active")
        assert got["from"] == "alice" and got["room"] == "lobby"
        await pilot.press(*"lo")
        assert not [m for m in await bob.quiet() if m.get("type") == "typing"]
        composer(app).load_text("")
        await bob.expect("typing", state="done")
        # A slash command is never announced; sending a line ends with `done`.
        await pilot.press(*"/who")
        assert not [m for m in await bob.quiet() if m.get("type") == "typing"]
        composer(app).load_text("")
        await pilot.press(*"hi", "enter")
        await bob.expect("typing", state="active")
        await bob.expect("typing", state="done")
        await bob.expect("message", text="hi")
    await bob.close()


async def test_typing_off_sends_nothing(server: ChatServer) -> None:
    bob = await bob_in_lobby(server.port)
    app = make_app(server.port, "alice", "lobby", typing=False, remember=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        await pilot.press(*"hello", "enter")
        await bob.expect("message", text="hello")
        assert not [m for m in bob.seen if m.get("type") == "typing"]
        await type_line(pilot, "/typing on")
        await pilot.press(*"more")
        await bob.expect("typing", state="active")
    await bob.close()


async def test_the_receiving_tui_sees_typing_pause_and_end_promptly(
    start_server: StartServer,
) -> None:
    """alice's composer says `paused` once her keys stop and `done` when she clears it;
    bob's typing line follows at once, well before an `active` would expire (6 s)."""
    # The pause is shortened from 3 s, below the server's 2 s `active` throttle: let the
    # server forward every `active` (with the real 3 s a resumed `active` always passes).
    server = await start_server(typing_interval=0.0)
    pause = 0.5 * UNIT
    alice = make_app(server.port, "alice", "lobby", settings=replace(FAST, typing_pause=pause))
    bob = make_app(server.port, "bob", "lobby")
    async with alice.run_test(size=SIZE) as sender, bob.run_test(size=SIZE) as receiver:
        # Two apps start at once: on a loaded machine that alone can take seconds.
        await until(sender, joined(alice, "lobby"), "alice's join", timeout=3 * TIMEOUT)
        await until(receiver, joined(bob, "lobby"), "bob's join", timeout=3 * TIMEOUT)
        await sender.press(*"lunch at")
        await until(receiver, lambda: typing_text(bob) == "alice is typing…", "typing")
        started = asyncio.get_running_loop().time()
        # No key for `pause`: bob's line says so (a `paused` came), with no key pressed.
        await until(receiver, lambda: typing_text(bob) == "alice has stopped typing", "paused")
        assert asyncio.get_running_loop().time() - started < 6.0  # not the `active` expiry
        await sender.press(*" noon")
        await until(receiver, lambda: typing_text(bob) == "alice is typing…", "typing again")
        composer(alice).load_text("")  # cleared: the line goes at once
        await until(receiver, lambda: typing_text(bob) == "", "done")
        await sender.press(*"ok?")
        await until(receiver, lambda: typing_text(bob) == "alice is typing…", "a third time")
        await sender.press("enter")  # sent: the typing line goes, the message shows
        await until(receiver, lambda: "alice ok?" in log_text(bob), "the message")
        await until(receiver, lambda: typing_text(bob) == "", "done after sending")
