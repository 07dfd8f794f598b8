"""The conversation log: a Line-API scroll view over entries wrapped for its width.

Each entry is wrapped once (again on resize or a theme change) and each screen
line is rendered from a cached Strip, so appending is cheap and a burst of
thousands of messages costs one refresh. The log *follows* the newest line
until the user scrolls up, and keeps following through resizes; while it does
not, it counts what arrived below. Day separators are derived from the entries
themselves, so pages of older history can never add a second one for a day.
A "read up to here" line follows the last entry at or below the read marker
when a message comes after it (`set_read_line`).

Text can be selected with the mouse, as in Textual's own `Log`: every strip
carries its line and column offsets, the selected span is drawn in the
screen's selection style, and `get_selection` returns the plain text of the
lines as shown (the chat screen copies it to the clipboard).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import date

from rich.style import Style as RichStyle
from textual import events
from textual.cache import LRUCache
from textual.content import Content
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.selection import Selection
from textual.strip import Strip
from textual.style import Style

from ..conversations import MAX_ENTRIES
from ..entries import Entry
from ..render import day_line, entry_lines, read_line

__all__ = ["MessageLog"]

USER_SCROLL_WINDOW = 1.0  # seconds: a move to the top this soon after a user scroll is theirs


class MessageLog(ScrollView, can_focus=False):
    """Shows one conversation's entries, newest at the bottom, pending lines below them.

    It never takes focus: typing always goes to the composer. The vertical
    scrollbar is always there, so the wrap width does not change when the log
    first outgrows the screen.
    """

    class Clicked(Message):
        """A click (not a drag) on the lines of `entry`."""

        def __init__(self, entry: Entry) -> None:
            super().__init__()
            self.entry = entry

    class NearTop(Message):
        """The user reached the oldest loaded line: time to fetch older history."""

    class Following(Message):
        """Whether the log follows the newest line, and how many entries arrived below."""

        def __init__(self, following: bool, unseen: int) -> None:
            super().__init__()
            self.following = following
            self.unseen = unseen

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._entries: list[Entry] = []
        self._counts: list[int] = []  # screen lines per entry
        self._lines: list[Content] = []
        self._tail: list[Content] = []  # pending lines
        self._pending: list[Entry] = []
        self._wrap_width = 0
        self._strips: LRUCache[tuple[int, int], Strip] = LRUCache(1024)
        self.following = True
        self.unseen = 0
        self._user_scrolled = 0.0
        self._wrap_scheduled = False
        self._is_dark = True
        self._read_seq = 0  # the read marker: the line goes after the last entry at or below
        self._read_after: Entry | None = None  # the entry the line is drawn after
        self._pressed_at: tuple[int, int] | None = None  # where the mouse went down
        self._pad_style = RichStyle()  # worked out once per paint (render_lines)

    # -- what tests and copying read -------------------------------------------

    @property
    def line_count(self) -> int:
        return len(self._lines) + len(self._tail)

    @property
    def plain_lines(self) -> list[str]:
        return [line.plain for line in self._lines + self._tail]

    @property
    def entries(self) -> list[Entry]:
        return list(self._entries)

    # -- changing what is shown ------------------------------------------------

    @property
    def read_line_at(self) -> int | None:
        """The seq of the entry the read line follows (None: no line)."""
        return self._read_after.seq if self._read_after is not None else None

    def set_read_line(self, seq: int) -> None:
        """Draw the "read up to here" line after the newest entry at or below `seq`."""
        self._read_seq = seq
        self._place_read_line()

    def _read_line_entry(self) -> Entry | None:
        """The entry the line goes after: it needs a message above the marker below it."""
        newer = False
        for entry in reversed(self._entries):
            if entry.seq is None:
                continue
            if entry.seq <= self._read_seq:
                return entry if newer else None
            newer |= entry.is_message
        return None

    def _place_read_line(self) -> None:
        """Move the line if the marker or the entries moved it; rewrap only what changed."""
        target = self._read_line_entry()
        if target is self._read_after:
            return
        old, self._read_after = self._read_after, target
        wrapped = len(self._counts)
        for entry in (old, target):
            if entry is None:
                continue
            for index in range(min(wrapped, len(self._entries)) - 1, -1, -1):
                if self._entries[index] is entry:
                    self._rewrap_entry(index)
                    break
        self._changed()

    def show(
        self,
        entries: Iterable[Entry],
        pending: Iterable[Entry] = (),
        read_seq: int = 0,
        *,
        keep: Entry | None = None,
    ) -> None:
        """Replace everything and follow the newest line, or keep `keep` in view (centred)."""
        self._entries = list(entries)
        self._pending = list(pending)
        self._read_seq = read_seq
        self._read_after = self._read_line_entry()
        self._set_following(True, 0)
        self._rewrap()
        if keep is None or not self.scroll_to_entry(keep):
            self.scroll_end(animate=False, immediate=False)

    def append(self, entries: list[Entry]) -> None:
        """Add entries at the bottom; they are wrapped once the current burst is over.

        Wrapping waits for a callback, so in a flood only the entries that stay
        (the newest MAX_ENTRIES) are ever wrapped.
        """
        if not entries:
            return
        self._entries.extend(entries)
        excess = len(self._entries) - MAX_ENTRIES
        if excess > 0:
            wrapped = len(self._counts)
            gone = min(excess, wrapped)
            del self._lines[: sum(self._counts[:gone])], self._counts[:gone]
            del self._entries[:excess]
            if gone == wrapped:
                self._counts, self._lines = [], []
            else:
                self._rewrap_first()
        if not self.following:
            self._set_following(False, self.unseen + len(entries))
        if not self._wrap_scheduled:
            self._wrap_scheduled = True
            self.call_later(self._wrap_new)

    def _wrap_new(self) -> None:
        """Wrap the entries appended since the last call."""
        self._wrap_scheduled = False
        self._is_dark = self._dark()
        start = len(self._counts)
        if start >= len(self._entries):
            return
        day = self._day_before(start)
        for entry in self._entries[start:]:
            lines = self._block(entry, day)
            day = entry.day or day
            self._counts.append(len(lines))
            self._lines.extend(lines)
        self._changed()
        self._place_read_line()

    def set_pending(self, pending: Iterable[Entry]) -> None:
        self._wrap_new()
        self._pending = list(pending)
        self._tail = self._pending_lines()
        self._changed()

    def prepend(self, entries: list[Entry]) -> None:
        """Older entries go above; the lines in view stay where they are."""
        if not entries:
            return
        self._wrap_new()
        before = len(self._lines)
        blocks: list[list[Content]] = []
        day: date | None = None
        for entry in entries:
            lines = self._block(entry, day)
            day = entry.day or day
            blocks.append(lines)
        self._entries[:0] = entries
        self._counts[:0] = [len(lines) for lines in blocks]
        self._lines[:0] = [line for lines in blocks for line in lines]
        self._rewrap_entry(len(entries))  # its day separator may have gone
        target = self.scroll_y + len(self._lines) - before
        self._changed(follow=False)
        self.call_after_refresh(self.scroll_to, y=target, animate=False)

    def update_entry(self, entry: Entry) -> bool:
        """Draw one changed entry again (an edit, a reaction, a selection): only its
        lines are wrapped and only their strips are rendered again (and, if its height
        changed, those of the lines below it, which moved). False if not shown."""
        index = self._index_of(entry)
        if index is None:
            return False
        if index >= len(self._counts):
            return True  # not wrapped yet: it is wrapped as it is now
        start = sum(self._counts[:index])
        before = self._counts[index]
        self._rewrap_entry(index)
        after = self._counts[index]
        if after == before:
            width = self.scrollable_content_region.width
            for line in range(start, start + after):
                self._strips.discard((line, width))
            self.refresh_lines(start, after)  # in log lines: it subtracts the scroll offset
        else:
            # The lines below it moved: their strips go, those above stay (same index).
            for key in [key for key in self._strips.keys() if key[0] >= start]:
                self._strips.discard(key)
            self.virtual_size = Size(self._wrap_width, self.line_count)
            self.refresh()
            if self.following:
                self.scroll_end(animate=False)
        return True

    def _index_of(self, entry: Entry) -> int | None:
        entries = self._entries
        for index in range(len(entries) - 1, -1, -1):  # changes are mostly to recent lines
            if entries[index] is entry:
                return index
        return None

    def entry_at(self, line: int) -> Entry | None:
        """The entry drawn on log line `line` (None: a pending line or below the end)."""
        for index, count in enumerate(self._counts):
            if line < count:
                return self._entries[index]
            line -= count
        return None

    def shows(self, entry: Entry) -> bool:
        """Is the first line of `entry` on screen now?"""
        index = self._index_of(entry)
        if index is None or index >= len(self._counts):
            return False
        start = sum(self._counts[:index])
        top = self.scroll_offset.y
        return top <= start < top + self.scrollable_content_region.height

    def scroll_to_entry(self, entry: Entry) -> bool:
        """Bring `entry` into view, centred; False if it is not in the log."""
        self._wrap_new()
        index = self._index_of(entry)
        if index is None or index >= len(self._counts):
            return False
        start = sum(self._counts[:index])
        target = max(0, start - max(self.scrollable_content_region.height // 2, 1))
        if target < self.max_scroll_y:
            self._set_following(False, self.unseen)
        self.scroll_to(y=target, animate=False, immediate=True)
        return True

    def jump_to_bottom(self) -> None:
        self._set_following(True, 0)
        self.scroll_end(animate=False)

    def page_up(self) -> None:
        self._user_scrolled = time.monotonic()
        if self.scroll_y <= 0:
            self.post_message(self.NearTop())
        self.scroll_page_up(animate=False)

    def page_down(self) -> None:
        self.scroll_page_down(animate=False)

    # -- wrapping ----------------------------------------------------------------

    def _dark(self) -> bool:
        try:
            return self.app.current_theme.dark
        except Exception:  # no app yet
            return True

    def _block(self, entry: Entry, previous_day: date | None) -> list[Content]:
        lines = entry_lines(entry, self._width(), dark=self._is_dark)
        if entry is self._read_after:
            lines = [*lines, read_line(self._width())]
        day = entry.day
        if day is not None and day != previous_day:
            return [day_line(day), *lines]
        return lines

    def _width(self) -> int:
        return max(self._wrap_width, 10)

    def _last_day(self) -> date | None:
        for entry in reversed(self._entries):
            if entry.day is not None:
                return entry.day
        return None

    def _day_before(self, index: int) -> date | None:
        entries = self._entries
        for i in range(index - 1, -1, -1):  # no slice: one changed entry costs no copy
            day = entries[i].day
            if day is not None:
                return day
        return None

    def _rewrap_entry(self, index: int) -> None:
        if index >= len(self._counts):
            return
        start = sum(self._counts[:index])
        lines = self._block(self._entries[index], self._day_before(index))
        self._lines[start : start + self._counts[index]] = lines
        self._counts[index] = len(lines)

    def _rewrap_first(self) -> None:
        self._rewrap_entry(0)

    def _rewrap(self) -> None:
        self._wrap_scheduled = False
        self._is_dark = self._dark()
        self._wrap_width = self.scrollable_content_region.width
        self._lines, self._counts = [], []
        day: date | None = None
        for entry in self._entries:
            lines = self._block(entry, day)
            day = entry.day or day
            self._counts.append(len(lines))
            self._lines.extend(lines)
        self._tail = self._pending_lines()
        self._changed()

    def _pending_lines(self) -> list[Content]:
        width, dark = self._width(), self._is_dark
        return [line for entry in self._pending for line in entry_lines(entry, width, dark=dark)]

    def _changed(self, *, follow: bool = True) -> None:
        self._strips.clear()
        self.virtual_size = Size(self._wrap_width, self.line_count)
        self.refresh()
        if follow and self.following:
            # At once when the log has its size: a deferred scroll would paint the
            # old offset first and then every line again at the bottom.
            self.scroll_end(animate=False, immediate=self.size.height > 0)

    def refresh_theme(self) -> None:
        self._rewrap()

    # -- following ---------------------------------------------------------------

    def _set_following(self, following: bool, unseen: int) -> None:
        if (following, unseen) != (self.following, self.unseen):
            self.following, self.unseen = following, unseen
            self.post_message(self.Following(following, unseen))

    def on_resize(self, event: events.Resize) -> None:
        if self.scrollable_content_region.width != self._wrap_width:
            self._rewrap()
        elif self.following:
            self.scroll_end(animate=False)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self._user_scrolled = time.monotonic()
        if self.scroll_y <= 0:
            self.post_message(self.NearTop())

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        self._user_scrolled = time.monotonic()

    def on_mouse_down(self, event: events.MouseDown) -> None:
        self._user_scrolled = time.monotonic()  # e.g. dragging the scrollbar
        self._pressed_at = (event.x, event.y)

    def on_click(self, event: events.Click) -> None:
        """A click on a message selects it; a drag (a text selection) does not."""
        if self._pressed_at is not None and self._pressed_at != (event.x, event.y):
            return
        if event.x >= self.scrollable_content_region.width:
            return  # the scrollbar
        entry = self.entry_at(self.scroll_offset.y + event.y)
        if entry is not None and entry.is_message:
            self.post_message(self.Clicked(entry))

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if new_value >= self.max_scroll_y:
            self._set_following(True, 0)
        elif new_value < old_value:  # not a clamp to the bottom: the user moved up
            self._set_following(False, self.unseen)
        if new_value <= 0 < old_value and self._by_user():
            self.post_message(self.NearTop())

    def _by_user(self) -> bool:
        return time.monotonic() - self._user_scrolled < USER_SCROLL_WINDOW

    # -- selection -------------------------------------------------------------

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        """The selected text, as the lines are shown (times, nicks and all)."""
        return selection.extract("\n".join(self.plain_lines)), "\n"

    def selection_updated(self, selection: Selection | None) -> None:
        self._strips.clear()
        self.refresh()

    def render_lines(self, crop: Region) -> list[Strip]:
        # `rich_style` walks every ancestor's styles: once per paint, not once per line.
        self._pad_style = self.rich_style
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        index = self.scroll_offset.y + y
        width = self.scrollable_content_region.width
        if index >= self.line_count:
            return Strip.blank(width, self._pad_style)
        selection = self.text_selection
        span = selection.get_span(index) if selection is not None else None
        key = (index, width)
        strip = self._strips.get(key) if span is None else None
        if strip is None:
            n = len(self._lines)
            line = self._lines[index] if index < n else self._tail[index - n]
            if span is not None:
                start, end = span
                style = Style.from_styles(self.screen.get_component_styles("screen--selection"))
                line = line.stylize(style, start, len(line.plain) if end == -1 else end)
            segments = line.render_segments(self.visual_style)
            strip = Strip(segments, line.cell_length).crop_extend(0, width, self._pad_style)
            strip = strip.apply_offsets(0, index)  # where a mouse press starts a selection
            if span is None:
                self._strips[key] = strip
        return strip
