"""The TUI's trust pieces on their own: the fingerprint-changed warning, the LAN server list."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable

from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from chat_client.secure import Security
from chat_client.trust import Verdict
from chat_client.tui.screens.fingerprint_changed import FingerprintChangedScreen, grouped
from chat_client.tui.widgets.security_badge import security_text
from chat_client.tui.widgets.server_list import ServerList
from chat_server.discovery import Announcer
from protocol import Announcement, fingerprint_of
from tests.support import TIMEOUT

SnapCompare = Callable[..., bool]
OLD = fingerprint_of(b"the certificate you trusted")
NEW = fingerprint_of(b"the certificate presented now")


class WarningApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.answer: bool | None = None

    def on_mount(self) -> None:
        def answered(trust: bool | None) -> None:
            self.answer = trust

        self.push_screen(FingerprintChangedScreen("192.168.1.20:7778", OLD, NEW), answered)


def test_fingerprint_changed_warning(snap_compare: SnapCompare) -> None:
    assert snap_compare(WarningApp(), terminal_size=(90, 26))


async def test_the_warning_leaves_unless_trust_is_pressed() -> None:
    app = WarningApp()
    async with app.run_test(size=(90, 26)) as pilot:
        await pilot.press("enter")  # the focused button is Leave
        await pilot.pause()
        assert app.answer is False
    app = WarningApp()
    async with app.run_test(size=(90, 26)) as pilot:
        await pilot.click("#trust")
        await pilot.pause()
        assert app.answer is True


def test_grouped_fingerprint_lines_compare_by_eye() -> None:
    lines = grouped(OLD).splitlines()
    assert len(lines) == 2 and ":".join(lines) == OLD


def test_security_text() -> None:
    pinned = Security(True, OLD, Verdict.KNOWN)
    assert security_text(pinned, True).plain == "🔒 TLS, pinned"
    assert "first visit" in security_text(Security(True, OLD, Verdict.PINNED), False).plain
    assert "password sent in clear" in security_text(Security(False), True).plain
    assert security_text(Security(False), False).plain == "plain text (not encrypted)"


class ListApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.chosen: list[str] = []

    def compose(self) -> ComposeResult:
        yield ServerList(["127.0.0.1"])

    def on_server_list_chosen(self, message: ServerList.Chosen) -> None:
        self.chosen.append(message.server.server_id)


async def wait_until(pilot: Pilot[None], check: Callable[[], bool]) -> None:
    async with asyncio.timeout(TIMEOUT):
        while not check():
            await pilot.pause(0.05)


async def test_server_list_shows_announced_servers_live_and_enter_chooses() -> None:
    server_id = secrets.token_hex(4)
    record = Announcement(server_id, 7777, 7778, OLD, True, 3)
    announcer = Announcer("tui-listed", record, lambda: 3, ["127.0.0.1"])
    app = ListApp()
    async with app.run_test(size=(90, 20)) as pilot:
        await announcer.start()
        try:
            widget = app.query_one(ServerList)
            await wait_until(pilot, lambda: any(s.server_id == server_id for s in widget.servers))
            table = app.query_one(DataTable)
            row = table.get_row_index(server_id)
            cells = [str(cell) for cell in table.get_row_at(row)]
            assert cells == ["🔒", "tui-listed", "127.0.0.1:7777", "3", "🔑"]
            status = app.query_one("#lan-status", Static)
            assert "found" in str(status.render())
            table.focus()
            table.move_cursor(row=row)
            await pilot.press("enter")
            await wait_until(pilot, lambda: server_id in app.chosen)
        finally:
            await announcer.close()
        await wait_until(pilot, lambda: all(s.server_id != server_id for s in widget.servers))
