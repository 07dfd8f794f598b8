"""The TUI driven by Pilot against a real server on loopback: everyday use."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from textual.widgets import Input

from chat_client.tui.app import ChatApp, StartOptions
from chat_client.tui.screens import ConnectScreen
from chat_client.tui.text import literal
from chat_client.tui.widgets import MemberList, RoomList
from chat_server.server import ChatServer
from tests.conftest import StartServer
from tests.support import LineClient, make_config, registered

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
        assert app.chat.query_one("#members", MemberList).option_count == 2
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
        assert app.presenter.conversations.current == "#lobby"
        await bob.request({"type": "say", "room": "dev", "text": "one"})
        await bob.request({"type": "say", "room": "dev", "text": "two, alice?"})
        dev = app.presenter.conversations.get("#dev")
        await until(pilot, lambda: dev.unread == 2, "the unread count")
        assert dev.mentioned
        rooms = app.chat.query_one("#rooms", RoomList)
        assert "2 !" in str(rooms.get_option_at_index(1).prompt)
        await pilot.press("f3")
        assert app.presenter.conversations.current == "#dev"
        assert dev.unread == 0 and not dev.mentioned
        assert "two, alice?" in log_text(app)
        await pilot.press("f2")
        assert app.presenter.conversations.current == "#lobby"
    await bob.close()


async def test_dm_opens_its_own_conversation(server: ChatServer) -> None:
    bob = await registered(server.port, "bob", "lobby")
    app = make_app(server.port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        await type_line(pilot, "/msg bob psst")
        got = await bob.expect("dm")
        assert got["text"] == "psst"
        assert app.presenter.conversations.current == "@bob"
        await bob.send({"type": "dm", "to": "alice", "text": "yes?"})
        await until(pilot, lambda: "yes?" in log_text(app), "bob's answer")
        await type_line(pilot, "fine")
        got = await bob.expect("dm", text="fine")
        assert got["to"] == "bob"
        await until(pilot, lambda: "alice fine" in log_text(app), "the echo")
        assert "sending" not in log_text(app)
    await bob.close()


async def test_completion_and_input_history(server: ChatServer) -> None:
    bobby = await registered(server.port, "bobby", "lobby")
    app = make_app(server.port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        await until(
            pilot, lambda: app.presenter.conversations.get("#lobby").has_member("bobby"), "members"
        )
        box = composer(app)
        await pilot.press("slash", "j", "o", "tab")
        assert box.text == "/join "
        await pilot.press("l", "o", "tab")
        assert box.text == "/join #lobby "
        box.load_text("")
        await pilot.press("b", "o", "tab")
        assert box.text == "bobby: "
        await pilot.press(*"hello", "enter")
        await bobby.expect("message", text="bobby: hello")
        await pilot.press("up")
        assert box.text == "bobby: hello"
        await pilot.press("down")
        assert box.text == ""
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
        await until(pilot, lambda: "#nowhere" in log_text(app).split("/who")[-1], "the error")
        await type_line(pilot, "/join bad room!")
        assert "a room name has no spaces" in log_text(app)
        await type_line(pilot, "/nick bad nick!")
        assert "a nick has no spaces" in log_text(app)
        await type_line(pilot, "/nick zoë")
        assert "a nick is 1-32 characters" in log_text(app)


async def test_join_part_topic_commands(server: ChatServer) -> None:
    watcher = await registered(server.port, "watcher")
    app = make_app(server.port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        await type_line(pilot, "/join #Dev")  # lowercased, not refused
        await until(pilot, lambda: app.presenter.conversations.current == "#dev", "dev in view")
        await type_line(pilot, "/topic")
        assert "#dev has no topic" in log_text(app)
        await type_line(pilot, "/topic shipping today")
        await until(pilot, lambda: "set the topic: shipping today" in log_text(app), "topic")
        assert "shipping today" in str(app.chat.query_one("#topic").render())
        await type_line(pilot, "/topic")
        assert "the topic of #dev: shipping today" in log_text(app)
        await type_line(pilot, "/me ships it")
        await until(pilot, lambda: "* alice ships it" in log_text(app), "the action")
        await type_line(pilot, "/part bye")
        await until(pilot, lambda: "#dev" not in app.presenter.conversations, "the part")
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
            status = app.presenter.status
            await until(pilot, lambda: "reconnecting" in status.text, "reconnecting status")
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
            # One line for the drop and one for the return, not a part and a join per person.
            assert "disconnected:" in log_text(app) and "reconnected" in log_text(app)
            assert "left #lobby" not in log_text(app)
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
        for _ in range(40):
            if "old 0\n" in log_text(app) + "\n":
                break
            await pilot.press("pageup")
            await pilot.pause(0.05)
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
        assert not app.chat.query_one("#members").display
        await pilot.resize_terminal(120, 30)
        await pilot.pause(0.05)
        assert app.chat.query_one("#members").display


async def test_conversations_can_be_logged_to_disk(server: ChatServer, tmp_path: Path) -> None:
    bob = await registered(server.port, "bob", "lobby")
    app = make_app(server.port, log=True)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        await bob.request({"type": "say", "room": "lobby", "text": "for the record\nline 2"})
        await type_line(pilot, "/me agrees")
        await until(pilot, lambda: "* alice agrees" in log_text(app), "the action")
        assert app.logbook is not None
        path = app.logbook.path_for("#lobby")
    await bob.close()
    text = await asyncio.to_thread(path.read_text)
    assert "<bob> for the record\n    line 2\n" in text and "* alice agrees" in text
    assert str(path).startswith(os.environ["HOME"])


async def test_mouse_selection_in_the_log_is_highlighted_and_copied(server: ChatServer) -> None:
    bob = await registered(server.port, "bob", "lobby")
    app = make_app(server.port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        await bob.request({"type": "say", "room": "lobby", "text": "select me please"})
        await until(pilot, lambda: "select me please" in log_text(app), "the message")
        lines = log_view(app).plain_lines
        row = next(n for n, line in enumerate(lines) if "select me please" in line)
        column = lines[row].index("select")
        await pilot.mouse_down("#log", offset=(column + 1, row))  # +1: the log's padding
        await pilot.hover("#log", offset=(column + len("select me"), row))
        await pilot.mouse_up("#log", offset=(column + len("select me"), row))
        await pilot.pause(0.05)
        assert app.screen.get_selected_text() == "select me"
        assert app.clipboard == "select me"
        strip = log_view(app).render_line(row)
        colours = {seg.text: seg.style.bgcolor if seg.style else None for seg in strip}
        assert colours["select me"] != colours[" please"]  # drawn as selected
        await pilot.press(*"typed after")  # typing still goes to the composer
        assert composer(app).text == "typed after"
    await bob.close()
