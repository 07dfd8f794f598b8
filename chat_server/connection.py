"""One client connection: bytes in, lines to a session, bytes out through its `Outbox`.

Lines are handled strictly in order. Most are answered at once; a line that
needs the store (a join or history read) holds the lines behind it in a backlog
until it is done, and so does output that is not draining (the outbox is
`blocked`). Reading pauses while lines wait.

Flood control refuses a line before it is parsed: a line bucket, a byte bucket
per client and one per source address. Finding the refused line's `id` costs a
bounded scan, never a parse (see `peek_request_id`).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
from collections.abc import Awaitable
from typing import cast

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
from protocol.limits import LINE_CONTROL_CHARS, MAX_ID

from .context import ServerContext
from .json_session import JsonSession
from .outbox import Outbox, Outgoing, RoomBatch
from .ratelimit import TokenBucket
from .text_render import render
from .text_session import TextSession

__all__ = ["ClientConnection", "peek_request_id"]

log = logging.getLogger("chat_server.connection")

BACKLOG_PAUSE = 64  # queued lines before reading pauses
ABORT_AFTER_CLOSE = 2.0  # seconds a closing transport may take to flush
TLS_HANDSHAKE_RECORD = b"\x16"  # first byte of a TLS ClientHello (never valid in a chat line)
ID_PEEK_TRIES = 4  # `"id"` occurrences looked at in a refused line
QUOTE_CHARS = 40  # characters of a dropped line quoted back to a text-mode user


class ClientConnection(asyncio.Protocol):
    """The server side of one TCP connection."""

    __slots__ = (
        "_address_bucket",
        "_admitted",
        "_backlog",
        "_bucket",
        "_busy",
        "_byte_bucket",
        "_close_reason",
        "_context",
        "_eof",
        "_flood_control",
        "_framer",
        "_outbox",
        "_paused",
        "_session",
        "_text_mode",
        "_transport",
        "_typing_bucket",
        "_worker",
        "account",
        "away",
        "closed",
        "created_rooms",
        "features",
        "ip",
        "last_heard",
        "marks",
        "next_ping",
        "nick",
        "opened_at",
        "registered",
        "rooms",
    )

    def __init__(self, context: ServerContext) -> None:
        self._context = context
        config = context.config
        self._framer = LineFramer(config.max_line)
        self._bucket = context.new_bucket()
        self._byte_bucket = context.new_byte_bucket()
        self._address_bucket: TokenBucket | None = None
        self._typing_bucket = context.new_typing_bucket()
        self._flood_control = True
        self._transport: asyncio.Transport | None = None
        self._outbox = Outbox(
            context.flusher,
            context.loop,
            config.send_buffer,
            config.slow_timeout,
            on_slow=self._drop_slow,
            on_drained=self._continue,
        )
        self._session: JsonSession | TextSession | None = None
        self._text_mode = False
        self._backlog: collections.deque[bytes] | None = None  # made when first needed
        self._busy = False
        self._eof = False
        self._paused = False
        self._worker: asyncio.Task[None] | None = None
        self._close_reason = "disconnected"
        self.ip = ""
        self.nick = ""
        self.rooms: dict[str, None] = {}  # joined room names, in join order
        self.created_rooms = 0
        self.features: frozenset[str] = frozenset()
        self.registered = False
        self.account = False
        self.away: str | None = None
        self.marks: dict[str, int] = {}
        self.closed = False
        self._admitted = False
        self.last_heard = self.opened_at = context.loop.time()
        self.next_ping = self.last_heard + config.ping_interval

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._transport = transport
        address = transport.get_extra_info("peername")
        self.ip = str(address[0]) if address else ""
        _tune_socket(transport.get_extra_info("socket"))
        if not self._context.admit(self):
            self.closed = True
            transport.write(encode(Bye(reason="too_many_connections")))
            transport.close()
            return
        self._admitted = True
        self._address_bucket = self._context.address_bucket(self.ip)
        self._flood_control = not (
            self._bucket is self._byte_bucket is self._address_bucket is None
        )
        self._outbox.attach(transport)
        log.info("opened %s", self.peer)
        self._outbox.add(self._context.hello_line)

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
            self._internal_error()

    def _refuse_tls_hello(self) -> None:
        # A TLS ClientHello on the plain port: no line of ours can help it, so just close
        # (connection_lost logs the one line, with this reason).
        self.closed = True
        self._close_reason = "tls_client_on_plain_port"
        if self._transport is not None:
            self._transport.close()

    def eof_received(self) -> bool | None:
        """The client shut its write side: finish its lines, flush, then close.

        Scripts (`printf ... | nc -N`) send everything and half-close at once; what
        they sent still counts, so the connection stays open for the replies.
        """
        self._eof = True
        if not self._busy and not self._backlog:
            self._finish_after_eof()
        # Over TLS there is no half-close: the transport closes itself whatever this
        # returns, and asyncio warns for every client that leaves if it is True.
        tls = self._transport is not None and self._transport.get_extra_info("ssl_object")
        return None if tls else True

    def pause_writing(self) -> None:
        self._outbox.pause()

    def resume_writing(self) -> None:
        try:
            self._outbox.resume()
        except Exception:
            self._internal_error()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is None:
            return  # never made: a TLS handshake failed (tls_listener logged it)
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
        was_open = not self.closed
        self.closed = True
        self._outbox.discard()
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
            self._context.loop.time() - self.opened_at,
        )

    # -- input --------------------------------------------------------------------

    def _receive_line(self, line: bytes) -> None:
        now = self._context.loop.time()
        self.last_heard = now
        self.next_ping = now + self._context.config.ping_interval
        if self._flood_control and not self._allowed(now, len(line)):
            self._refuse_flood(line)
            return
        if self._busy or self._backlog or self._outbox.blocked:
            self._wait(line)
            return
        self._run(line)

    def _allowed(self, now: float, size: int) -> bool:
        bucket = self._bucket
        if bucket is not None and not bucket.allow(now):
            return False
        bucket = self._byte_bucket
        if bucket is not None and not bucket.allow(now, size):
            return False
        bucket = self._address_bucket
        return bucket is None or bucket.allow(now, size)

    def allow_typing(self) -> bool:
        """Move a `typing` line from the line bucket to the typing bucket.

        The line bucket took a token before the line was parsed; a `typing` line gives
        it back, so typing never uses up the lines a user chats with. Its own bucket
        bounds it instead; False means it is over that bound and is dropped.
        """
        if self._bucket is not None:
            self._bucket.refund()
        bucket = self._typing_bucket
        return bucket is None or bucket.allow(self._context.loop.time())

    def _wait(self, line: bytes) -> None:
        """Queue `line` behind a store read or output that is not draining."""
        if self._backlog is None:
            self._backlog = collections.deque()
        self._backlog.append(line)
        blocked = self._outbox.blocked or len(self._backlog) > BACKLOG_PAUSE
        if blocked and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()

    def _run(self, line: bytes) -> None:
        pending = self._dispatch(line)
        if pending is not None:
            self._busy = True
            self._worker = self._context.loop.create_task(self._await(pending))

    def _dispatch(self, line: bytes) -> Awaitable[None] | None:
        session = self._session
        if session is None:
            if line.lstrip()[:1] == b"{":
                session = self._session = JsonSession(self._context.hub, self)
            else:
                self._text_mode = True
                self._outbox.use_text(render)
                session = self._session = TextSession(self._context.hub, self)
        return session.handle_line(line)

    async def _await(self, pending: Awaitable[None]) -> None:
        try:
            await pending
        except asyncio.CancelledError:
            raise
        except Exception:
            self._internal_error()
        finally:
            self._busy = False
        self._continue()

    def _continue(self) -> None:
        """Handle waiting lines while nothing holds them up; finish a half-close."""
        if self.closed:
            return
        backlog = self._backlog
        try:
            while backlog and not (self._busy or self._outbox.blocked or self.closed):
                self._run(backlog.popleft())
        except Exception:
            self._internal_error()
            return
        if backlog or self._busy:
            return
        if self._eof:
            self._finish_after_eof()
        elif self._paused and self._transport is not None and not self.closed:
            self._paused = False
            self._transport.resume_reading()

    def _finish_after_eof(self) -> None:
        """Close once every line's writes are committed and their replies queued."""
        if not self.closed:
            self._context.hub.store.sync(lambda _error: self.close_quietly("disconnected"))

    def _refuse(self, code: ErrorCode, message: str, re: str | None = None) -> None:
        if self._text_mode:
            self.send_text(f"! {message} ({code})\n")
        else:
            self.reply(ErrorReply(code=code, message=message, re=re))

    def _refuse_flood(self, line: bytes) -> None:
        if self._text_mode:
            quoted = _quote(line)
            self.send_text(
                f"! flood control dropped your line {quoted}; slow down (rate_limited)\n"
            )
        else:
            self._refuse(ErrorCode.RATE_LIMITED, "too many lines; slow down", peek_request_id(line))

    def _internal_error(self) -> None:
        log.exception("internal error on %s (%s); closing it", self.peer, self.nick or "-")
        self.close_with_bye("internal_error", "disconnected")

    # -- output (the Member / SessionHost interface) -------------------------------

    def send(self, out: Outgoing) -> None:
        if not self.closed:
            self._outbox.add(out.text(render) if self._text_mode else out.json)

    def send_batch(self, batch: RoomBatch) -> None:
        if not self.closed:
            self._outbox.add(batch)

    def send_message(self, message: BaseModel) -> None:
        self.send(Outgoing(message))

    def reply(self, message: BaseModel) -> None:
        """Queue a direct reply: output the client asked for, paced by its reading."""
        if not self.closed:
            self._outbox.add_reply(render(message).encode() if self._text_mode else encode(message))

    def send_text(self, text: str) -> None:
        if not self.closed:
            self._outbox.add_reply(text.encode())

    def send_ack(self, request_id: str, seq: int | None = None) -> None:
        if not self.closed:
            self._outbox.add(encode_ack(request_id, seq))

    def unsent(self) -> int:
        """Bytes not yet taken by the kernel (for tests and logs)."""
        return self._outbox.unsent()

    # -- closing ------------------------------------------------------------------

    def _drop_slow(self) -> None:
        log.warning("dropping slow consumer %s (%s)", self.peer, self.nick or "-")
        self.close_with_bye("slow_consumer", "disconnected")

    def close_quietly(self, reason: str) -> None:
        """Send what is queued, leave every room, and close (no `bye`: the client left)."""
        self.close_with_bye(reason, bye=False)

    def close_with_bye(
        self, reason: str, left_reason: str | None = None, *, bye: bool = True
    ) -> None:
        """Send what is queued and `bye` (best effort), leave every room, and close.

        A slow consumer's pending output is dropped: only the `bye` is tried.
        """
        if self.closed:
            return
        self.closed = True
        self._close_reason = reason
        self._leave(left_reason or reason)
        farewell = b""
        if bye:
            message = Bye(reason=reason)
            farewell = render(message).encode() if self._text_mode else encode(message)
        self._outbox.close(farewell, send_pending=reason != "slow_consumer")
        if self._transport is not None:
            self._context.loop.call_later(ABORT_AFTER_CLOSE, self._transport.abort)

    def _leave(self, reason: str) -> None:
        if self.registered:
            self.registered = False
            dropped = self._close_reason not in ("quit", "shutdown")
            self._context.hub.unregister(self, reason, hold_nick=dropped)

    @property
    def local_host(self) -> str | None:
        """The address the client reached this server at (file URLs use it)."""
        address = self._transport.get_extra_info("sockname") if self._transport else None
        return str(address[0]) if address else None

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
        self._outbox.discard()
        if self._transport is not None:
            self._transport.abort()

    def is_json(self) -> bool:
        """Pinged and timed out: JSON clients, and those that have not spoken yet."""
        return not self._text_mode


