"""The members of the room in view, on the right; click one to open a DM."""

from __future__ import annotations

from textual import events
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from ..text import literal

__all__ = ["MemberList"]


class MemberList(OptionList, can_focus=False):
    """One row per nick, cut with an ellipsis rather than wrapped onto more rows."""

    class Chosen(Message):
        def __init__(self, nick: str) -> None:
            super().__init__()
            self.nick = nick

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._nicks: list[str] = []
        self._width = 0

    def update_members(self, nicks: list[str]) -> None:
        width = self.scrollable_content_region.width
        if nicks == self._nicks and width == self._width:
            return
        self._nicks, self._width = list(nicks), width
        self.clear_options()
        # No ids: a server that lists a nick twice must not be able to crash the list.
        self.add_options(
            Option(literal(nick, single_line=True).truncate(max(width, 4), ellipsis=True))
            for nick in self._nicks
        )

    def on_resize(self, event: events.Resize) -> None:
        self.update_members(self._nicks)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if 0 <= event.option_index < len(self._nicks):
            self.post_message(self.Chosen(self._nicks[event.option_index]))
