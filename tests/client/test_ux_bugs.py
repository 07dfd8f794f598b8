"""One test per bug a new user met in the TUI (UX review, section b), over a real server."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from functools import partial
from pathlib import Path

from rich.console import Console
from textual import events
from textual.widgets import Input

from chat_client.settings import ClientConfig, Profile, save_config
from chat_client.tui.app import ChatApp, StartOptions, crash_report
from chat_client.tui.screens import ConnectScreen
from chat_client.tui.widgets import MemberList, RoomList
from chat_server.server import ChatServer
from tests.support import TIMEOUT, LineClient, make_config, registered

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


class CountingApp(ChatApp):
    """The real app; it only counts the bells instead of ringing them."""

    bells = 0

    def bell(self) -> None:
        self.bells += 1


def counting_app(port: int, nick: str = "alice", *rooms: str) -> CountingApp:
    return CountingApp(
        StartOptions(host="127.0.0.1", port=port, nick=nick, rooms=rooms, settings=FAST)
    )


async def run_client(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "chat_client",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    _, err = await asyncio.wait_for(process.communicate(), 4 * TIMEOUT)
    assert process.returncode is not None
    return process.returncode, err.decode()


async def say_many(client: LineClient, room: str, texts: list[str]) -> None:
    for text in texts:
        await client.send({"type": "say", "room": room, "text": text})
    await client.request({"type": "ping"})


# 1 ---------------------------------------------------------------------------


async def test_1_a_bad_nick_is_one_line_a_failure_and_never_the_password() -> None:
    for nick in ("bad nick", "zoë"):
        code, err = await run_client(
            "127.0.0.1:9", "--nick", nick, env={"CHAT_PASSWORD": "hunter2"}
        )
        assert code == 2
        assert "hunter2" not in err
        assert err.count("\n") == 1 and "a nick is 1-32 characters" in err, err


def test_1_no_traceback_shows_local_variables() -> None:
    def connect(password: str) -> None:
        raise RuntimeError(f"boom {len(password)}")

    try:
        connect("hunt" + "er2")  # so the source line shown does not hold it either
    except RuntimeError:
        report = crash_report()
    console = Console(record=True, width=100, file=io.StringIO())
    console.print(report)
    text = console.export_text()
    assert "RuntimeError: boom 7" in text and "hunter2" not in text


# 2 ---------------------------------------------------------------------------


async def test_2_clear_then_a_new_message_leaves_no_hole(server: ChatServer) -> None:
    bob = await registered(server.port, "bob", "dev")
    await say_many(bob, "dev", [f"gap {i:03}" for i in range(1, 151)])
    app = make_app(server.port, "alice", "dev")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "dev"), "the join")
        await until(pilot, lambda: "gap 150" in log_text(app), "the backlog")
        await pilot.press("ctrl+l")
        await pilot.pause(0.2)
        assert "gap" not in log_text(app)  # nothing refilled behind the user's back
        assert "log cleared" in log_text(app)
        await bob.request({"type": "say", "room": "dev", "text": "after clear"})
        await until(pilot, lambda: "after clear" in log_text(app), "the new message")
        for _ in range(10):
            await pilot.press("pageup")
            await pilot.pause(0.05)
        await until(pilot, lambda: "gap 051" in log_text(app), "older history")
        lines = log_text(app).splitlines()
        gaps = [int(line.rsplit(" ", 1)[1]) for line in lines if " gap " in line]
        assert gaps == list(range(gaps[0], 151))  # no hole up to the newest
        cleared = next(i for i, line in enumerate(lines) if "log cleared" in line)
        assert "gap 150" in lines[cleared - 1] and "after clear" in lines[cleared + 1]
    await bob.close()


# 3 ---------------------------------------------------------------------------


async def test_3_a_multi_line_paste_is_one_message(server: ChatServer) -> None:
    bob = await registered(server.port, "bob", "lobby")
    app = make_app(server.port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        app.post_message(events.Paste("line one\nline two\r\nline three"))
        await pilot.pause(0.05)
        assert composer(app).text == "line one\nline two\nline three"
        await pilot.press("enter")
        got = await bob.expect("message")
        assert got["text"] == "line one\nline two\nline three"
        assert await bob.quiet() == []
    await bob.close()


async def test_3_keys_arriving_together_are_each_line_once(server: ChatServer) -> None:
    bob = await registered(server.port, "bob", "lobby")
    app = make_app(server.port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        # As a terminal delivers "one⏎two⏎" in one read: all keys queued at once.
        for char in "one\rtwo\r":
            key = "enter" if char == "\r" else char
            app.post_message(events.Key(key, char))
        first = await bob.expect("message")
        second = await bob.expect("message")
        assert [first["text"], second["text"]] == ["one", "two"]
        assert await bob.quiet() == []
        assert composer(app).text == ""
    await bob.close()


async def test_3_ctrl_j_starts_a_new_line(server: ChatServer) -> None:
    bob = await registered(server.port, "bob", "lobby")
    app = make_app(server.port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        await pilot.press("a", "ctrl+j", "b", "enter")
        assert (await bob.expect("message"))["text"] == "a\nb"
    await bob.close()


# 4 ---------------------------------------------------------------------------


async def test_4_old_history_is_not_unread_and_rings_nothing(server: ChatServer) -> None:
    bob = await registered(server.port, "bob", "ops")
    await say_many(bob, "ops", ["ALICE, lunch?", "anyone?"])
    earlier = await registered(server.port, "alice", "ops")
    await say_many(earlier, "ops", ["onetwo", "three", "four"])
    await earlier.close()
    await bob.expect("left", nick="alice")
    app = counting_app(server.port, "alice", "lobby", "ops")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby", "ops"), "the joins")
        ops = app.presenter.conversations.get("#ops")
        assert (ops.unread, ops.mentioned, app.bells) == (0, False, 0)
        await bob.request({"type": "say", "room": "ops", "text": "a new one"})
        await until(pilot, lambda: ops.unread == 1, "the new message counted")
        await pilot.press("ctrl+q")
    # What was read is remembered: the next start counts only what came meanwhile.
    await say_many(bob, "ops", ["while away 1", "while away 2, alice"])
    app = counting_app(server.port, "alice", "lobby", "ops")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby", "ops"), "the joins")
        ops = app.presenter.conversations.get("#ops")
        await until(pilot, lambda: ops.unread == 3, "the unread lines")
        assert ops.mentioned and app.bells == 0
    await bob.close()


# 5 ---------------------------------------------------------------------------


async def test_5_the_log_keeps_following_through_resizes(server: ChatServer) -> None:
    bob = await registered(server.port, "bob", "dev")
    await say_many(bob, "dev", [f"backlog message {i} of 50 " * 3 for i in range(50)])
    app = make_app(server.port, "alice", "dev")
    async with app.run_test(size=(120, 35)) as pilot:
        await until(pilot, joined(app, "dev"), "the join")
        for size in ((60, 30), (40, 20), (250, 50), (120, 35), (40, 20)):
            await pilot.resize_terminal(*size)
            await pilot.pause(0.05)
        await bob.request({"type": "say", "room": "dev", "text": "carol was here"})
        await until(pilot, lambda: "carol was here" in log_text(app), "the new message")
        await pilot.pause(0.1)
        view = log_view(app)
        assert view.following and view.scroll_y == view.max_scroll_y
        await pilot.press("f1")
        await pilot.pause(0.1)
        assert view.scroll_y == view.max_scroll_y  # the help shows, not below the screen
    await bob.close()


# 6 ---------------------------------------------------------------------------


async def test_6_typing_after_a_click_goes_to_the_composer(server: ChatServer) -> None:
    app = make_app(server.port, "alice", "lobby", "dev")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby", "dev"), "the joins")
        for target in ("#log", "#members", "#status", "#topic"):
            await pilot.click(target, offset=(5, 0))
            await pilot.press(*"x")
        await pilot.click(RoomList, offset=(3, 1))  # a click on #dev switches, still typing
        await pilot.press(*"after click")
        assert composer(app).text == "xxxxafter click"
        assert app.presenter.conversations.current == "#dev"
        assert app.focused is composer(app)


# 7 ---------------------------------------------------------------------------


async def test_7_a_nick_change_renames_the_dm_and_the_status(server: ChatServer) -> None:
    bob = await registered(server.port, "bob", "lobby")
    app = make_app(server.port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        await bob.request({"type": "dm", "to": "alice", "text": "psst"})
        await until(pilot, lambda: "@bob" in app.presenter.conversations, "the DM")
        await pilot.press("f3")
        assert app.presenter.conversations.current == "@bob"
        await bob.request({"type": "nick", "nick": "bobby"})
        await until(pilot, lambda: "@bobby" in app.presenter.conversations, "the rename")
        assert "@bob" not in app.presenter.conversations
        assert app.presenter.conversations.current == "@bobby"
        assert "bob is now known as bobby" in log_text(app)
        await type_line(pilot, "still there?")
        got = await bob.expect("dm", text="still there?")
        assert got["to"] == "bobby"
        await type_line(pilot, "/nick alice2")
        status = app.chat.query_one("#status")
        await until(pilot, lambda: "as alice2" in str(status.render()), "the status bar")
    await bob.close()


# 8 ---------------------------------------------------------------------------


async def test_8_a_password_failure_mid_session_opens_the_connect_screen() -> None:
    server = ChatServer(make_config())
    await server.start()
    port = server.port
    app = make_app(port)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, joined(app, "lobby"), "the join")
            await server.close()
            server = ChatServer(make_config(port=port, password="hunter2"))
            await server.start()
            await until(pilot, lambda: isinstance(app.screen, ConnectScreen), "the connect screen")
            screen = app.screen
            assert "password" in str(screen.query_one("#problem").render())
            password = screen.query_one("#password", Input)
            await until(pilot, lambda: app.focused is password, "the password field focused")
            await pilot.press(*"hunter2", "enter")
            await until(pilot, joined(app, "lobby"), "the join with the password")
            assert app.client is not None and app.client.password == "hunter2"
    finally:
        await server.close()


# 9 ---------------------------------------------------------------------------


async def test_9_the_cursor_starts_in_the_field_to_fill(server: ChatServer) -> None:
    save_config(ClientConfig(host="127.0.0.1", port=server.port, nick="alice"))
    app = ChatApp(StartOptions(settings=FAST))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.05)
        assert isinstance(app.screen, ConnectScreen)
        password = app.screen.query_one("#password", Input)
        await until(pilot, lambda: app.focused is password, "the password field focused")
    taken = await registered(server.port, "bob")
    app = make_app(server.port, "bob")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ConnectScreen), "the connect screen")
        await pilot.pause(0.05)
        nick = app.screen.query_one("#nick", Input)
        await until(pilot, lambda: app.focused is nick, "the nick field focused")
        await pilot.press(*"2", "enter")  # bob2, and the server field untouched
        await until(pilot, joined(app, "lobby"), "the join as bob2")
        assert app.client is not None and app.client.nick == "bob2"
    await taken.close()


# 10 --------------------------------------------------------------------------


async def test_10_next_time_means_the_rooms_you_were_in(
    server: ChatServer, client_config: Path
) -> None:
    app = make_app(server.port, "erin")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        await type_line(pilot, "/join x1")
        await type_line(pilot, "/join x2")
        await until(pilot, joined(app, "lobby", "x1", "x2"), "the joins")
        await pilot.press("f2")  # x1
        await type_line(pilot, "/part")
        await until(pilot, lambda: "#x1" not in app.presenter.conversations, "the part")
        await type_line(pilot, "/quit bye for now")
        await until(pilot, lambda: not app.is_running, "the quit")
    config = ClientConfig.model_validate_json(await asyncio.to_thread(client_config.read_bytes))
    assert config.profile("127.0.0.1", server.port, "erin").rooms == ["lobby", "x2"]
    assert config.profile("127.0.0.1", server.port, "dave").rooms == ["lobby"]  # per nick
    app = make_app(server.port, "erin")  # no --room: last time's rooms
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby", "x2"), "the rooms of last time")
        assert list(app.presenter.conversations.by_key) == ["#lobby", "#x2"]


# 11 --------------------------------------------------------------------------


async def test_11_one_day_separator_per_day_across_pages(server: ChatServer) -> None:
    bob = await registered(server.port, "bob", "dev")
    await say_many(bob, "dev", [f"old {i}" for i in range(260)])
    app = make_app(server.port, "dave", "dev")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "dev"), "the join")
        for _ in range(60):
            if "old 0\n" in log_text(app) + "\n":
                break
            await pilot.press("pageup")
            await pilot.pause(0.03)
        lines = log_text(app).splitlines()
        assert len([line for line in lines if " old " in line]) == 260
        days = {e.day for e in app.presenter.conversations.get("#dev").entries if e.day}
        assert len([line for line in lines if line.startswith("── ")]) == len(days)
    await bob.close()


# 12 --------------------------------------------------------------------------


async def test_12_lines_typed_while_disconnected_show_as_pending(tmp_path: Path) -> None:
    db = str(tmp_path / "h.db")
    server = ChatServer(make_config(db_path=db))
    await server.start()
    port = server.port
    app = make_app(port, "alice", "lobby", "dev")
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, joined(app, "lobby", "dev"), "the joins")
            await server.close()
            await until(pilot, lambda: not app.presenter.status.connected, "the drop")
            await type_line(pilot, "queued one")
            await type_line(pilot, "queued two")
            assert "queued one  sending…" in log_text(app)
            await type_line(pilot, "/join newroom")
            assert "not connected right now" in log_text(app)
            await pilot.press("f3")  # the user moves on to #dev
            server = ChatServer(make_config(db_path=db, port=port))
            await server.start()
            await until(pilot, joined(app, "lobby", "dev", "newroom"), "the rejoin")
            assert app.presenter.conversations.current == "#dev"  # not pulled away
            await pilot.press("f2")
            await until(pilot, lambda: "alice queued two" in log_text(app), "the sent lines")
            text = log_text(app)
            assert "sending" not in text
            assert text.count("queued one") == 1 and text.count("queued two") == 1
    finally:
        await server.close()


# 13 --------------------------------------------------------------------------


def rang(app: CountingApp, times: int) -> bool:
    return app.bells == times


async def test_13_mentions_ring_wherever_they_are_unless_seen(server: ChatServer) -> None:
    bob = await registered(server.port, "bob", "lobby", "dev")
    app = counting_app(server.port, "alice", "lobby", "dev")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby", "dev"), "the joins")
        await bob.request({"type": "say", "room": "lobby", "text": "alice: in view, focused"})
        await until(pilot, lambda: "in view, focused" in log_text(app), "the mention")
        assert app.bells == 0
        for n in (1, 2):  # each highlight rings, not only the first per room
            await bob.request({"type": "say", "room": "dev", "text": f"alice: elsewhere {n}"})
            await until(pilot, partial(rang, app, n), f"bell {n}")
        app.post_message(events.AppBlur())
        await until(pilot, lambda: not app.app_focus, "the blur")
        await bob.request({"type": "say", "room": "lobby", "text": "alice: in view, away"})
        await until(pilot, lambda: app.bells == 3, "the bell in view")
    await bob.close()


# 14 --------------------------------------------------------------------------


async def test_14_alt_digits_switch_conversations(server: ChatServer) -> None:
    bob = await registered(server.port, "bob", "ops")
    app = make_app(server.port, "alice", "lobby", "dev", "ops")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby", "dev", "ops"), "the joins")
        app.post_message(events.Key("alt+3", "3"))  # as the terminal's ESC 3 arrives
        await until(pilot, lambda: app.presenter.conversations.current == "#ops", "window 3")
        await pilot.press("alt+2")
        assert app.presenter.conversations.current == "#dev"
        await bob.request({"type": "say", "room": "ops", "text": "activity"})
        await until(pilot, lambda: app.presenter.conversations.get("#ops").unread == 1, "unread")
        await pilot.press("alt+a")
        assert app.presenter.conversations.current == "#ops"
        assert composer(app).text == ""
    await bob.close()


# 15 --------------------------------------------------------------------------


async def test_15_a_bad_theme_is_one_line_and_a_chosen_theme_is_kept(
    server: ChatServer, client_config: Path
) -> None:
    code, err = await run_client("127.0.0.1:9", "--nick", "alice", "--theme", "bogus")
    assert code == 2 and err.count("\n") == 1
    assert "no theme 'bogus'" in err and "gruvbox" in err and "Traceback" not in err
    app = make_app(server.port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        app.theme = "gruvbox"
        await pilot.pause(0.05)
    saved = json.loads(await asyncio.to_thread(client_config.read_text))
    assert saved["theme"] == "gruvbox"
    assert make_app(server.port).theme == "gruvbox"


# 17 --------------------------------------------------------------------------


async def test_17_narrow_terminals_keep_room_for_the_log(server: ChatServer) -> None:
    watcher = await registered(server.port, "watcher", "ops")
    topic = "Weekly ops sync: Tuesdays 10:00 in room 4.12, bring the numbers and the slides"
    await watcher.request({"type": "topic", "room": "ops", "topic": topic})
    app = make_app(server.port, "alice", "ops")
    async with app.run_test(size=(60, 20)) as pilot:
        await until(pilot, joined(app, "ops"), "the join")
        await pilot.pause(0.1)
        assert app.chat.query_one("#rooms").size.width <= 11
        assert not app.chat.query_one("Footer").display
        shown = app.chat.query_one("#topic").render_line(0).text
        assert shown.rstrip().endswith("…")
    await watcher.close()


# 18 --------------------------------------------------------------------------


async def test_18_a_long_message_is_sent_in_parts(server: ChatServer) -> None:
    bob = await registered(server.port, "bob", "lobby")
    app = make_app(server.port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        words = " ".join(f"word{i:04}" for i in range(900))  # 8,099 characters
        await type_line(pilot, words)
        parts = [(await bob.expect("message"))["text"] for _ in range(3)]
        assert all(len(part) <= 4000 for part in parts)
        assert " ".join(parts) == words
    await bob.close()


# 21 --------------------------------------------------------------------------


async def test_21_a_long_nick_is_one_row_in_the_member_list(server: ChatServer) -> None:
    long_nick = "abcdefghijklmnopqrstuvwxyz_12345"
    other = await registered(server.port, long_nick, "lobby")
    app = make_app(server.port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        members = app.chat.query_one("#members", MemberList)
        await until(pilot, lambda: members.option_count == 2, "both members")
        await pilot.pause(0.05)
        assert members.virtual_size.height == 2
    await other.close()


async def test_21_cannot_reach_is_said_plainly() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    app = make_app(port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ConnectScreen), "the connect screen")
        await pilot.pause(0.05)
        problem = str(app.screen.query_one("#problem").render())
        assert "the server is not accepting connections" in problem
        assert "Connect call failed" not in problem
        assert app.focused is app.screen.query_one("#address", Input)
        footer_keys = {binding.key for (_, binding, _, _) in app.screen.active_bindings.values()}
        assert "f2" not in footer_keys and "ctrl+l" not in footer_keys


async def test_21_more_below_when_scrolled_up_and_sending_returns(server: ChatServer) -> None:
    bob = await registered(server.port, "bob", "lobby")
    await say_many(bob, "lobby", [f"filler {i}" for i in range(50)])
    app = make_app(server.port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        await until(pilot, lambda: "filler 49" in log_text(app), "the backlog")
        await pilot.pause(0.1)
        await pilot.press("pageup")
        await bob.request({"type": "say", "room": "lobby", "text": "below you"})
        more = app.chat.query_one("#more")
        await until(pilot, lambda: "1 new below" in str(more.render()), "the mark")
        assert more.display
        await type_line(pilot, "my answer")
        await until(pilot, lambda: not more.display, "the jump to the bottom")
        view = log_view(app)
        await until(pilot, lambda: view.scroll_y == view.max_scroll_y, "the bottom")
    await bob.close()


async def test_21_idle_status_bar_runs_no_timer(server: ChatServer) -> None:
    app = make_app(server.port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        timer = app.chat.query_one("#status")._timer  # type: ignore[attr-defined]
        assert timer is not None and timer._active.is_set() is False
        assert not composer(app).cursor_blink  # a blinking cursor was most of the idle CPU


def test_profile_keys_are_per_server_and_nick() -> None:
    config = ClientConfig()
    config.set_profile("h", 1, "Alice", Profile(rooms=["dev"]))
    assert config.profile("h", 1, "alice").rooms == ["dev"]
    assert config.profile("h", 2, "alice").rooms == ["lobby"]
