"""The connect screen: server, nick and password, pre-filled from last time.

The cursor starts in the field that has a problem, else in the first empty
one, so typing a password never lands in the server box.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, Static

from ... import routing
from ...discovery import DiscoveredServer
from ...routing import Route, RouteError, route_to_discovered
from ...settings import DEFAULT_PORT
from ..text import literal
from ..widgets.server_list import ServerList

__all__ = ["ConnectRequest", "ConnectScreen", "Field", "Problem", "parse_address"]

Field = Literal["address", "nick", "password"]


@dataclass(frozen=True, slots=True)
class ConnectRequest:
    host: str
    port: int
    nick: str
    password: str | None = field(default=None, repr=False)
    route: Route | None = None  # decided already (a server picked from the LAN list)
    account_password: str | None = field(default=None, repr=False)  # version 2
    keyring: bool | None = None  # keep the account password in the keyring; None: as before


@dataclass(frozen=True, slots=True)
class Problem:
    """Why the last attempt failed, and which field to fix."""

    text: str
    field: Field


def parse_address(text: str) -> tuple[str, int]:
    """`host`, `host:port` or `[v6]:port` → (host, port), 7777 by default. Raises ValueError."""
    try:
        host, port = routing.parse_address(text)
    except RouteError as exc:
        raise ValueError(str(exc)) from None
    return host, port if port is not None else DEFAULT_PORT


def _address_of(server: DiscoveredServer) -> str:
    host = f"[{server.host}]" if ":" in server.host else server.host
    return f"{host}:{server.plain_port or server.port}"


class ConnectScreen(Screen[ConnectRequest]):
    """Asks where to connect and as whom; dismisses with a ConnectRequest."""

    BINDINGS = [Binding("escape", "app.quit", "Quit")]

    def __init__(
        self,
        last: ConnectRequest,
        problem: Problem | None = None,
        lan: Sequence[str] | None = (),
    ) -> None:
        super().__init__()
        self._last = last
        self._problem = problem
        self._lan = lan  # interfaces to look for servers on: None every LAN one, () none
        self._picked: DiscoveredServer | None = None

    def compose(self) -> ComposeResult:
        last = self._last
        address = last.host if last.port == DEFAULT_PORT else f"{last.host}:{last.port}"
        with Vertical(id="connect-box"):
            yield Label("Connect to a chat server", id="title")
            yield Label("Server (host or host:port)")
            yield Input(address, id="address", select_on_focus=False, compact=True)
            yield Label("Nick")
            yield Input(
                last.nick,
                placeholder="letters, digits, _ and -",
                id="nick",
                select_on_focus=False,
                compact=True,
            )
            yield Label("Server password (if it has one)")
            yield Input(
                last.password or "",
                password=True,
                id="password",
                select_on_focus=False,
                compact=True,
            )
            yield Static(literal(self._problem.text if self._problem else ""), id="problem")
            yield Button("Connect", variant="primary", id="connect")
            yield ServerList(self._lan, id="lan")
        yield Footer()

    AUTO_FOCUS = None  # the field is chosen below

    def on_screen_resume(self) -> None:
        self._focus_field(self._problem.field if self._problem else self._first_empty())

    def _first_empty(self) -> Field:
        fields: tuple[Field, ...] = ("address", "nick", "password")
        for name in fields:
            if not self.query_one(f"#{name}", Input).value:
                return name
        return "password"

    def _focus_field(self, name: Field) -> None:
        target = self.query_one(f"#{name}", Input)
        target.focus()
        target.cursor_position = len(target.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self._submit()

    def on_server_list_chosen(self, message: ServerList.Chosen) -> None:
        """A server picked from the LAN list: its address goes in the box; join it."""
        message.stop()
        server = message.server
        self._picked = server
        address = self.query_one("#address", Input)
        address.value = _address_of(server)
        if self.query_one("#nick", Input).value.strip():
            self._submit()
        else:
            self._focus_field("nick")

    def _submit(self) -> None:
        typed = self.query_one("#address", Input).value
        picked = self._picked if self._picked and typed == _address_of(self._picked) else None
        try:
            host, port = parse_address(typed)
        except ValueError as exc:
            self.show_problem(Problem(str(exc), "address"))
            return
        nick = self.query_one("#nick", Input).value.strip()
        if not nick:
            self.show_problem(Problem("choose a nick: letters, digits, _ and -, up to 32", "nick"))
            return
        password = self.query_one("#password", Input).value or None
        route = route_to_discovered(picked) if picked is not None else None
        self.dismiss(ConnectRequest(host, port, nick, password, route))

    def show_problem(self, problem: Problem) -> None:
        self.query_one("#problem", Static).update(literal(problem.text))
        self._focus_field(problem.field)
