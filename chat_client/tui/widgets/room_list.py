"""The list of conversations on the left: number, name, unread count, mention mark."""

from __future__ import annotations

from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from ..conversations import Conversation
from ..text import literal

__all__ = ["RoomList"]


class RoomList(OptionList, can_focus=False):
    """Click a row to switch; Alt+N goes to row N. Never takes keyboard focus."""

    class Chosen(Message):
        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: tuple[tuple[str, int, bool, bool, bool], ...] = ()

    def update_rooms(self, conversations: list[Conversation], current: str | None) -> None:
        rows = tuple(
            (c.key, c.unread, c.mentioned, c.joined or not c.is_room, c.key == current)
            for c in conversations
        )
        if rows == self._shown:
            return
        self._shown = rows
        self.clear_options()
        self.add_options(
            Option(self._prompt(number, row), id=row[0]) for number, row in enumerate(rows, 1)
        )
        keys = [row[0] for row in rows]
        if current in keys:
            self.highlighted = keys.index(current)

    @staticmethod
    def _prompt(number: int, row: tuple[str, int, bool, bool, bool]) -> Content:
        key, unread, mentioned, joined, current = row
        label = Content.styled(f"{number} " if number < 10 else "  ", "dim")
        name = literal(key, "" if joined else "dim strike", single_line=True)
        if current:
            name = name.stylize("bold")
        label += name
        if unread:
            badge = f" {unread}" + (" !" if mentioned else "")
            label += Content.styled(badge, "bold yellow" if mentioned else "bold cyan")
        return label

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option_id:
            self.post_message(self.Chosen(event.option_id))
