"""The search pane: a query field and the hits, newest first, paged on scroll.

Each hit is one row: room, time, author and the text with the matching words
highlighted; every part goes through `literal()` (never markup). Enter opens
the hit in its room (the chat screen fetches it with `history around` when it
is not in memory); reaching the last rows fetches the next page with the
reply's cursor. Esc closes the pane.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from protocol import ChatMessage, SearchResults, parse_ts

from ...events import ChatClientError, RequestError
from ..search import SearchRequest, matches, parse_search
from ..text import literal, visible

__all__ = ["SearchScreen"]

Fetch = Callable[[SearchRequest, str | None], Awaitable[SearchResults]]
NEAR_END = 5  # rows from the end at which the next page is fetched


def hit_row(hit: ChatMessage, query: str) -> Content:
    """`#room 10:02 bob: text` with the words of `query` highlighted."""
    local = parse_ts(hit.ts).astimezone()
    text = visible(hit.text, single_line=True)
    body = Content(text)
    for start, end in matches(text, query):
        body = body.stylize("bold reverse", start, end)
    return Content.assemble(
        literal(f"#{hit.room}", "bold", single_line=True),
        (f" {local:%Y-%m-%d %H:%M} ", "dim"),
        literal(hit.sender, "bold", single_line=True),
        ": ",
        body,
    )


class SearchScreen(ModalScreen[ChatMessage | None]):
    """Dismissed with the hit to open, or None."""

    BINDINGS = [Binding("escape", "close", "Close")]
    AUTO_FOCUS = "#search-query"

    def __init__(self, fetch: Fetch, line: str = "") -> None:
        super().__init__()
        self._fetch = fetch
        self._line = line
        self._request: SearchRequest | None = None
        self.hits: list[ChatMessage] = []
        self._cursor: str | None = None
        self._more = False
        self._loading = False

    def compose(self) -> ComposeResult:
        with Vertical(id="search-box"):
            yield Label("Search: WORDS [in:#room] [from:nick]; Enter opens a hit; Esc closes")
            yield Input(self._line, id="search-query", placeholder="words to find")
            yield Label("", id="search-status")
            yield OptionList(id="search-hits")

    def on_mount(self) -> None:
        if self._line.strip():
            self._start(self._line)

    def action_close(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted, "#search-query")
    def _submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self._start(event.value)

    def _start(self, line: str) -> None:
        try:
            self._request = parse_search(line)
        except ValueError as exc:
            self._status(str(exc))
            return
        self.hits, self._cursor, self._more = [], None, False
        self.query_one("#search-hits", OptionList).clear_options()
        self._status("searching…")
        self._page(self._request, None)

    def _status(self, text: str) -> None:
        self.query_one("#search-status", Label).update(literal(text, single_line=True))

    @work(group="search", exclusive=True)
    async def _page(self, request: SearchRequest, cursor: str | None) -> None:
        self._loading = True
        try:
            results = await self._fetch(request, cursor)
        except (RequestError, ChatClientError) as exc:
            self._status(exc.message if isinstance(exc, RequestError) else f"not done: {exc}")
            return
        finally:
            self._loading = False
        if request is not self._request:
            return  # another search started meanwhile
        hits = [hit for hit in results.results if isinstance(hit, ChatMessage)]
        self.hits.extend(hits)
        self._cursor, self._more = results.cursor, results.more and bool(results.cursor)
        listing = self.query_one("#search-hits", OptionList)
        listing.add_options(Option(hit_row(hit, request.query)) for hit in hits)
        if listing.highlighted is None and self.hits:
            listing.highlighted = 0
            listing.focus()
        count = f"{len(self.hits):,} hit" + ("" if len(self.hits) == 1 else "s")
        self._status(count + (", more below" if self._more else "") if self.hits else "no hits")

    def _near_end(self) -> None:
        if self._more and not self._loading and self._request is not None:
            self._loading = True
            self._page(self._request, self._cursor)

    @on(OptionList.OptionHighlighted, "#search-hits")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_index >= len(self.hits) - NEAR_END:
            self._near_end()

    def on_mouse_scroll_down(self) -> None:
        listing = self.query_one("#search-hits", OptionList)
        if listing.scroll_y >= listing.max_scroll_y - NEAR_END:
            self._near_end()

    @on(OptionList.OptionSelected, "#search-hits")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        if 0 <= event.option_index < len(self.hits):
            self.dismiss(self.hits[event.option_index])
