"""The write path: encode once, coalesce, one write per connection per loop pass.

A broadcast appends one `Outgoing` to its room's open `RoomBatch`; the first
broadcast of a pass puts a reference to that batch in every member's outbox.
So a message costs O(1) however large the room, and each member costs one
`transport.write` per event-loop pass however many messages it gets. The
`Flusher` runs once at the end of the pass (`loop.call_soon`): it closes every
open batch, then writes each dirty connection's outbox.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel

from protocol import encode

if TYPE_CHECKING:
    from .rooms import Room

__all__ = ["Flusher", "Outgoing", "RoomBatch", "Writable"]

log = logging.getLogger(__name__)


class Outgoing:
    """One server message on its way out; its JSON and text forms are made at most once.

    Give either the model, or its encoded line plus a way to build the model (which
    only text-mode members need), so the hot path never builds a model it won't use.
    """

    __slots__ = ("_json", "_make", "_message", "_text")

    def __init__(
        self,
        message: BaseModel | None = None,
        json_line: bytes | None = None,
        make: Callable[[], BaseModel] | None = None,
    ) -> None:
        if message is None and (json_line is None or make is None):
            raise ValueError("give a message, or a json line and a way to make the message")
        self._message = message
        self._make = make
        self._json = json_line
        self._text: bytes | None = None

    @property
    def message(self) -> BaseModel:
        if self._message is None:
            assert self._make is not None
            self._message = self._make()
        return self._message

    @property
    def json(self) -> bytes:
        if self._json is None:
            self._json = encode(self.message)
        return self._json

    def text(self, render: Callable[[BaseModel], str]) -> bytes:
        if self._text is None:
            self._text = render(self.message).encode()
        return self._text


class RoomBatch:
    """The broadcasts one room makes during one loop pass, shared by all its members."""

    __slots__ = ("_json", "_text", "items", "sealed")

    def __init__(self) -> None:
        self.items: list[Outgoing] = []
        self._json: bytes | None = None
        self._text: bytes | None = None
        # Once any member has taken the bytes, nothing may be added: a later broadcast
        # (say, a `left` sent while the flusher drops a slow consumer) needs a new batch,
        # or members already written would never get it.
        self.sealed = False

    def json(self) -> bytes:
        self.sealed = True
        if self._json is None:
            items = self.items
            self._json = items[0].json if len(items) == 1 else b"".join([o.json for o in items])
        return self._json

    def text(self, render: Callable[[BaseModel], str]) -> bytes:
        self.sealed = True
        if self._text is None:
            self._text = b"".join([o.text(render) for o in self.items])
        return self._text


class Writable(Protocol):
    """A connection the flusher can write."""

    def flush(self) -> None: ...


class Flusher:
    """Writes every connection that has output, once, at the end of the loop pass."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._dirty: list[Writable] = []
        self._open_rooms: list[Room] = []
        self._scheduled = False

    def mark_dirty(self, connection: Writable) -> None:
        """`connection` has output; it must not be marked again before it is flushed."""
        self._dirty.append(connection)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush_all)

    def batch_opened(self, room: Room) -> None:
        """`room` started a batch this pass; it is closed before anything is written."""
        self._open_rooms.append(room)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush_all)

    def flush_all(self) -> None:
        self._scheduled = False
        rooms, self._open_rooms = self._open_rooms, []
        for room in rooms:
            room.batch = None
        dirty, self._dirty = self._dirty, []
        for connection in dirty:
            try:
                connection.flush()
            except Exception:  # one broken connection must not stall everyone after it
                log.exception("flushing a connection failed")
