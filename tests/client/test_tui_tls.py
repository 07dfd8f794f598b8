"""The TUI over TLS: joining a server found on the LAN, moving to TLS, a changed certificate."""

from __future__ import annotations

import secrets
from pathlib import Path

from textual.widgets import DataTable

from chat_client.trust import KnownServers
from chat_client.tui.app import ChatApp, StartOptions
from chat_client.tui.screens import ConnectScreen
from chat_client.tui.screens.fingerprint_changed import FingerprintChangedScreen
from chat_client.tui.widgets.status_bar import StatusBar
from chat_server.discovery import Announcer
from chat_server.server import ChatServer
from protocol import Announcement
from tests.client.tui_support import FAST, SIZE, joined, make_app, until
from tests.conftest import StartServer


def status_text(app: ChatApp) -> str:
    return app.chat.query_one(StatusBar).text


async def test_a_server_found_on_the_lan_is_joined_over_tls(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = await start_server(tls_port=0, data_dir=str(tmp_path))
    server_id = secrets.token_hex(4)
    record = Announcement(server_id, server.port, server.tls_port, server.fingerprint, False, 0)
    announcer = Announcer("lan-room", record, server.context.online_users, ["127.0.0.1"])
    app = ChatApp(
        StartOptions(
            nick="alice", rooms=("lobby",), settings=FAST, remember=False, lan=("127.0.0.1",)
        )
    )
    await announcer.start()
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, ConnectScreen), "the connect screen")
            table = app.screen.query_one(DataTable)
            await until(
                pilot,
                lambda: server_id in [str(k.value) for k in table.rows],
                "the server in the LAN list",
            )
            cells = [str(c) for c in table.get_row_at(table.get_row_index(server_id))]
            assert cells[:3] == ["🔒", "lan-room", f"127.0.0.1:{server.port}"]
            table.focus()
            table.move_cursor(row=table.get_row_index(server_id))
            await pilot.press("enter")
            await until(pilot, joined(app, "lobby"), "the join over TLS")
            assert app.client is not None
            assert (app.client.host, app.client.port) == ("127.0.0.1", server.tls_port)
            assert app.client.security.encrypted
            await until(pilot, lambda: "🔒 TLS" in status_text(app), "the lock in the status bar")
    finally:
        await announcer.close()


async def test_a_typed_plain_address_moves_to_tls(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = await start_server(tls_port=0, data_dir=str(tmp_path))
    app = make_app(server.port, "alice", "lobby", remember=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        assert app.client is not None and app.client.port == server.tls_port
        assert app.client.security.encrypted
        await until(pilot, lambda: "pinned now (first visit)" in status_text(app), "the pin")
        shown = [n.message for n in app._notifications]
        assert any(str(server.fingerprint) in message for message in shown), shown


async def test_a_plain_server_with_a_password_is_flagged(start_server: StartServer) -> None:
    server = await start_server(password="s3cret")
    app = make_app(server.port, "alice", "lobby", remember=False, password="s3cret")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        await until(pilot, lambda: "password sent in clear" in status_text(app), "the flag")


async def test_a_changed_certificate_asks_and_trusting_connects(
    start_server: StartServer, tmp_path: Path, known_servers: Path
) -> None:
    first: ChatServer = await start_server(tls_port=0, data_dir=str(tmp_path / "a"))
    port = first.tls_port
    assert port is not None
    known = KnownServers(known_servers)
    known.check("127.0.0.1", port, first.fingerprint or "")
    await first.close()
    second = await start_server(tls_port=port, data_dir=str(tmp_path / "b"))
    app = make_app(port, "alice", "lobby", remember=False, tls=True)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, FingerprintChangedScreen), "the warning")
        assert second.context.online_users() == 0
        await pilot.click("#trust")
        await until(pilot, joined(app, "lobby"), "the join after trusting")
    assert known.pinned("127.0.0.1", port) == second.fingerprint
