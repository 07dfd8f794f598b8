"""Server lines into messages, with a limit far above 64 KiB and long pages in slices.

The contract ("Large rooms") says a `room` reply or a `history` page may be a
line far longer than 64 KiB. `SERVER_LINE_LIMIT` is 64 MiB: a full page of the
contract's largest size (500 messages of ~16 KB) is ~8 MB and a `room` of
100,000 members ~3.5 MB, so 64 MiB leaves a wide margin for any honest
server, while a broken or hostile one cannot make the client hold an endless
line (the framer drops it and the session reconnects).

Decoding a `history` line of 100,000 short messages (21 MB) in one pydantic call
took 2.2 s on the development machine, all of it with the event loop blocked.
A line over `SLICE_ABOVE` is therefore parsed to Python objects first (0.14 s for
those 21 MB) and its messages are validated by `PageInSlices.advance`, a slice
at a time (~5 ms per 1,000), so the caller can let the loop run in between.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic_core import from_json

from protocol import (
    ChatMessage,
    ErrorCode,
    HistoryPage,
    ProtocolError,
    ServerMessage,
    decode_server_line,
    validation_error,
)

__all__ = ["SERVER_LINE_LIMIT", "SLICE_ABOVE", "PageInSlices", "decode_line"]

log = logging.getLogger("chat_client")

SERVER_LINE_LIMIT = 64 * 1024 * 1024
SLICE_ABOVE = 256 * 1024

_MESSAGES: TypeAdapter[list[ChatMessage]] = TypeAdapter(list[ChatMessage])


class PageInSlices:
    """A long `history` page whose messages are validated a slice at a time."""

    def __init__(self, envelope: HistoryPage, raw_messages: list[Any]) -> None:
        self._envelope = envelope
        self._raw = raw_messages
        self._done: list[ChatMessage] = []
        self._broken = False

    @property
    def finished(self) -> bool:
        return self._broken or len(self._done) == len(self._raw)

    def advance(self, budget: int) -> int:
        """Validate up to `budget` more messages; return how many were done."""
        start = len(self._done)
        chunk = self._raw[start : start + max(1, budget)]
        try:
            self._done.extend(_MESSAGES.validate_python(chunk))
        except ValidationError as exc:
            # Keep the good prefix and say `more`: a join pages on from the last seq.
            log.warning("a history page from the server is broken: %s", validation_error(exc))
            bad = exc.errors(include_url=False)[0]["loc"][0]
            if isinstance(bad, int):
                self._done.extend(_MESSAGES.validate_python(chunk[:bad]))
            self._broken = True
        return len(self._done) - start

    def page(self) -> HistoryPage:
        """The page as validated (call when `finished`)."""
        more = self._envelope.more or self._broken
        return self._envelope.model_copy(update={"messages": self._done, "more": more})


def decode_line(line: bytes) -> ServerMessage | PageInSlices:
    """One framed server line: a message, or a long history page to finish in slices.

    Raises:
        ProtocolError: the line is not a server message.
    """
    if len(line) <= SLICE_ABOVE:
        return decode_server_line(line)
    try:
        raw = from_json(line)
    except ValueError:
        raise ProtocolError(ErrorCode.BAD_JSON, "line is not valid JSON") from None
    if isinstance(raw, dict) and raw.get("type") == "history":
        messages = raw.get("messages")
        if isinstance(messages, list):
            try:
                envelope = HistoryPage.model_validate({**raw, "messages": []})
            except ValidationError as exc:
                raise validation_error(exc) from None
            return PageInSlices(envelope, messages)
    return decode_server_line(line)
