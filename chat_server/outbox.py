"""The write path: encode once, coalesce, one write per connection per loop pass.

A broadcast appends one `Outgoing` to its room's open `RoomBatch`; the first
broadcast of a pass puts a reference to that batch in every member's `Outbox`.
So a message costs O(1) however large the room, and each member costs one
`transport.write` per event-loop pass however many messages it gets. The
`Flusher` runs once at the end of the pass (`loop.call_soon`): it seals every
batch opened in the pass, then flushes each outbox that has output.

Bounding output (one `Outbox` owns everything a connection has not sent yet):
- The transport is given at most `WRITE_HIGH` bytes beyond what the kernel
  took; the rest stays here, as views of the same bytes every member shares,
  and goes out as the client reads (`resume_writing`).
- Output a client asked for (direct replies) is paced by its own reading and
  never makes it a slow consumer; while its replies are not draining the
  connection handles no more of its lines (`blocked`), so it cannot make the
  server build more of them.
- A slow consumer is one that does not drain over time: its unsent broadcast
  output stays above `limit` bytes for `slow_timeout` seconds. A burst that a
  client reads away in time is not a reason to drop it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Protocol

from pydantic import BaseModel

from protocol import encode

__all__ = ["WRITE_HIGH", "Flusher", "Outbox", "Outgoing", "Reply", "RoomBatch", "Writable"]

log = logging.getLogger(__name__)

WRITE_HIGH = 128 * 1024  # bytes handed to a transport beyond what the kernel took

Render = Callable[[BaseModel], str]


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

    def text(self, render: Render) -> bytes:
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
        # Once any member has taken the bytes, or the pass is over, nothing may be
        # added: a later broadcast (say, a `left` sent while the flusher drops a slow
        # consumer) needs a new batch, or members already written would never get it.
        self.sealed = False

    def json(self) -> bytes:
        self.sealed = True
        if self._json is None:
            items = self.items
            self._json = items[0].json if len(items) == 1 else b"".join([o.json for o in items])
        return self._json

    def text(self, render: Render) -> bytes:
        self.sealed = True
        if self._text is None:
            self._text = b"".join([o.text(render) for o in self.items])
        return self._text


class Reply:
    """Bytes a client asked for (a direct reply): paced by its reading, never 'slow'."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def json(self) -> bytes:
        return self.data

    def text(self, _render: Render) -> bytes:
        return self.data


Chunk = bytes | RoomBatch | Reply


class Writable(Protocol):
    """An outbox the flusher can write."""

    def flush(self) -> None: ...


