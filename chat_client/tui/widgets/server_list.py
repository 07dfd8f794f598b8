"""The live list of chat servers announced on the LAN (connect screen).

A row per server (one per server id): a lock when it offers TLS, its name,
address, users online, and a key mark when it asks for a password. Enter on
a row posts `ServerList.Chosen`. Everything shown came from the network, so it
goes through `literal()`. Browsing runs in a worker of this widget and stops
with it; `interfaces=()` turns it off (tests, and programs that do not want
multicast).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable, Static

from ...discovery import (
    DiscoveredServer,
    DiscoveryUnavailable,
    ServerBrowser,
    nothing_found_help,
)
from ..text import literal, visible

__all__ = ["ServerList"]

NOTHING_YET_AFTER = 3.0  # seconds before an empty list explains itself


class ServerList(Widget):
    """Servers found on the LAN, updated as they come and go."""

    DEFAULT_CSS = """
    ServerList { height: auto; max-height: 12; }
    ServerList DataTable { height: auto; max-height: 9; }
    ServerList #lan-status { color: $text-muted; }
    """

    @dataclass
    class Chosen(Message):
        """The user picked `server` (Enter on its row)."""

        server: DiscoveredServer

    def __init__(self, interfaces: Sequence[str] | None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._interfaces = interfaces
        self._servers: dict[str, DiscoveredServer] = {}

    @property
    def servers(self) -> list[DiscoveredServer]:
        return list(self._servers.values())

    def compose(self) -> ComposeResult:
        table: DataTable[object] = DataTable(cursor_type="row", zebra_stripes=False)
        table.add_columns("", "Server on the LAN", "Address", "Users", "")
        yield table
        yield Static(literal("Looking for servers on the LAN…"), id="lan-status")

    def on_mount(self) -> None:
        if self._interfaces is not None and not self._interfaces:
            self.display = False
            return
        self._browse()

    @work(exclusive=True, group="lan")
    async def _browse(self) -> None:
        try:
            browser = ServerBrowser(self._interfaces, on_change=self._show)
            await browser.start()
        except DiscoveryUnavailable as exc:
            self._status(f"{exc}. Type the server's address above.")
            return
        try:
            await asyncio.sleep(NOTHING_YET_AFTER)
            if not self._servers:
                self._status(nothing_found_help(self._interfaces, NOTHING_YET_AFTER))
            await asyncio.Event().wait()  # until the widget goes away
        finally:
            await browser.close()

    def _show(self, servers: list[DiscoveredServer]) -> None:
        table = self.query_one(DataTable)
        chosen = self._chosen_id(table)
        self._servers = {server.server_id: server for server in servers}
        table.clear()
        for server in servers:
            table.add_row(*_cells(server), key=server.server_id)
        if chosen in self._servers:
            table.move_cursor(row=table.get_row_index(chosen))
        count = len(servers)
        found = f"{count} server{'s' if count != 1 else ''} found"
        self._status(
            f"{found}: Tab to the list, ↑↓ to choose, Enter to join"
            if count
            else "Looking for servers on the LAN…"
        )

    def _chosen_id(self, table: DataTable[object]) -> str | None:
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return key if isinstance(key, str) else None

    def _status(self, text: str) -> None:
        self.query_one("#lan-status", Static).update(literal(text))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        server = self._servers.get(str(event.row_key.value))
        if server is not None:
            self.post_message(self.Chosen(server))


def _cells(server: DiscoveredServer) -> tuple[object, ...]:
    host = server.host
    address = f"[{host}]" if ":" in host else host
    port = server.plain_port if server.plain_port is not None else server.port
    # rich Text (never markup) of `visible()` strings: DataTable sizes its columns by them.
    return (
        "🔒" if server.tls_port is not None else " ",
        Text(visible(server.name, single_line=True)),
        Text(visible(f"{address}:{port}", single_line=True)),
        str(server.users),
        "🔑" if server.password_required else " ",
    )
