"""The TUI with accounts (version 2), driven by Pilot against a real server on loopback:
register, the password prompt, two apps of one account, read markers, stored DMs, away."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual import events
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Checkbox, Input

from chat_client import ChatClient
from chat_client.settings import ClientConfig, Profile, load_config, save_config
from chat_client.tui.app import ChatApp
from chat_client.tui.render import READ_LINE
from chat_client.tui.screens import ConnectScreen
from chat_client.tui.screens.account import PasswordScreen, RegisterScreen
from chat_client.tui.widgets import MemberList, RoomList
from chat_server.server import ChatServer
from tests.support import TIMEOUT, LineClient, make_config, open_client, registered, run_command

from .memory_keyring import memory_keyring
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

PASSWORD = "correct horse"


@pytest.fixture(autouse=True)
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test its own settings file (what the app remembers between runs)."""
    path = tmp_path / "client.json"
    monkeypatch.setenv("CHAT_CLIENT_CONFIG", str(path))
    yield path


async def make_account(port: int, nick: str) -> None:
    async with ChatClient("127.0.0.1", port, nick, settings=FAST) as guest:
        await guest.register(PASSWORD)


def file_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def account_app(port: int, nick: str, *rooms: str, **options: object) -> ChatApp:
    return make_app(port, nick, *rooms, account_password=PASSWORD, **options)


def read_line_after(app: ChatApp) -> str | None:
    """The text of the log line just above the read line (None: no read line)."""
    lines = log_view(app).plain_lines
    for index, line in enumerate(lines):
        if READ_LINE in line:
            return lines[index - 1] if index else ""
    return None


def shown(app: ChatApp, selector: str) -> str:
    """The text of a widget on the screen in front ("" while it is being built)."""
    try:
        return str(app.screen.query_one(selector).render())
    except NoMatches:
        return ""


def showing(app: ChatApp, screen: type[Screen[Any]], selector: str) -> Callable[[], bool]:
    """Is `screen` in front, with `selector` built?"""
    return lambda: isinstance(app.screen, screen) and bool(app.screen.query(selector))


async def says(client: LineClient, room: str, *texts: str) -> None:
    for text in texts:
        reply = await client.request({"type": "say", "room": room, "text": text})
        assert reply["type"] == "ack", reply


async def test_two_apps_of_one_account_share_the_read_marker(server: ChatServer) -> None:
    await make_account(server.port, "alice")
    bob = await registered(server.port, "bob", "lobby", "dev")
    one = account_app(server.port, "alice", "lobby", "dev")
    two = account_app(server.port, "alice", "dev", "lobby")  # #dev in view
    async with one.run_test(size=SIZE) as p1, two.run_test(size=SIZE) as p2:
        await until(p1, joined(one, "lobby", "dev"), "the first app's joins")
        await until(p2, joined(two, "dev", "lobby"), "the second app's joins")
        assert "alice" in str(p1.app.screen.query_one("#status").render())
        # #lobby is in view in the first app (focused, at the bottom): it reads them, the
        # server tells the second app, where the unread count drops back to nothing.
        await says(bob, "lobby", "one", "two", "three")
        lobby = two.presenter.conversations.get("#lobby")
        await until(p2, lambda: lobby.read_seq == 3, "the marker from the first app")
        assert (lobby.unread, lobby.synced_seq, lobby.line_seq) == (0, 3, 3)
        rooms = two.chat.query_one("#rooms", RoomList)
        assert str(rooms.get_option_at_index(1).prompt).strip().endswith("#lobby")

        # #dev is in view in the second app, which has lost focus: what comes now is
        # below its read line, until the first app reads it and the line moves down.
        await says(bob, "dev", "first")
        await until(p2, lambda: "first" in log_text(two), "the first line in #dev")
        two.app_focus = False
        await says(bob, "dev", "second", "third")
        await until(p2, lambda: "third" in log_text(two), "more lines in #dev")
        line_above = read_line_after(two)
        assert line_above is not None and line_above.endswith("bob first")
        one.chat.switch_to("#dev")  # the first app reads #dev
        dev = two.presenter.conversations.get("#dev")
        await until(p2, lambda: dev.synced_seq == 3, "the #dev marker from the first app")
        one.app_focus = False  # the first app looks away too
        await says(bob, "dev", "fourth")
        await until(p2, lambda: "fourth" in log_text(two), "a line after the move")
        line_above = read_line_after(two)
        assert line_above is not None and line_above.endswith("bob third")
        await until(p1, lambda: "fourth" in log_text(one), "the line in the first app")
        line_above = read_line_after(one)
        assert line_above is not None and line_above.endswith("bob third")
    await bob.close()


