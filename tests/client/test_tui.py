"""The TUI driven by Pilot against a real server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, OptionList

from chat_client import ClientSettings
from chat_client.tui.app import ChatApp, StartOptions
from chat_client.tui.chat_input import ChatInput
from chat_client.tui.chat_log import ChatLog
from chat_client.tui.connect_screen import ConnectScreen
from chat_client.tui.text import literal
from chat_server.server import ChatServer
from tests.conftest import StartServer
from tests.support import TIMEOUT, LineClient, make_config, registered

FAST = ClientSettings(backoff_initial=0.05, backoff_max=0.2, connect_timeout=2.0)
SIZE = (110, 30)


@pytest.fixture(autouse=True)
def client_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "client.json"
    monkeypatch.setenv("CHAT_CLIENT_CONFIG", str(path))
    return path


def make_app(port: int, nick: str = "alice", *rooms: str) -> ChatApp:
    options = StartOptions(
        host="127.0.0.1", port=port, nick=nick, rooms=rooms or ("lobby",), settings=FAST
    )
    return ChatApp(options)


async def until(pilot: Pilot[None], condition: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


def log_text(app: ChatApp) -> str:
    return "\n".join(app.query_one("#log", ChatLog).plain_lines)


def joined(app: ChatApp, *rooms: str) -> Callable[[], bool]:
    def check() -> bool:
        client = app.client
        return client is not None and client.connected and set(rooms) <= set(client.rooms)

    return check


async def type_line(pilot: Pilot[None], text: str) -> None:
    chat_input = pilot.app.query_one("#input", ChatInput)
    chat_input.focus()
    chat_input.value = text
    await pilot.press("enter")


async def test_send_and_receive(server: ChatServer) -> None:
    bob = await registered(server.port, "bob", "lobby")
    app = make_app(server.port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        await pilot.press(*"hi bob")
        await pilot.press("enter")
        got = await bob.expect("message")
        assert (got["from"], got["text"]) == ("alice", "hi bob")
        await bob.send({"type": "say", "room": "lobby", "text": "hello alice\nsecond line"})
        await until(pilot, lambda: "second line" in log_text(app), "bob's message")
        text = log_text(app)
        assert "alice hi bob" in text and "bob hello alice" in text
        assert app.query_one("#members", OptionList).option_count == 2
    await bob.close()


async def test_markup_and_control_characters_are_shown_literally(server: ChatServer) -> None:
    bob = await registered(server.port, "bob", "lobby")
    app = make_app(server.port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        evil = "[bold]hi[/] [@click=app.quit]x[/] [red]red"
        await bob.request({"type": "say", "room": "lobby", "text": evil})
        await until(pilot, lambda: "[red]red" in log_text(app), "the message")
        assert evil in log_text(app)
        await pilot.pause(0.1)
        assert app.is_running
    await bob.close()
    # The server refuses control characters, but the client never trusts that.
    assert literal("a\x1b[31mb\x9bc\x07").plain == "a\u241b[31mb\ufffdc\u2407"


async def test_rooms_unread_and_mentions(server: ChatServer) -> None:
    bob = await registered(server.port, "bob", "lobby", "dev")
    app = make_app(server.port, "alice", "lobby", "dev")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby", "dev"), "both joins")
        await until(pilot, lambda: app.conversations.current == "#lobby", "lobby in view")
        await bob.request({"type": "say", "room": "dev", "text": "one"})
        await bob.request({"type": "say", "room": "dev", "text": "two, alice?"})
        dev = app.conversations.get("#dev")
        await until(pilot, lambda: dev.unread == 2, "the unread count")
        assert dev.mentioned
        rooms = app.query_one("#rooms", OptionList)
        prompt = str(rooms.get_option("#dev").prompt)
        assert "2 !" in prompt
        await pilot.press("f3")
        assert app.conversations.current == "#dev"
        assert dev.unread == 0 and not dev.mentioned
        assert "two, alice?" in log_text(app)
        await pilot.press("f2")
        assert app.conversations.current == "#lobby"
    await bob.close()


async def test_dm_opens_its_own_conversation(server: ChatServer) -> None:
    bob = await registered(server.port, "bob", "lobby")
    app = make_app(server.port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        await type_line(pilot, "/msg bob psst")
        got = await bob.expect("dm")
        assert got["text"] == "psst"
        await until(pilot, lambda: app.conversations.current == "@bob", "the DM in view")
        await bob.send({"type": "dm", "to": "alice", "text": "yes?"})
        await until(pilot, lambda: "yes?" in log_text(app), "bob's answer")
        await type_line(pilot, "fine")
        got = await bob.expect("dm", text="fine")
        assert got["to"] == "bob"
    await bob.close()


async def test_completion_and_input_history(server: ChatServer) -> None:
    bobby = await registered(server.port, "bobby", "lobby")
    app = make_app(server.port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        await until(
            pilot, lambda: "bobby" in app.conversations.get("#lobby").members, "member list"
        )
        chat_input = app.query_one("#input", ChatInput)
        await pilot.press("slash", "j", "o", "tab")
        assert chat_input.value == "/join "
        chat_input.value = ""
        await pilot.press("b", "o", "tab")
        assert chat_input.value == "bobby: "
        await pilot.press(*"hello", "enter")
        await bobby.expect("message", text="bobby: hello")
        await pilot.press("up")
        assert chat_input.value == "bobby: hello"
        await pilot.press("down")
        assert chat_input.value == ""
    await bobby.close()


async def test_command_errors_are_shown_in_plain_words(server: ChatServer) -> None:
    app = make_app(server.port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        await type_line(pilot, "/frobnicate now")
        assert "unknown command /frobnicate: type /help for the list" in log_text(app)
        await type_line(pilot, "/join")
        assert "usage: /join ROOM" in log_text(app)
        await type_line(pilot, "/who nowhere")
        await until(pilot, lambda: "nowhere" in log_text(app).split("/who")[-1], "the error")
        assert "no room called #nowhere" in log_text(app) or "nowhere" in log_text(app)
        await type_line(pilot, "/join Bad-Room")
        await until(pilot, lambda: "room" in log_text(app).split("Bad-Room")[-1], "the error")


async def test_join_part_topic_commands(server: ChatServer) -> None:
    watcher = await registered(server.port, "watcher")
    app = make_app(server.port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        await type_line(pilot, "/join #dev")
        await until(pilot, lambda: app.conversations.current == "#dev", "dev in view")
        await type_line(pilot, "/topic shipping today")
        await until(pilot, lambda: "shipping today" in log_text(app), "the topic line")
        assert "shipping today" in str(app.query_one("#topic").render())
        await type_line(pilot, "/me ships it")
        members = await watcher.request({"type": "history", "room": "dev"})
        await until(pilot, lambda: "* alice ships it" in log_text(app), "the action")
        await type_line(pilot, "/part bye")
        await until(pilot, lambda: "#dev" not in app.conversations.by_key, "the part")
        assert members["type"] == "history"
    await watcher.close()


async def test_reconnect_after_server_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "h.db")
    server = ChatServer(make_config(db_path=db))
    await server.start()
    port = server.port
    app = make_app(port)
    bob: LineClient | None = None
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, joined(app, "lobby"), "the join")
            await type_line(pilot, "before restart")
            await until(pilot, lambda: "alice before restart" in log_text(app), "the echo")
            await server.close()
            await until(pilot, lambda: "reconnecting" in str(app._status), "reconnecting status")
            server = ChatServer(make_config(db_path=db, port=port))
            await server.start()
            bob = await registered(port, "bob", "lobby")
            for i in range(3):
                await bob.request({"type": "say", "room": "lobby", "text": f"missed {i}"})
            await until(pilot, lambda: "missed 2" in log_text(app), "the missed messages")
            await type_line(pilot, "after restart")
            await until(pilot, lambda: "alice after restart" in log_text(app), "the new echo")
            lines = log_text(app).splitlines()
            chat = [line for line in lines if "restart" in line or "missed" in line]
            assert [line.split(" ", 1)[1] for line in chat] == [
                "alice before restart",
                "bob missed 0",
                "bob missed 1",
                "bob missed 2",
                "alice after restart",
            ]
    finally:
        if bob is not None:
            await bob.close()
        await server.close()


async def test_scrolling_to_the_top_loads_older_history(server: ChatServer) -> None:
    bob = await registered(server.port, "bob", "lobby")
    for i in range(120):
        await bob.send({"type": "say", "room": "lobby", "text": f"old {i}"})
    await bob.request({"type": "ping"})
    app = make_app(server.port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        await until(pilot, lambda: "old 119" in log_text(app), "the latest 50")
        assert "old 69" not in log_text(app)
        chat_log = app.query_one("#log", ChatLog)
        chat_log.scroll_home(animate=False, immediate=True)
        await until(pilot, lambda: "old 0\n" in log_text(app) + "\n", "older history")
        texts = [line.rsplit(" ", 1)[-1] for line in log_text(app).splitlines() if " old " in line]
        assert texts == [str(i) for i in range(120)]
    await bob.close()


async def test_connect_screen_when_no_nick(server: ChatServer, client_config: Path) -> None:
    app = ChatApp(StartOptions(settings=FAST))
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, ConnectScreen)
        app.screen.query_one("#address", Input).value = f"127.0.0.1:{server.port}"
        app.screen.query_one("#nick", Input).value = "carol"
        await pilot.click("#connect")
        await until(pilot, joined(app, "lobby"), "the join")
        assert not isinstance(app.screen, ConnectScreen)
    saved = await asyncio.to_thread(client_config.read_text)
    assert '"nick": "carol"' in saved


async def test_connect_screen_shows_a_taken_nick(start_server: StartServer) -> None:
    server = await start_server()
    taken = await registered(server.port, "alice")
    app = make_app(server.port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ConnectScreen), "the connect screen")
        await pilot.pause(0.05)
        problem = str(app.screen.query_one("#problem").render())
        assert "alice" in problem and "taken" in problem
    await taken.close()


async def test_narrow_terminal_hides_the_member_list(server: ChatServer) -> None:
    app = make_app(server.port)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        assert not app.query_one("#members").display
        await pilot.resize_terminal(120, 30)
        await pilot.pause(0.05)
        assert app.query_one("#members").display