def peek_request_id(line: bytes) -> str | None:
    """The `id` of a line refused unread (rate limit), found without parsing the line.

    Looks at the first few `"id"` keys followed by a colon and takes a plain string
    value (no escapes, at most 64 characters); anything else gets no `re`. The cost
    is a few C-level `find`s whatever the line holds: refusing stays cheaper than
    accepting. Inside a JSON string the quotes of `"id"` would be escaped, so a
    match is a key (of the top-level object, or of a nested one in a bad line).
    """
    start = 0
    for _ in range(ID_PEEK_TRIES):
        found = line.find(b'"id"', start)
        if found < 0:
            return None
        start = found + 4
        rest = line[start : start + MAX_ID * 4 + 16].lstrip()
        if rest[:1] != b":":
            continue
        value = rest[1:].lstrip()
        if value[:1] != b'"':
            return None
        end = value.find(b'"', 1)
        text = value[1:end] if end > 0 else b""
        if end < 0 or b"\\" in text:
            return None
        try:
            decoded = text.decode("utf-8")
        except UnicodeDecodeError:
            return None
        return decoded if len(decoded) <= MAX_ID else None
    return None


def _quote(line: bytes) -> str:
    """The start of a dropped line, safe to print on the user's terminal."""
    text = LINE_CONTROL_CHARS.sub("?", line.decode("utf-8", "replace").strip())
    return f'"{text[:QUOTE_CHARS]}…"' if len(text) > QUOTE_CHARS else f'"{text}"'


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