async def test_register_asks_twice_and_the_password_is_never_shown(
    server: ChatServer, config_file: Path
) -> None:
    app = make_app(server.port, "alice", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        await type_line(pilot, "/register oops-a-password")
        assert "oops-a-password" not in log_text(app)
        assert "type /register alone" in log_text(app)
        await pilot.press("up")
        assert "oops" not in composer(app).text  # not kept in the input history
        await type_line(pilot, "/register")
        await until(pilot, showing(app, RegisterScreen, "#new-password"), "the prompt")
        first = app.screen.query_one("#new-password", Input)
        assert first.password  # masked
        await pilot.press(*"short", "enter")
        await pilot.press("enter")
        problem = str(app.screen.query_one("#register-problem").render())
        assert "shorter than 8" in problem
        first.value = ""
        await pilot.press(*PASSWORD, "enter", *"correct horsf", "enter")
        assert "differ" in str(app.screen.query_one("#register-problem").render())
        app.screen.query_one(Checkbox).value = True  # no keyring here: it says so
        await pilot.press(*PASSWORD, "enter")
        await until(pilot, lambda: "is now an account" in log_text(app), "the ack")
        await until(pilot, lambda: bool(app._notifications), "the keyring notice")
        notices = " ".join(str(n.message) for n in app._notifications)
        assert "not saved" in notices and "no system keyring" in notices
        guest = await open_client(server.port)
        refused = await guest.request({"type": "hello", "nick": "alice"})
        assert refused["code"] == "auth_required"
        await guest.close()
        shown = log_text(app) + notices + file_text(config_file)
        assert PASSWORD not in shown and "correct" not in shown
        assert load_config().profile("127.0.0.1", server.port, "alice").keyring is False


async def test_auth_required_opens_the_password_prompt_and_the_keyring_remembers(
    server: ChatServer, config_file: Path
) -> None:
    await make_account(server.port, "alice")
    with memory_keyring() as kept:
        app = make_app(server.port, "alice", "lobby")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, showing(app, PasswordScreen, "#account-password"), "the prompt")
            field = app.screen.query_one("#account-password", Input)
            assert field.password and app.focused is field
            await pilot.press(*"wrong password", "enter")
            await until(
                pilot,
                lambda: (
                    isinstance(app.screen, PasswordScreen)
                    and "wrong account password" in shown(app, "#account-problem")
                ),
                "the refusal said plainly",
            )
            app.screen.query_one(Checkbox).value = True
            await pilot.press(*PASSWORD, "enter")
            await until(pilot, joined(app, "lobby"), "the login")
            assert app.client is not None and app.client.session.welcome is not None
            assert app.client.session.welcome.account
        assert list(kept.passwords.values()) == [PASSWORD]
        assert PASSWORD not in file_text(config_file)
        assert load_config().profile("127.0.0.1", server.port, "alice").keyring
        again = make_app(server.port, "alice", "lobby")  # the keyring logs it in
        async with again.run_test(size=SIZE) as pilot:
            await until(pilot, joined(again, "lobby"), "the login from the keyring")


