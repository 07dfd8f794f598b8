"""One client connection: bytes in, lines to a session, coalesced bytes out.

Lines are handled strictly in order. Most are answered at once; one that needs
the store (a join or history read) holds the lines behind it in a backlog
until it is done, and reading pauses while that backlog is long.

Output goes to an outbox of chunks (bytes, or a room's shared batch) written
once per loop pass by the `Flusher`. After each write the transport's unsent
bytes are checked: past the limit the client is a slow consumer and is dropped.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import socket
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, cast

from pydantic import BaseModel

from protocol import (
    Bye,
    ErrorCode,
    ErrorReply,
    LineFramer,
    LineTooLong,
    ServerPing,
    encode,
    encode_ack,
)
from protocol.limits import MAX_ID

from .json_session import JsonSession
from .outbox import Outgoing, RoomBatch
from .text_render import render
from .text_session import TextSession

if TYPE_CHECKING:
    from .server import ServerContext

__all__ = ["ClientConnection"]

log = logging.getLogger("chat_server.connection")

BACKLOG_PAUSE = 64  # queued lines behind a store read before reading pauses
ABORT_AFTER_CLOSE = 2.0  # seconds a closing transport may take to flush
TLS_HANDSHAKE_RECORD = b"\x16"  # first byte of a TLS ClientHello (never valid in a chat line)


class ClientConnection(asyncio.Protocol):
    """The server side of one TCP connection."""

    __slots__ = (
        "_admitted",
        "_backlog",
        "_bucket",
        "_busy",
        "_chunks",
        "_close_reason",
        "_context",
        "_dirty",
        "_framer",
        "_opened",
        "_paused",
        "_send_limit",
        "_session",
        "_text_mode",
        "_transport",
        "_worker",
        "closed",
        "ip",
        "last_heard",
        "next_ping",
        "nick",
        "registered",
        "rooms",
    )

    def __init__(self, context: ServerContext) -> None:
        self._context = context
        config = context.config
        self._framer = LineFramer(config.max_line)
        self._bucket = context.new_bucket()
        self._send_limit = config.send_buffer
        self._transport: asyncio.Transport | None = None
        self._chunks: list[bytes | RoomBatch] = []
        self._dirty = False
        self._session: JsonSession | TextSession | None = None
        self._text_mode = False
        self._backlog: collections.deque[bytes] | None = None  # made when first needed
        self._busy = False
        self._paused = False
        self._worker: asyncio.Task[None] | None = None
        self._opened = time.monotonic()
        self._close_reason = "disconnected"
        self.ip = ""
        self.nick = ""
        self.rooms: dict[str, None] = {}  # joined room names, in join order
        self.registered = False
        self.closed = False
        self._admitted = False
        self.last_heard = context.loop.time()
        self.next_ping = self.last_heard + config.ping_interval

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._transport = transport
        address = transport.get_extra_info("peername")
        self.ip = str(address[0]) if address else ""
        _tune_socket(transport.get_extra_info("socket"))
        if not self._context.admit(self):
            log.info("refused %s: too many connections from %s", self.peer, self.ip)
            self.closed = True
            transport.write(encode(Bye(reason="too_many_connections")))
            transport.close()
            return
        self._admitted = True
        log.info("opened %s", self.peer)
        self._write_now(self._context.hello_line)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        if self._session is None and data[:1] == TLS_HANDSHAKE_RECORD:
            self._refuse_tls_hello()
            return
        try:
            for item in self._framer.feed(data):
                if self.closed:
                    return
                if isinstance(item, LineTooLong):
                    self._refuse(item.code, item.message)
                else:
                    self._receive_line(item)
        except Exception:
            log.exception("internal error on %s (%s); closing it", self.peer, self.nick or "-")
            self.close_with_bye("internal_error", "disconnected")

    def _refuse_tls_hello(self) -> None:
        # A TLS ClientHello on the plain port: no line of ours can help it, so just close
        # (connection_lost logs the one line, with this reason).
        self.closed = True
        self._close_reason = "tls_client_on_plain_port"
        if self._transport is not None:
            self._transport.close()

    def eof_received(self) -> bool | None:
        return None  # let the transport close; connection_lost cleans up

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is None:
            return  # never made: a TLS handshake failed (tls_listener logged it)
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
        was_open = not self.closed
        self.closed = True
        self._chunks.clear()
        if was_open or self.registered:
            self._leave(self._close_reason)
        if self._admitted:
            self._admitted = False
            self._context.forget(self)
        log.info(
            "closed %s nick=%s reason=%s after %.1fs",
            self.peer,
            self.nick or "-",
            self._close_reason,
            time.monotonic() - self._opened,
        )

    # -- input --------------------------------------------------------------------

    def _receive_line(self, line: bytes) -> None:
        now = self._context.loop.time()
        self.last_heard = now
        self.next_ping = now + self._context.config.ping_interval
        bucket = self._bucket
        if bucket is not None and not bucket.allow(now):
            request_id = None if self._text_mode else _request_id(line)
            self._refuse(ErrorCode.RATE_LIMITED, "too many lines; slow down", request_id)
            return
        if self._busy:
            if self._backlog is None:
                self._backlog = collections.deque()
            self._backlog.append(line)
            if len(self._backlog) > BACKLOG_PAUSE and not self._paused and self._transport:
                self._paused = True
                self._transport.pause_reading()
            return
        pending = self._dispatch(line)
        if pending is not None:
            self._busy = True
            self._worker = self._context.loop.create_task(self._work_through(pending))

    def _dispatch(self, line: bytes) -> Awaitable[None] | None:
        session = self._session
        if session is None:
            if line.lstrip()[:1] == b"{":
                session = self._session = JsonSession(self._context.hub, self)
            else:
                self._text_mode = True
                session = self._session = TextSession(self._context.hub, self)
        return session.handle_line(line)

    async def _work_through(self, pending: Awaitable[None]) -> None:
        try:
            await pending
            while self._backlog and not self.closed:
                next_pending = self._dispatch(self._backlog.popleft())
                if next_pending is not None:
                    await next_pending
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("internal error on %s (%s); closing it", self.peer, self.nick or "-")
            self.close_with_bye("internal_error", "disconnected")
        finally:
            self._busy = False
            if self._paused and not self.closed and self._transport is not None:
                self._paused = False
                self._transport.resume_reading()

    def _refuse(self, code: ErrorCode, message: str, re: str | None = None) -> None:
        if self._text_mode:
            self.send_text(f"! {message} ({code})\n")
        else:
            self.send_message(ErrorReply(code=code, message=message, re=re))

    # -- output (the Member / SessionHost interface) -------------------------------

    def send(self, out: Outgoing) -> None:
        self._queue(out.text(render) if self._text_mode else out.json)

    def send_batch(self, batch: RoomBatch) -> None:
        if self.closed:
            return
        self._chunks.append(batch)
        if not self._dirty:
            self._dirty = True
            self._context.flusher.mark_dirty(self)

    def send_message(self, message: BaseModel) -> None:
        self.send(Outgoing(message))

    def send_text(self, text: str) -> None:
        self._queue(text.encode())

    def send_ack(self, request_id: str, seq: int | None = None) -> None:
        self._queue(encode_ack(request_id, seq))

    def _queue(self, data: bytes) -> None:
        if self.closed:
            return
        self._chunks.append(data)
        if not self._dirty:
            self._dirty = True
            self._context.flusher.mark_dirty(self)

    def flush(self) -> None:
        """Write everything queued this pass in one write (called by the Flusher)."""
        self._dirty = False
        if self.closed:
            self._chunks.clear()
            return
        data = self._take_output()
        if data:
            self._write_now(data)

    def _take_output(self) -> bytes:
        chunks = self._chunks
        if not chunks:
            return b""
        text = self._text_mode
        if len(chunks) == 1:
            only = chunks[0]
            data = only if isinstance(only, bytes) else (only.text(render) if text else only.json())
        elif text:
            data = b"".join([c if isinstance(c, bytes) else c.text(render) for c in chunks])
        else:
            data = b"".join([c if isinstance(c, bytes) else c.json() for c in chunks])
        chunks.clear()
        return data

    def _write_now(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(data)
        if transport.get_write_buffer_size() > self._send_limit:
            log.warning("dropping slow consumer %s (%s)", self.peer, self.nick or "-")
            self.close_with_bye("slow_consumer", "disconnected")

    # -- closing ------------------------------------------------------------------

    def close_with_bye(self, reason: str, left_reason: str | None = None) -> None:
        """Send what is queued and `bye` (best effort), leave every room, and close."""
        if self.closed:
            return
        self.closed = True
        self._close_reason = reason
        pending = self._take_output()
        self._leave(left_reason or reason)
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        bye = Bye(reason=reason)
        transport.write(pending + (render(bye).encode() if self._text_mode else encode(bye)))
        transport.close()
        self._context.loop.call_later(ABORT_AFTER_CLOSE, transport.abort)

    def _leave(self, reason: str) -> None:
        if self.registered:
            self.registered = False
            self._context.hub.unregister(self, reason)

    @property
    def peer(self) -> str:
        """`host:port` of the client, for logs."""
        address = self._transport.get_extra_info("peername") if self._transport else None
        return f"{address[0]}:{address[1]}" if address else "?"

    def ping(self) -> None:
        self.send_message(ServerPing())

    def abort(self) -> None:
        """Drop the connection now, unsent output and all (end of a shutdown's grace)."""
        self.closed = True
        if self._transport is not None:
            self._transport.abort()

    def is_json(self) -> bool:
        """Pinged and timed out: JSON clients, and those that have not spoken yet."""
        return not self._text_mode


def _request_id(line: bytes) -> str | None:
    """The `id` of a line refused unread (rate limit), so its error can carry it as `re`."""
    try:
        found = json.loads(line.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    request_id = found.get("id") if isinstance(found, dict) else None
    return request_id if isinstance(request_id, str) and len(request_id) <= MAX_ID else None


def _tune_socket(sock: socket.socket | None) -> None:
    if sock is None:
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_KEEPIDLE"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 60)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 15)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 4)
    except OSError:
        pass  # not a TCP socket (tests may use a socketpair)
