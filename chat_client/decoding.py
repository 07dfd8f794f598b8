"""Server lines into messages, with a limit far above 64 KiB and long pages in slices.

The contract ("Large rooms") says a `room` reply or a `history` page may be a
line far longer than 64 KiB. `SERVER_LINE_LIMIT` is 64 MiB: a full page of the
contract's largest size (500 messages of ~16 KB) is ~8 MB and a `room` of
100,000 members ~3.5 MB, so 64 MiB leaves a wide margin for any honest
server, while a broken or hostile one cannot make the client hold an endless
line (the framer drops it and the session reconnects).

Decoding a `history` line of 100,000 short messages in one pydantic call held
the event loop for 1.3 to 2.2 s on the development machine, and parsing it to
Python objects first (`json.loads`, `pydantic_core.from_json`) still took 0.3
to 0.55 s in one call, and a `room_list` of 57,000 rooms 0.38 s. So a `history`
or `room_list` line over `SLICE_ABOVE` is read by `PageInSlices`: the few
envelope fields with the C JSON scanner, then the long array one element at a
time, validated in slices of `budget` items (~8 ms per 1,000 messages), and the
caller lets the loop run in between.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from protocol import (
    ChatMessage,
    HistoryPage,
    RoomList,
    RoomSummary,
    ServerMessage,
    decode_server_line,
    validation_error,
)

__all__ = ["SERVER_LINE_LIMIT", "SLICE_ABOVE", "PageInSlices", "decode_line"]

log = logging.getLogger("chat_client")

SERVER_LINE_LIMIT = 64 * 1024 * 1024
SLICE_ABOVE = 256 * 1024


@dataclass(frozen=True, slots=True)
class _Sliceable:
    """A reply type whose one long list is read in slices."""

    model: type[HistoryPage] | type[RoomList]
    field: str
    items: TypeAdapter[list[Any]]


# `type` -> what to slice. A `history` with `with` (version 2: DMs) is left whole.
_SLICEABLE = {
    "history": _Sliceable(HistoryPage, "messages", TypeAdapter(list[ChatMessage])),
    "room_list": _Sliceable(RoomList, "rooms", TypeAdapter(list[RoomSummary])),
}
_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")


class PageInSlices:
    """A long `history` (or `room_list`) line, parsed and validated a slice at a time."""

    def __init__(self, kind: _Sliceable, text: str, pos: int, fields: dict[str, Any]) -> None:
        self._kind = kind
        self._text = text
        self._pos = pos  # just after the `[` of the list, then after each element
        self._fields = fields
        self._done: list[Any] = []
        self._in_array = True
        self.finished = False
        self._broken = False

    @classmethod
    def start(cls, text: str) -> PageInSlices | None:
        """Read the envelope up to its long list; None if this is no line to slice.

        Only `type` and the fields before the list are known then, so the
        line is sliced only when `type` comes first (as this project's server
        and any pydantic model encode it); otherwise it is decoded whole.
        """
        try:
            pos = _expect(text, _skip(text, 0), "{")
            fields: dict[str, Any] = {}
            while True:
                key, pos = _next_key(text, pos, first=not fields)
                if key is None:
                    return None
                kind = _SLICEABLE.get(fields.get("type", ""))
                if kind is not None and key == kind.field:
                    if "with" in fields or text[pos : pos + 1] != "[":
                        return None
                    return cls(kind, text, pos + 1, fields)
                fields[key], pos = _DECODER.raw_decode(text, pos)
        except ValueError:
            return None

    def advance(self, budget: int) -> int:
        """Parse and validate up to `budget` more items; return how many were done."""
        start = len(self._done)
        try:
            chunk = self._parse(max(1, budget))
        except ValueError as exc:
            log.warning("a long line from the server is not valid JSON: %s", exc)
            self.finished = self._broken = True
            return 0
        try:
            self._done.extend(self._kind.items.validate_python(chunk))
        except ValidationError as exc:
            # Keep the good prefix; a history page says `more`, so a join pages on.
            log.warning("a long line from the server is broken: %s", validation_error(exc))
            bad = exc.errors(include_url=False)[0]["loc"][0]
            if isinstance(bad, int):
                self._done.extend(self._kind.items.validate_python(chunk[:bad]))
            self.finished = self._broken = True
        return len(self._done) - start

    def page(self) -> HistoryPage | RoomList | None:
        """The message as validated (call when `finished`); None if its envelope is bad."""
        fields = {**self._fields, self._kind.field: []}
        if self._broken and self._kind.model is HistoryPage:
            fields["more"] = True
        try:
            envelope = self._kind.model.model_validate(fields)
        except ValidationError as exc:
            log.warning("a long line from the server is broken: %s", validation_error(exc))
            return None
        return envelope.model_copy(update={self._kind.field: self._done})

    def _parse(self, budget: int) -> list[Any]:
        text, pos = self._text, self._pos
        chunk: list[Any] = []
        while self._in_array and len(chunk) < budget:
            pos = _skip(text, pos)
            if text[pos : pos + 1] == "]":
                self._in_array = False
                pos += 1
                break
            if chunk or self._done:
                pos = _skip(text, _expect(text, pos, ","))
            element, pos = _DECODER.raw_decode(text, pos)
            chunk.append(element)
        if not self._in_array:
            pos = self._read_rest(pos)
        self._pos = pos
        return chunk

    def _read_rest(self, pos: int) -> int:
        """The envelope fields after `messages`, up to the closing brace."""
        text = self._text
        while True:
            key, pos = _next_key(text, pos, first=False)
            if key is None:
                if text[_skip(text, pos) :]:
                    raise ValueError("extra data after the object")
                self.finished = True
                return pos
            self._fields[key], pos = _DECODER.raw_decode(text, pos)


def _skip(text: str, pos: int) -> int:
    found = _SPACE.match(text, pos)
    return found.end() if found else pos


def _expect(text: str, pos: int, char: str) -> int:
    if text[pos : pos + 1] != char:
        raise ValueError(f"expected {char!r} at {pos}")
    return pos + 1


def _next_key(text: str, pos: int, *, first: bool) -> tuple[str | None, int]:
    """The next key of an object and the position of its value; None at the closing brace."""
    pos = _skip(text, pos)
    if text[pos : pos + 1] == "}":
        return None, pos + 1
    if not first:
        pos = _skip(text, _expect(text, pos, ","))
    if text[pos : pos + 1] != '"':
        raise ValueError(f"expected a key at {pos}")
    key, pos = _DECODER.raw_decode(text, pos)
    pos = _skip(text, _expect(text, _skip(text, pos), ":"))
    return key, pos


def decode_line(line: bytes) -> ServerMessage | PageInSlices:
    """One framed server line: a message, or a long history page to finish in slices.

    Raises:
        ProtocolError: the line is not a server message.
    """
    if len(line) <= SLICE_ABOVE:
        return decode_server_line(line)
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return decode_server_line(line)  # raises with the offending byte
    return PageInSlices.start(text) or decode_server_line(line)
