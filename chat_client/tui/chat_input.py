"""The input line: history with Up/Down, Tab completion of commands and nicks."""

from __future__ import annotations

from collections.abc import Callable

from textual.binding import Binding
from textual.widgets import Input

from .commands import COMMANDS

__all__ = ["ChatInput"]

HISTORY_SIZE = 500


class ChatInput(Input):
    """An Input that remembers what was sent and completes words."""

    BINDINGS = [
        Binding("up", "history(-1)", "Previous input", show=False),
        Binding("down", "history(1)", "Next input", show=False),
        Binding("tab", "complete", "Complete", priority=True),
    ]

    def __init__(
        self, nicks: Callable[[], list[str]], *, placeholder: str = "", id: str | None = None
    ) -> None:
        super().__init__(placeholder=placeholder, id=id, select_on_focus=False)
        self._nicks = nicks
        self._history: list[str] = []
        self._browse = 0  # index into history; len(history) = the line being typed
        self._draft = ""
        self._cycle: tuple[str, list[str], int] | None = None  # (prefix, matches, shown)

    def remember(self, line: str) -> None:
        if line and (not self._history or self._history[-1] != line):
            self._history.append(line)
            del self._history[:-HISTORY_SIZE]
        self._browse = len(self._history)
        self._draft = ""

    def action_history(self, step: int) -> None:
        if not self._history:
            return
        if self._browse == len(self._history):
            self._draft = self.value
        self._browse = max(0, min(len(self._history), self._browse + step))
        self.value = (
            self._draft if self._browse == len(self._history) else self._history[self._browse]
        )
        self.cursor_position = len(self.value)

    def action_complete(self) -> None:
        """Complete the word before the cursor; Tab again cycles through the matches."""
        before = self.value[: self.cursor_position]
        start = before.rfind(" ") + 1
        word = before[start:]
        cycle = self._cycle
        if cycle is not None and word == cycle[1][cycle[2]]:
            matches, shown = cycle[1], (cycle[2] + 1) % len(cycle[1])
        else:
            matches, shown = self._candidates(word, start), 0
        if not matches:
            self.app.bell()
            return
        self._cycle = (word, matches, shown)
        choice = matches[shown]
        if len(matches) == 1:
            choice += " " if choice.startswith("/") or start > 0 else ": "
        replaced = before[:start] + choice
        self.value = replaced + self.value[self.cursor_position :]
        self.cursor_position = len(replaced)

    def _candidates(self, word: str, start: int) -> list[str]:
        if start == 0 and word.startswith("/"):
            return sorted(name for name in COMMANDS if name.startswith(word.lower()))
        if not word:
            return []
        lowered = word.lower()
        return sorted(
            (nick for nick in self._nicks() if nick.lower().startswith(lowered)), key=str.lower
        )
