"""The warning shown when a server presents another certificate than the one pinned.

It shows both fingerprints in groups a person can read aloud and compare, says
in plain words what may have happened and what to do, and keeps the safe
choice (leave) focused: only an explicit press trusts the new certificate.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from ..text import literal

__all__ = ["FingerprintChangedScreen", "grouped"]


def grouped(fingerprint: str, per_line: int = 16) -> str:
    """`AA:BB:…` as lines of `per_line` pairs, so two of them can be compared by eye."""
    pairs = fingerprint.split(":")
    return "\n".join(":".join(pairs[i : i + per_line]) for i in range(0, len(pairs), per_line))


class FingerprintChangedScreen(ModalScreen[bool]):
    """Dismissed with True only when the user chose to trust the new certificate."""

    DEFAULT_CSS = """
    FingerprintChangedScreen { align: center middle; }
    FingerprintChangedScreen > Vertical {
        width: 76; height: auto; border: thick $error; padding: 1 2; background: $surface;
    }
    FingerprintChangedScreen #title { text-style: bold; color: $error; }
    FingerprintChangedScreen .fingerprint { margin: 0 0 1 2; }
    FingerprintChangedScreen Horizontal { height: auto; margin-top: 1; }
    FingerprintChangedScreen Button { margin-right: 2; }
    """

    BINDINGS = [Binding("escape", "leave", "Leave")]
    AUTO_FOCUS = "#leave"

    def __init__(self, address: str, pinned: str, presented: str) -> None:
        super().__init__()
        self.address = address
        self.pinned = pinned
        self.presented = presented

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("The server's certificate has CHANGED", id="title")
            yield Static(literal(f"Server: {self.address}"))
            yield Label("Trusted before:")
            yield Static(literal(grouped(self.pinned)), classes="fingerprint", id="pinned")
            yield Label("Presented now:")
            yield Static(literal(grouped(self.presented)), classes="fingerprint", id="presented")
            yield Static(
                "Someone may be pretending to be this server, or its host made a new "
                "certificate (a new machine, a new data directory). Nothing was sent to it. "
                "Ask the host to read you the fingerprint their server printed at start-up, "
                "and trust the new one only if it is the same.",
                markup=False,
            )
            with Horizontal():
                yield Button("Leave", variant="primary", id="leave")
                yield Button("Trust the new certificate", variant="error", id="trust")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "trust")

    def action_leave(self) -> None:
        self.dismiss(False)
