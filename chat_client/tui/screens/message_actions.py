"""Two small dialogs for acting on a message: confirm a delete, pick a reaction.

Both show the message's text literally (never as markup). The delete dialog
keeps "Keep" focused, so Enter alone never deletes; `y` or the button does.
The reaction picker offers common emoji as buttons (the keys 1-8 press them)
and a field for any other emoji; what it returns is checked by the server.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from ..entries import Entry
from ..text import literal

__all__ = ["COMMON_EMOJI", "ConfirmDelete", "ReactionPicker"]

COMMON_EMOJI = ("👍", "❤", "😂", "🎉", "😮", "😢", "👀", "✅")
PREVIEW_CHARS = 120


def _preview(entry: Entry) -> str:
    text = entry.text.replace("\n", " ")
    cut = text[:PREVIEW_CHARS] + ("…" if len(text) > PREVIEW_CHARS else "")
    return f"{entry.author}: {cut}"


class ConfirmDelete(ModalScreen[bool]):
    """Dismissed with True only when the user confirmed."""

    BINDINGS = [
        Binding("escape,n", "answer(False)", "Keep"),
        Binding("y", "answer(True)", "Delete"),
    ]
    AUTO_FOCUS = "#keep"

    def __init__(self, entry: Entry) -> None:
        super().__init__()
        self.entry = entry

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label("Delete this message for everyone?", classes="dialog-title")
            yield Static(literal(_preview(self.entry)), id="delete-preview")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Keep (n)", id="keep")
                yield Button("Delete (y)", id="delete", variant="error")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "delete")


class ReactionPicker(ModalScreen[str | None]):
    """Dismissed with the chosen emoji, or None."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        *(Binding(str(n), f"pick({n})", show=False) for n in range(1, len(COMMON_EMOJI) + 1)),
    ]
    AUTO_FOCUS = "#emoji-1"

    def __init__(self, entry: Entry) -> None:
        super().__init__()
        self.entry = entry

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label("React to", classes="dialog-title")
            yield Static(literal(_preview(self.entry)), id="react-preview")
            with Horizontal(classes="dialog-buttons"):
                for number, emoji in enumerate(COMMON_EMOJI, 1):
                    yield Button(literal(emoji), id=f"emoji-{number}", classes="emoji")
            yield Label("or type one (Enter); yours again takes it back; Esc cancels")
            yield Input(placeholder="🙂", id="emoji-other", max_length=32)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_pick(self, number: int) -> None:
        if self.focused is self.query_one("#emoji-other", Input):
            return  # a digit typed into the field is text, not a choice
        self.dismiss(COMMON_EMOJI[number - 1])

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "pick" and isinstance(self.focused, Input):
            return False  # let the field have the digit
        return True

    @on(Button.Pressed, ".emoji")
    def _pressed(self, event: Button.Pressed) -> None:
        number = int((event.button.id or "emoji-1").removeprefix("emoji-"))
        self.dismiss(COMMON_EMOJI[number - 1])

    @on(Input.Submitted, "#emoji-other")
    def _typed(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        self.dismiss(text or None)
