"""The connect screen: server, nick and password, pre-filled from last time."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, Static

from ..settings import DEFAULT_PORT, LastConnection
from .text import literal

__all__ = ["ConnectRequest", "ConnectScreen", "parse_address"]


@dataclass(frozen=True, slots=True)
class ConnectRequest:
    host: str
    port: int
    nick: str
    password: str | None


def parse_address(text: str) -> tuple[str, int]:
    """`host`, `host:port` or `[v6]:port` → (host, port). Raises ValueError."""
    text = text.strip()
    if not text:
        raise ValueError("type the server's address, e.g. localhost or 192.168.1.20:7777")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if not port_text:
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{port_text!r} is not a port number (1-65535)")
    return host, int(port_text)


class ConnectScreen(Screen[ConnectRequest]):
    """Asks where to connect and as whom; dismisses with a ConnectRequest."""

    DEFAULT_CSS = """
    ConnectScreen { align: center middle; }
    ConnectScreen > Vertical {
        width: 60; height: auto; border: round $primary; padding: 1 2; background: $panel;
    }
    ConnectScreen Label { margin-top: 1; }
    ConnectScreen #title { text-style: bold; margin: 0; }
    ConnectScreen #problem { color: $error; margin-top: 1; height: auto; }
    ConnectScreen Button { margin-top: 1; width: 100%; }
    """
    BINDINGS = [Binding("escape", "app.quit", "Quit")]
    AUTO_FOCUS = "#nick"

    def __init__(self, last: LastConnection, problem: str = "", focus_password: bool = False):
        super().__init__()
        self._last = last
        self._problem = problem
        self._focus_password = focus_password

    def compose(self) -> ComposeResult:
        last = self._last
        address = last.host if last.port == DEFAULT_PORT else f"{last.host}:{last.port}"
        with Vertical():
            yield Label("Connect to a chat server", id="title")
            yield Label("Server (host or host:port)")
            yield Input(address, id="address", select_on_focus=False, compact=True)
            yield Label("Nick")
            yield Input(last.nick, placeholder="letters, digits, _ and -", id="nick", compact=True)
            yield Label("Password (if the server has one)")
            yield Input(password=True, id="password", compact=True)
            yield Static(literal(self._problem), id="problem")
            yield Button("Connect", variant="primary", id="connect")
        yield Footer()

    def on_mount(self) -> None:
        if self._focus_password:
            self.query_one("#password", Input).focus()
        elif self._last.nick:
            self.query_one("#address", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self._submit()

    def _submit(self) -> None:
        try:
            host, port = parse_address(self.query_one("#address", Input).value)
        except ValueError as exc:
            self.show_problem(str(exc))
            return
        nick = self.query_one("#nick", Input).value.strip()
        if not nick:
            self.show_problem("choose a nick: letters, digits, _ and -, up to 32")
            return
        password = self.query_one("#password", Input).value or None
        self.dismiss(ConnectRequest(host, port, nick, password))

    def show_problem(self, problem: str) -> None:
        self.query_one("#problem", Static).update(literal(problem))