class Outbox:
    """Everything one connection has not sent yet, and the rules for sending it."""

    __slots__ = (
        "_chunks",
        "_dirty",
        "_flusher",
        "_held",
        "_held_asked",
        "_held_broadcast",
        "_loop",
        "_on_drained",
        "_on_slow",
        "_paused",
        "_queued_replies",
        "_render",
        "_slow_timer",
        "_transport",
        "blocked",
        "limit",
        "slow_timeout",
    )

    def __init__(
        self,
        flusher: Flusher,
        loop: asyncio.AbstractEventLoop,
        limit: int,
        slow_timeout: float,
        on_slow: Callable[[], None],
        on_drained: Callable[[], None],
    ) -> None:
        self._flusher = flusher
        self._loop = loop
        self.limit = limit
        self.slow_timeout = slow_timeout
        self._on_slow = on_slow
        self._on_drained = on_drained
        self._transport: asyncio.Transport | None = None
        self._render: Render | None = None  # set for text mode
        self._chunks: list[Chunk] = []
        self._dirty = False
        self._queued_replies = 0  # reply bytes queued this pass
        # (bytes, from, asked for); made when first needed: an empty deque is 760 bytes,
        # and most connections never hold anything
        self._held: deque[tuple[bytes, int, bool]] | None = None
        self._held_broadcast = 0  # held bytes the client did not ask for
        self._held_asked = 0  # held bytes it asked for
        self._paused = False  # the transport is above its high-water mark
        self._slow_timer: asyncio.TimerHandle | None = None
        self.blocked = False  # its replies are not draining: handle no more of its lines

    def attach(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        transport.set_write_buffer_limits(high=WRITE_HIGH, low=WRITE_HIGH // 4)

    def use_text(self, render: Render) -> None:
        self._render = render

    # -- queueing -----------------------------------------------------------------

    def add(self, chunk: Chunk) -> None:
        self._chunks.append(chunk)
        if not self._dirty:
            self._dirty = True
            self._flusher.mark_dirty(self)

    def add_reply(self, data: bytes) -> None:
        self._queued_replies += len(data)
        if self._queued_replies > WRITE_HIGH:
            self.blocked = True  # checked as it is queued, not only when flushed
        self.add(Reply(data))

    def unsent(self) -> int:
        """Bytes queued, held, or in the transport's buffer."""
        queued = sum(len(c if isinstance(c, bytes) else c.json()) for c in self._chunks)
        held = sum(len(data) - offset for data, offset, _ in self._held or ())
        transport = self._transport
        return queued + held + (transport.get_write_buffer_size() if transport else 0)

    # -- writing ------------------------------------------------------------------

    def flush(self) -> None:
        """Write what this pass queued (called once per pass by the Flusher)."""
        self._dirty = False
        if not self._chunks:
            return
        if self._held or self._paused or self._queued_replies > WRITE_HIGH:
            self._hold_chunks()
            self._pump()
            return
        data = self.take()
        self._queued_replies = 0
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if len(data) <= WRITE_HIGH:
            transport.write(data)
        else:  # a burst of broadcasts: the transport gets a piece, the rest waits here
            self._hold(data, 0, asked=False)
            self._pump()
            return
        if self.blocked:
            self._unblock()

    def take(self) -> bytes:
        """Everything queued, as one block of bytes (queue emptied)."""
        chunks = self._chunks
        if not chunks:
            return b""
        render = self._render
        if len(chunks) == 1:
            only = chunks[0]
            if isinstance(only, bytes):
                data = only
            else:
                data = only.text(render) if render is not None else only.json()
        elif render is not None:
            data = b"".join([c if isinstance(c, bytes) else c.text(render) for c in chunks])
        else:
            data = b"".join([c if isinstance(c, bytes) else c.json() for c in chunks])
        chunks.clear()
        return data

    def _hold_chunks(self) -> None:
        render = self._render
        for chunk in self._chunks:
            if isinstance(chunk, bytes):
                self._hold(chunk, 0, asked=False)
            else:
                data = chunk.text(render) if render is not None else chunk.json()
                self._hold(data, 0, asked=isinstance(chunk, Reply))
        self._chunks.clear()
        self._queued_replies = 0

    def _hold(self, data: bytes, offset: int, *, asked: bool) -> None:
        if offset < len(data):
            if self._held is None:
                self._held = deque()
            self._held.append((data, offset, asked))
            if asked:
                self._held_asked += len(data) - offset
                self.blocked = True
            else:
                self._held_broadcast += len(data) - offset

    def _pump(self) -> None:
        """Give the transport held bytes until it is full or nothing is held.

        Pieces end at a line's end, so a client dropped later never gets half a line.
        """
        transport, held = self._transport, self._held
        while held and not self._paused:
            if transport is None or transport.is_closing():
                return
            data, offset, asked = held[0]
            end = _piece_end(data, offset)
            if end < len(data):
                held[0] = (data, end, asked)
            else:
                held.popleft()
            if asked:
                self._held_asked -= end - offset
            else:
                self._held_broadcast -= end - offset
            transport.write(memoryview(data)[offset:end])  # may call pause_writing at once
        if held is not None and not held and held is self._held:
            self._held = None  # drained: give the deque's memory back
        self._watch_slow()
        if not self._held_asked and self.blocked:
            self._unblock()

    def _unblock(self) -> None:
        if self.blocked:
            self.blocked = False
            self._on_drained()

    # -- flow control (from the connection's asyncio.Protocol callbacks) -----------

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        self._paused = False
        self._pump()

    def _watch_slow(self) -> None:
        over = self._held_broadcast > self.limit
        timer = self._slow_timer
        if over and timer is None:
            self._slow_timer = self._loop.call_later(self.slow_timeout, self._slow_expired)
        elif not over and timer is not None:
            timer.cancel()
            self._slow_timer = None

    def _slow_expired(self) -> None:
        self._slow_timer = None
        if self._held_broadcast > self.limit:
            self._on_slow()

    # -- closing ------------------------------------------------------------------

    def close(self, farewell: bytes, *, send_pending: bool) -> None:
        """Write what is pending (or drop it) and `farewell`, then close the transport."""
        if self._slow_timer is not None:
            self._slow_timer.cancel()
            self._slow_timer = None
        transport = self._transport
        pending = self.take() if send_pending else b""
        held, self._held = self._held or (), None
        self._held_broadcast = self._held_asked = 0
        self._chunks.clear()
        if transport is None or transport.is_closing():
            return
        if send_pending:
            for data, offset, _ in held:
                transport.write(memoryview(data)[offset:])
        transport.write(pending + farewell)
        transport.close()

    def discard(self) -> None:
        """Forget everything (the connection is gone)."""
        if self._slow_timer is not None:
            self._slow_timer.cancel()
            self._slow_timer = None
        self._chunks.clear()
        self._held = None
        self._held_broadcast = self._held_asked = 0


def _piece_end(data: bytes, offset: int) -> int:
    """Where the next piece from `offset` ends: about WRITE_HIGH bytes, at a line's end."""
    limit = offset + WRITE_HIGH
    if limit >= len(data):
        return len(data)
    cut = data.rfind(b"\n", offset, limit)
    if cut < 0:  # one line longer than a piece: all of it
        cut = data.find(b"\n", limit)
        return len(data) if cut < 0 else cut + 1
    return cut + 1


class Flusher:
    """Seals the pass's batches, then writes every outbox that has output, once per pass."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._dirty: list[Writable] = []
        self._open_batches: list[RoomBatch] = []
        self._scheduled = False

    def mark_dirty(self, outbox: Writable) -> None:
        """`outbox` has output; it must not be marked again before it is flushed."""
        self._dirty.append(outbox)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush_all)

    def batch_opened(self, batch: RoomBatch) -> None:
        """`batch` started this pass; it is sealed before anything is written."""
        self._open_batches.append(batch)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush_all)

    def flush_all(self) -> None:
        self._scheduled = False
        batches, self._open_batches = self._open_batches, []
        for batch in batches:
            batch.sealed = True
        dirty, self._dirty = self._dirty, []
        for outbox in dirty:
            try:
                outbox.flush()
            except Exception:  # one broken connection must not stall everyone after it
                log.exception("flushing a connection failed")
