"""The conversation log: a Line-API scroll view over pre-built `Content` lines.

Each entry is wrapped once (again only on resize) and each screen line is
rendered from a cached Strip, so appending is cheap and a burst of thousands
of messages costs one refresh. Scrolling to the top asks for older history.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from textual.cache import LRUCache
from textual.content import Content
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from .conversations import MAX_ENTRIES
from .lines import LogEntry

__all__ = ["ChatLog"]


class ChatLog(ScrollView, can_focus=True):
    """Shows one conversation's entries, newest at the bottom.

    The vertical scrollbar is always there, so the wrap width does not change when
    the log first outgrows the screen.
    """

    DEFAULT_CSS = """
    ChatLog { background: $surface; padding: 0 1; overflow-y: scroll; }
    """

    class NearTop(Message):
        """The view reached the oldest loaded line: time to fetch older history."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._entries: deque[LogEntry] = deque()
        self._line_counts: deque[int] = deque()
        self._lines: list[Content] = []
        self._wrap_width = 0
        self._strips: LRUCache[tuple[int, int], Strip] = LRUCache(1024)

    @property
    def line_count(self) -> int:
        return len(self._lines)

    @property
    def plain_lines(self) -> list[str]:
        """What the log holds, as plain text (for tests and copying)."""
        return [line.plain for line in self._lines]

    def show(self, entries: Iterable[LogEntry]) -> None:
        """Replace everything with `entries` and scroll to the newest."""
        self._entries = deque(entries)
        self._rewrap()
        self.scroll_end(animate=False)

    def append(self, entries: list[LogEntry]) -> None:
        if not entries:
            return
        at_bottom = self.scroll_y >= self.max_scroll_y - 1
        for entry in entries:
            wrapped = self._wrap(entry)
            self._entries.append(entry)
            self._line_counts.append(len(wrapped))
            self._lines.extend(wrapped)
        self._trim()
        self._resized()
        if at_bottom:
            self.scroll_end(animate=False)

    def prepend(self, entries: list[LogEntry]) -> None:
        """Older entries go above; the lines in view stay where they are."""
        if not entries:
            return
        added: list[Content] = []
        counts: list[int] = []
        for entry in entries:
            wrapped = self._wrap(entry)
            added.extend(wrapped)
            counts.append(len(wrapped))
        self._entries.extendleft(reversed(entries))
        self._line_counts.extendleft(reversed(counts))
        self._lines[:0] = added
        target = self.scroll_y + len(added)
        self._resized()
        # After the refresh, when the new height is known and the scroll is not clamped.
        self.call_after_refresh(self.scroll_to, y=target, animate=False)

    def clear(self) -> None:
        self.show([])

    def _trim(self) -> None:
        excess = len(self._entries) - MAX_ENTRIES
        if excess <= 0:
            return
        dropped_lines = 0
        for _ in range(excess):
            self._entries.popleft()
            dropped_lines += self._line_counts.popleft()
        del self._lines[:dropped_lines]

    def _wrap(self, entry: LogEntry) -> list[Content]:
        width = max(self._wrap_width, 10)
        return [wrapped for line in entry.content.split("\n") for wrapped in line.wrap(width)]

    def _rewrap(self) -> None:
        self._wrap_width = self.scrollable_content_region.width
        self._lines = []
        self._line_counts = deque()
        for entry in self._entries:
            wrapped = self._wrap(entry)
            self._line_counts.append(len(wrapped))
            self._lines.extend(wrapped)
        self._resized()

    def _resized(self) -> None:
        self._strips.clear()
        self.virtual_size = Size(self._wrap_width, len(self._lines))
        self.refresh()

    def on_resize(self) -> None:
        if self.scrollable_content_region.width != self._wrap_width:
            at_bottom = self.scroll_y >= self.max_scroll_y - 1
            self._rewrap()
            if at_bottom:
                self.scroll_end(animate=False)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if new_value <= 0 and old_value > 0:
            self.post_message(self.NearTop())

    def render_line(self, y: int) -> Strip:
        index = self.scroll_offset.y + y
        width = self.scrollable_content_region.width
        if index >= len(self._lines):
            return Strip.blank(width, self.rich_style)
        key = (index, width)
        strip = self._strips.get(key)
        if strip is None:
            line = self._lines[index]
            segments = line.render_segments(self.visual_style)
            strip = Strip(segments, line.cell_length).crop_extend(0, width, self.rich_style)
            self._strips[key] = strip
        return strip
