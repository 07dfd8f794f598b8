"""The composer: where messages are typed, with history, completion and safe paste.

Up in an empty box first asks its owner (`on_empty_up`: the chat screen edits
the last message sent, as in Slack and Discord); otherwise it recalls history.
Up or Down again leave the edit and browse the history.

Enter takes the text and empties the box *in the same key handler*, before
anything else runs, so keys that arrive together ("one⏎two⏎" in one read)
can never merge into one line or be sent twice. A paste keeps its newlines
and is sent as one multi-line message; the box grows to show it and says so.
"""

from __future__ import annotations

from collections.abc import Callable

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import TextArea

from ..completion import Completer

__all__ = ["Composer"]

HISTORY_SIZE = 500


class Composer(TextArea):
    """A TextArea where Enter sends, Tab completes and Up/Down recall earlier input."""

    # Ctrl+J: what terminals send for it is a line feed; Alt+Enter reaches Textual as Enter.
    BINDINGS = [Binding("ctrl+j", "newline", "New line", show=False)]

    class Submitted(Message):
        """The user pressed Enter on some text; the composer is already empty again."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, completer: Completer, *, placeholder: str = "", id: str | None = None):
        super().__init__(
            id=id,
            soft_wrap=True,
            compact=True,
            highlight_cursor_line=False,
            placeholder=placeholder,
        )
        # A steady cursor: blinking is most of what an idle client would spend CPU on.
        self.cursor_blink = False
        self._completer = completer
        self._history: list[str] = []
        self._browse = 0  # index into history; len(history) = the text being typed
        self._draft = ""
        # Up in an empty input: edit the last message (True: done, no history recall).
        self.on_empty_up: Callable[[], bool] | None = None
        # History is browsed: True if that ended an edit (its text goes, the draft was "").
        self.on_recall: Callable[[], bool] | None = None

    # -- sending -------------------------------------------------------------

    async def _on_key(self, event: events.Key) -> None:
        # Enter and Tab are handled here, in this widget's own queue, after every key
        # typed before them (a priority binding would run ahead of those keys).
        if event.key.startswith("alt+"):
            event.prevent_default()  # Alt+key is a command (Alt+1: window 1), never text
            return
        if event.key in ("enter", "tab"):
            event.stop()
            event.prevent_default()
            if event.key == "enter":
                self.action_submit()
            else:
                self.action_complete()

    def action_submit(self) -> None:
        text = self.text
        if not text.strip():
            return
        self.load_text("")
        self._remember(text)
        self.post_message(self.Submitted(text))

    def action_newline(self) -> None:
        self.insert("\n")

    def _remember(self, text: str) -> None:
        if not self._history or self._history[-1] != text:
            self._history.append(text)
            del self._history[:-HISTORY_SIZE]
        self._browse = len(self._history)
        self._draft = ""

    def forget_last(self) -> None:
        """Drop the newest line from the history (it held something secret)."""
        if self._history:
            self._history.pop()
        self._browse = len(self._history)

    def recall_last(self, text: str) -> None:
        """Put `text` back (a line that could not be sent)."""
        if not self.text:
            self.load_text(text)
            self.move_cursor(self.document.end)

    # -- paste ---------------------------------------------------------------

    async def _on_paste(self, event: events.Paste) -> None:
        event.prevent_default()
        event.stop()
        text = event.text.replace("\r\n", "\n").replace("\r", "\n")
        if text:
            self.replace(text, *self.selection)
        self.focus()

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        lines = self.document.line_count
        self.set_class(lines > 1, "-multiline")
        self.border_title = f"{lines} lines: Enter sends them as one message" if lines > 1 else None

    # -- history ---------------------------------------------------------------

    def action_cursor_up(self, select: bool = False) -> None:
        if select or not self.cursor_at_first_line:
            super().action_cursor_up(select)
        elif not self.text and self.on_empty_up is not None and self.on_empty_up():
            return
        else:
            self._recall(-1)

    def action_cursor_down(self, select: bool = False) -> None:
        if select or not self.cursor_at_last_line:
            super().action_cursor_down(select)
        else:
            self._recall(1)

    def _recall(self, step: int) -> None:
        if self.on_recall is not None and self.on_recall():
            self.load_text("")
        if not self._history:
            return
        if self._browse == len(self._history):
            self._draft = self.text
        self._browse = max(0, min(len(self._history), self._browse + step))
        at_draft = self._browse == len(self._history)
        self.load_text(self._draft if at_draft else self._history[self._browse])
        self.move_cursor(self.document.end)

    # -- completion --------------------------------------------------------------

    def action_complete(self) -> None:
        row, column = self.cursor_location
        line = self.document.get_line(row)
        done = self._completer.complete(line, column)
        if done is None:
            self.app.bell()
            return
        self.replace(done.text, (row, 0), (row, len(line)), maintain_selection_offset=False)
        self.move_cursor((row, done.cursor))
