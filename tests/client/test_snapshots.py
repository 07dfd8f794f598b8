"""Snapshots of the main screen and the connect screen.

`snap_compare` runs the app on its own event loop, so the server runs on a
thread of its own. Timestamps in the log are fixed and shown in UTC so the
pictures do not depend on the clock.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Label, TextArea

from chat_client import ChatClient, ClientSettings
from chat_client.events import Connected
from chat_client.settings import ClientConfig, save_config
from chat_client.tui.app import ChatApp, StartOptions
from chat_client.tui.screens.account import PasswordScreen
from chat_server.server import ChatServer
from protocol import (
    ChatMessage,
    DirectMessage,
    Joined,
    MessageDeleted,
    MessageEdited,
    ReactionChanged,
    RoomInfo,
    TopicChanged,
    TypingNotice,
)
from tests.support import TIMEOUT, make_config

SnapCompare = Callable[..., bool]
SIZE = (100, 24)


@pytest.fixture(autouse=True)
def utc_and_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    path = tmp_path / "client.json"
    monkeypatch.setenv("CHAT_CLIENT_CONFIG", str(path))
    yield path
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def threaded_server() -> Iterator[int]:
    """A real server on its own loop and thread; yields its port."""
    loop = asyncio.new_event_loop()
    server = ChatServer(make_config())
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        ready.set()
        loop.run_until_complete(server.serve_forever())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(TIMEOUT)
    yield server.port
    asyncio.run_coroutine_threadsafe(server.close(), loop).result(TIMEOUT)
    thread.join(TIMEOUT)
    loop.close()


def scripted_events() -> list[object]:
    day = "2026-11-23T"
    room = "lobby"
    return [
        Joined(room="lobby", nick="bob", ts=day + "09:58:00.000Z"),
        TopicChanged(room="lobby", topic="standup at 10", by="bob", ts=day + "09:59:00.000Z"),
        ChatMessage(room=room, seq=1, sender="bob", text="morning all", ts=day + "10:00:00.000Z"),
        ChatMessage(
            room="lobby", seq=2, sender="carol", text="[bold]not bold[/]", ts=day + "10:01:00.000Z"
        ),
        ChatMessage(
            room="lobby",
            seq=3,
            sender="bob",
            text="alice: can you look at\nthe build?",
            ts=day + "10:02:00.000Z",
        ),
        ChatMessage(
            room="lobby", seq=4, sender="alice", text="on it", action=True, ts=day + "10:03:00.000Z"
        ),
        ChatMessage(room="dev", seq=1, sender="carol", text="deploy", ts=day + "10:04:00.000Z"),
        DirectMessage(sender="carol", to="alice", text="lunch?", ts=day + "10:05:00.000Z"),
    ]


def freeze_cursors(pilot: Pilot[None]) -> None:
    """No blinking cursor: the picture must not depend on when it is taken."""
    for widget in pilot.app.screen.query(Input):
        widget.cursor_blink = False
    for area in pilot.app.screen.query(TextArea):
        area.cursor_blink = False


async def settle_main_screen(pilot: Pilot[None]) -> None:
    app = pilot.app
    assert isinstance(app, ChatApp)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while not (app.client and {"lobby", "dev"} <= set(app.client.rooms)):
        assert loop.time() < deadline, "the client did not join"
        await pilot.pause(0.02)
    await pilot.pause(0.1)
    # From here on the picture is drawn from canned events only.
    presenter = app.presenter
    for conversation in presenter.conversations:
        conversation.entries.clear()
        conversation.read_seq = 0
        conversation.ever_joined = conversation.joined = False
    presenter.server_rooms.clear()
    presenter._was_connected = False  # no "reconnected" line in the picture
    canned: list[object] = [
        Connected("alice", "chat-server", "", ("lobby", "dev")),
        RoomInfo(room="lobby", topic="", members=["alice", "bob", "carol"]),
        RoomInfo(room="dev", topic="", members=["alice", "carol"]),
        Joined(room="lobby", nick="alice", ts="2026-11-23T09:57:00.000Z"),
        Joined(room="dev", nick="alice", ts="2026-11-23T09:57:00.000Z"),
    ]
    changes = presenter.apply([*canned, *scripted_events()])
    app.chat.render_changes(changes)
    app.chat.switch_to("#lobby")
    freeze_cursors(pilot)
    await pilot.pause(0.1)


def test_main_screen(snap_compare: SnapCompare, threaded_server: int) -> None:
    options = StartOptions(
        host="127.0.0.1",
        port=threaded_server,
        nick="alice",
        rooms=("lobby", "dev"),
        remember=False,
        settings=ClientSettings(ping_interval=3600),
    )
    assert snap_compare(ChatApp(options), terminal_size=SIZE, run_before=settle_main_screen)


async def settle_connect_screen(pilot: Pilot[None]) -> None:
    await pilot.pause(0.1)
    freeze_cursors(pilot)
    await pilot.pause(0.05)


def test_connect_screen(snap_compare: SnapCompare, utc_and_config: Path) -> None:
    save_config(ClientConfig(host="chat.example.lan", port=7777, nick="alice"))
    app = ChatApp(StartOptions())
    assert snap_compare(app, terminal_size=SIZE, run_before=settle_connect_screen)


async def settle_accounts_screen(pilot: Pilot[None]) -> None:
    """The main screen of an account: bob away (dimmed, with his text), and the read
    line under the last message read on another terminal."""
    app = pilot.app
    assert isinstance(app, ChatApp)
    await settle_main_screen(pilot)
    presenter = app.presenter
    for conversation in presenter.conversations:
        conversation.entries.clear()
        conversation.read_seq = conversation.line_seq = conversation.synced_seq = 0
        conversation.ever_joined = conversation.joined = False
    presenter._was_connected = False  # no "reconnected" line (it would carry today's date)
    canned: list[object] = [
        Connected("alice", "chat-server", "", ("lobby", "dev"), account=True),
        *[e for e in scripted_events() if isinstance(e, ChatMessage) and e.room == "lobby"],
        RoomInfo(
            room="lobby",
            topic="standup at 10",
            members=["alice", "bob", "carol"],
            read=2,
            away={"bob": "lunch until 2"},
        ),
        Joined(room="lobby", nick="alice", ts="2026-11-23T09:57:00.000Z"),
    ]
    app.chat.render_changes(presenter.apply(canned))
    app.chat.redraw()
    freeze_cursors(pilot)
    await pilot.pause(0.1)


def test_accounts_screen(snap_compare: SnapCompare, threaded_server: int) -> None:
    options = StartOptions(
        host="127.0.0.1",
        port=threaded_server,
        nick="alice",
        rooms=("lobby", "dev"),
        remember=False,
        settings=ClientSettings(ping_interval=3600),
    )
    assert snap_compare(ChatApp(options), terminal_size=SIZE, run_before=settle_accounts_screen)


async def settle_password_prompt(pilot: Pilot[None]) -> None:
    app = pilot.app
    assert isinstance(app, ChatApp)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while not (isinstance(app.screen, PasswordScreen) and app.screen.query("#account-password")):
        assert loop.time() < deadline, "no password prompt"
        await pilot.pause(0.02)
    await pilot.press(*"secret")
    # The server's port is a free one, different each run: the picture names a fixed one.
    title = app.screen.query_one("#account-title", Label)
    title.update(str(title.render()).replace(f":{app.options.port}", ":7777"))
    freeze_cursors(pilot)
    await pilot.pause(0.1)


def test_password_prompt(snap_compare: SnapCompare, threaded_server: int) -> None:
    async def register() -> None:
        async with ChatClient("127.0.0.1", threaded_server, "alice") as guest:
            await guest.register("correct horse")

    asyncio.run(register())
    options = StartOptions(
        host="127.0.0.1",
        port=threaded_server,
        nick="alice",
        remember=False,
        settings=ClientSettings(ping_interval=3600),
    )
    assert snap_compare(ChatApp(options), terminal_size=SIZE, run_before=settle_password_prompt)


async def settle_rich_messages(pilot: Pilot[None]) -> None:
    """A reply with its quote, an edited message, a deleted one, reactions (alice's own
    highlighted), a selected message and the typing line."""
    app = pilot.app
    assert isinstance(app, ChatApp)
    await settle_main_screen(pilot)
    day = "2026-11-23T"
    lobby = "lobby"
    events: list[object] = [
        ChatMessage(room=lobby, seq=5, sender="bob", text="lunch at noon?", ts=day + "11:00:00Z"),
        ChatMessage(
            room=lobby,
            seq=6,
            sender="alice",
            text="yes, the usual place",
            reply_to=5,
            ts=day + "11:01:00.000Z",
        ),
        ChatMessage(room=lobby, seq=7, sender="carol", text="[red]oops", ts=day + "11:02:00Z"),
        ChatMessage(
            room=lobby,
            seq=8,
            sender="bob",
            text="shipping v2 today",
            ts=day + "11:03:00.000Z",
            reactions={"👍": ["carol", "alice"], "🎉": ["carol"]},
        ),
        MessageEdited(
            room=lobby,
            seq=6,
            text="yes, at the usual place",
            by="alice",
            ts=day + "11:04:00Z",
            rev=9,
        ),
        MessageDeleted(room=lobby, seq=7, by="carol", ts=day + "11:05:00.000Z", rev=10),
        ReactionChanged(
            room=lobby, seq=5, emoji="❤", nick="carol", removed=False, ts=day + "11:06:00Z", rev=11
        ),
        TypingNotice(room=lobby, sender="bob", state="active"),
    ]
    app.chat.render_changes(app.presenter.apply(events))
    original = app.presenter.conversations.get("#lobby").find(8)
    assert original is not None
    app.chat._select(original)
    freeze_cursors(pilot)
    await pilot.pause(0.1)


def test_rich_messages(snap_compare: SnapCompare, threaded_server: int) -> None:
    options = StartOptions(
        host="127.0.0.1",
        port=threaded_server,
        nick="alice",
        rooms=("lobby", "dev"),
        remember=False,
        settings=ClientSettings(ping_interval=3600),
    )
    assert snap_compare(ChatApp(options), terminal_size=SIZE, run_before=settle_rich_messages)
