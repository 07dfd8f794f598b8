"""History in pages that fit: one `history()` call may become several requests.

A reply line must stay well under what the server lets pile up for one client
(1 MiB of unsent output, the contract's default send buffer; issue: a client's
own `history limit 500` of long messages is one 8 MB line). The longest message
is 4,000 characters of up to 4 bytes each, about 16 KB on the wire, so a page
of `HISTORY_PAGE` = 50 messages is at most about 800 KB. Larger requests are
split here and merged into one `HistoryPage`, oldest first, as the server would
have sent it.
"""

from __future__ import annotations

from protocol import ChatMessage, GetHistory, HistoryPage

__all__ = ["HISTORY_PAGE", "HistoryCollector"]

HISTORY_PAGE = 50


class HistoryCollector:
    """Pages one history request through replies of at most `HISTORY_PAGE` messages.

    Args:
        request: the caller's request (validated; its `limit` is the total wanted).
    """

    def __init__(self, request: GetHistory) -> None:
        self.room = request.room or ""  # DM conversations are paged by `DmPages`
        self.forward = request.after is not None
        self._before = request.before
        self._after = request.after
        self._remaining = request.limit
        self._messages: list[ChatMessage] = []
        self._more = False

    def next_request(self, request_id: str) -> GetHistory:
        """The next page to ask for (call once per page, after `add` said not done)."""
        return GetHistory(
            room=self.room,
            before=self._before,
            after=self._after,
            limit=min(self._remaining, HISTORY_PAGE),
            id=request_id,
        )

    def add(self, page: HistoryPage) -> bool:
        """Take one reply; True when the request is complete (then read `result`)."""
        got = page.messages
        self._more = page.more
        self._remaining -= len(got)
        if got:
            if self.forward:
                self._messages.extend(got)
                self._after = got[-1].seq
            else:
                self._messages[:0] = got
                self._before = got[0].seq
        return not page.more or not got or self._remaining <= 0

    def result(self, request_id: str | None) -> HistoryPage:
        """Every message collected, oldest first; `more` as the last page said."""
        return HistoryPage(room=self.room, messages=self._messages, more=self._more, re=request_id)