async def test_escape_on_the_password_prompt_picks_another_nick(server: ChatServer) -> None:
    await make_account(server.port, "alice")
    app = make_app(server.port, "alice", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, showing(app, PasswordScreen, "#account-password"), "the prompt")
        await pilot.press("escape")
        await until(pilot, showing(app, ConnectScreen, "#nick"), "the connect screen")
        nick = app.screen.query_one("#nick", Input)
        await until(pilot, lambda: app.focused is nick, "the nick field focused")
        assert "is an account" in str(app.screen.query_one("#problem").render())
        nick.value = "alice2"
        await pilot.press("enter")
        await until(pilot, joined(app, "lobby"), "the guest login")


async def test_offline_dms_arrive_unread_and_dm_history_comes_back(server: ChatServer) -> None:
    await make_account(server.port, "alice")
    await make_account(server.port, "bob")
    async with ChatClient(
        "127.0.0.1", server.port, "bob", settings=FAST, account_password=PASSWORD
    ) as bob:
        for n in range(3):
            await bob.dm("alice", f"while you were out {n}")
    app = account_app(server.port, "alice", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the login")
        conversations = app.presenter.conversations
        await until(
            pilot,
            lambda: (found := conversations.find_dm("bob")) is not None and found.unread == 3,
            "three unread DMs",
        )
        dm = conversations.find_dm("bob")
        assert dm is not None
        rooms = app.chat.query_one("#rooms", RoomList)
        assert "@bob 3 !" in str(rooms.get_option_at_index(1).prompt)
        await pilot.press("alt+2")
        await until(pilot, lambda: "while you were out 2" in log_text(app), "the DMs shown")
        assert dm.unread == 0
        await until(
            pilot,
            lambda: server.context.hub.accounts.markers.get("alice", {}).get("@bob") == 3,
            "the DM marker on the server",
        )
    # A restart: the conversation comes back with its history, already read.
    app = account_app(server.port, "alice", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the second login")
        dm = app.presenter.conversations.find_dm("bob")
        assert dm is not None
        await until(pilot, lambda: len(dm.entries) == 3, "the DM history from the server")
        assert [e.seq for e in dm.entries] == [1, 2, 3] and dm.unread == 0
        app.chat.switch_to(dm.key)
        await until(pilot, lambda: "while you were out 0" in log_text(app), "the history shown")


async def test_away_members_are_dimmed_and_auto_away_comes_back_on_a_key(
    server: ChatServer,
) -> None:
    bob = await open_client(server.port)
    welcome = await bob.request({"type": "hello", "nick": "bob", "features": ["away"]})
    assert welcome["type"] == "welcome"
    await bob.request({"type": "join", "room": "lobby"})
    app = make_app(server.port, "alice", "lobby", auto_away=0.02)  # 1.2 s
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        members = app.chat.query_one("#members", MemberList)
        await bob.request({"type": "away", "text": "lunch"})
        await until(pilot, lambda: members.away_text("bob") == "lunch", "bob away")
        row = members.get_option_at_index(1).prompt
        assert "bob lunch" in str(row) and "dim" in str(getattr(row, "spans", ""))
        got = await bob.expect("away", nick="alice", timeout=10)  # idle: auto-away
        assert got["text"] == "idle"
        assert "away: idle" in str(app.chat.query_one("#status").render())
        await pilot.press("x")
        back = await bob.expect("away", nick="alice")
        assert back["text"] is None
        await type_line(pilot, "/away in a meeting")
        got = await bob.expect("away", nick="alice")
        assert got["text"] == "in a meeting"
        await pilot.press("y")  # a manual away stays through key presses
        assert await bob.quiet(0.3) == []
        await bob.request({"type": "away"})
        await until(pilot, lambda: members.away_text("bob") is None, "bob back")
    await bob.close()


async def test_a_password_changed_meanwhile_brings_the_prompt_back(tmp_path: Path) -> None:
    """After /register the reconnects log in with the password; once it is reset on the
    server, the next reconnect opens the prompt, which says so, and the new one works."""
    db = str(tmp_path / "h.db")
    server = ChatServer(make_config(db_path=db))
    await server.start()
    port = server.port
    try:
        app = make_app(port, "alice", "lobby")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, joined(app, "lobby"), "the join")
            await type_line(pilot, "/register")
            await until(pilot, showing(app, RegisterScreen, "#new-password"), "the prompt")
            await pilot.press(*PASSWORD, "enter", *PASSWORD, "enter")
            await until(pilot, lambda: "is now an account" in log_text(app), "the ack")
            await server.close()
            await until(pilot, lambda: not joined(app, "lobby")(), "the drop")
            server = ChatServer(make_config(db_path=db, port=port))
            await server.start()
            await until(pilot, joined(app, "lobby"), "the reconnect with the password")
            await server.close()
            code, _, err = await run_command(
                "accounts", "reset-password", "alice", "--db", db, stdin=b"battery staple\n"
            )
            assert code == 0, err
            server = ChatServer(make_config(db_path=db, port=port))
            await server.start()
            await until(
                pilot,
                lambda: "wrong account password" in shown(app, "#account-problem"),
                "the prompt after the reconnect",
                timeout=3 * TIMEOUT,
            )
            await pilot.press(*"battery staple", "enter")
            await until(pilot, joined(app, "lobby"), "logged in with the new password")
            assert "battery" not in log_text(app)
    finally:
        await server.close()


async def test_type_ahead_in_the_register_prompt_lands_in_the_next_field(
    server: ChatServer,
) -> None:
    """Keys that arrive in one read ("pw⏎pw⏎", a fast typist or a paste) are not all
    put in the first field: what follows Enter goes to the second one."""
    app = make_app(server.port, "alice", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        await type_line(pilot, "/register")
        await until(pilot, showing(app, RegisterScreen, "#new-password"), "the prompt")
        burst = [*PASSWORD, "enter", *PASSWORD, "enter"]
        for key in burst:  # queued together, as one read of the terminal delivers them
            character = key if len(key) == 1 else ("\r" if key == "enter" else None)
            name = "space" if key == " " else key
            app.post_message(events.Key(name, character))
        await until(pilot, lambda: "is now an account" in log_text(app), "the ack")


@pytest.mark.parametrize("move", ["tab", "shift+tab"])
async def test_a_burst_with_tab_in_the_register_prompt_fills_both_fields(
    server: ChatServer, move: str
) -> None:
    """`tmux send-keys 'pw' Tab 'pw' Enter` delivers the keys in one read: what follows
    the Tab goes to the field Tab moved to (shift+tab: the second field, back to the
    first, and on to the second again, all in the burst)."""
    app = make_app(server.port, "alice", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        await type_line(pilot, "/register")
        await until(pilot, showing(app, RegisterScreen, "#new-password"), "the prompt")
        back = ["tab", "shift+tab"] if move == "shift+tab" else []
        burst = [*PASSWORD, *back, "tab", *PASSWORD, "enter"]
        for key in burst:  # queued together, no pause between them
            character = key if len(key) == 1 else {"enter": "\r", "tab": "\t"}.get(key)
            name = "space" if key == " " else key
            app.post_message(events.Key(name, character))
        await until(pilot, lambda: "is now an account" in log_text(app), "the ack")


async def test_a_remembered_dm_partner_with_no_account_any_more_is_dropped(
    server: ChatServer,
) -> None:
    await make_account(server.port, "alice")
    await make_account(server.port, "bob")
    config = ClientConfig()
    config.set_profile(
        "127.0.0.1", server.port, "alice", Profile(rooms=["lobby"], dms=["bob", "zed"])
    )
    save_config(config)
    app = account_app(server.port, "alice")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the login")
        conversations = app.presenter.conversations
        await until(pilot, lambda: "@zed" not in conversations, "zed's conversation dropped")
        assert "@bob" in conversations  # an account: kept, though nothing was said yet
