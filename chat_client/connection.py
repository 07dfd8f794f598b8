"""`ChatClient`: the contract over asyncio, for bots, scripts and the TUI.

One background task owns the socket. It reads lines, resolves the futures of
requests (matched by `id`/`re`), and puts everything else on an event queue.
When the connection drops it reconnects with exponential backoff and jitter,
registers again, rejoins every room with `since` = the last seq it delivered
there, and pages through the gap; `RoomTracker` makes sure each message is
delivered once, in order. A `say` whose ack was lost in the drop is matched
against the replayed messages and resent only if the server never stored it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from protocol import (
    Ack,
    Bye,
    ChangeNick,
    ChatMessage,
    ErrorCode,
    ErrorReply,
    GetHistory,
    HistoryPage,
    Join,
    ListRooms,
    Members,
    NickChanged,
    Part,
    Ping,
    Pong,
    ProtocolError,
    Quit,
    Register,
    RoomInfo,
    RoomList,
    RoomSummary,
    Say,
    SendDm,
    ServerHello,
    ServerMessage,
    ServerPing,
    ServerPong,
    SetTopic,
    Welcome,
    Who,
    decode_server_line,
    encode,
)

from .events import (
    ClientEvent,
    Connected,
    Connecting,
    Disconnected,
    NotConnectedError,
    RequestError,
    RoundTrip,
)
from .secure import PLAIN, Security, TlsOptions, open_connection
from .tracking import RoomTracker
from .trust import TrustError

__all__ = ["ChatClient", "ClientSettings"]

log = logging.getLogger("chat_client")

R = TypeVar("R", bound=BaseModel)

CLIENT_NAME = "chat-client/0.1"
REPLAY_PAGE = 500
READ_LIMIT = 1 << 26  # a full history page of long multi-byte texts fits
FATAL_CODES = frozenset({"auth_failed", "invalid_nick"})
FINAL_BYE_REASONS = frozenset({"quit"})


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """Timings; tests shorten them."""

    connect_timeout: float = 10.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    ping_interval: float = 15.0
    dead_after: float = 45.0  # silence before the connection is presumed dead
    reconnect: bool = True


@dataclass(slots=True)
class _PendingSay:
    room: str
    text: str
    action: bool
    done: asyncio.Future[int]
    request_id: str | None = None  # set once sent on the current connection
    sent_before_drop: bool = False


class ChatClient:
    """A chat connection that survives drops. Use `async with` or `connect()`/`close()`."""

    def __init__(
        self,
        host: str,
        port: int,
        nick: str,
        *,
        password: str | None = None,
        client_name: str = CLIENT_NAME,
        settings: ClientSettings | None = None,
        tls: TlsOptions | None = None,
        insecure: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.tls = tls  # None: plain text (refused to a host once reached over TLS)
        self.insecure = insecure  # allow that anyway
        self.security: Security = PLAIN
        self.nick = nick
        self.password = password
        self.client_name = client_name
        self.settings = settings or ClientSettings()
        self.server_name = ""
        self.tracker = RoomTracker()
        self._events: asyncio.Queue[ClientEvent | None] = asyncio.Queue()
        self._pending: dict[str, asyncio.Future[ServerMessage]] = {}
        self._says: list[_PendingSay] = []
        self._joining: dict[str, asyncio.Future[RoomInfo]] = {}
        self._join_history: dict[str, asyncio.Future[tuple[bool, list[ChatMessage]]]] = {}
        self._ids = itertools.count(1)
        self._writer: asyncio.StreamWriter | None = None
        self._ready = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = asyncio.Event()
        self._pings: dict[str, float] = {}
        self._last_heard = 0.0
        self.motd = ""

    # -- life cycle ----------------------------------------------------------

    async def connect(self) -> Welcome:
        """Connect and register; raises `RequestError`, `TrustError` or `OSError` if that fails."""
        self._emit(Connecting(self.host, self.port, 1))
        reader, writer, welcome = await self._open_and_register()
        self._runner = asyncio.create_task(self._run(reader, writer, welcome))
        return welcome

    async def close(self, reason: str | None = None) -> None:
        """Quit (politely, if connected) and stop reconnecting."""
        if self._closing:
            return
        self._closing = True
        self._closed.set()
        writer = self._writer
        if writer is not None and not writer.is_closing():
            with contextlib.suppress(OSError):
                writer.write(encode(Quit(reason=reason)))
        if self._runner is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._runner), 1.0)
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        await self._drop_writer()
        self._fail_pending(NotConnectedError("the client is closed"))
        for pending in self._says:
            if not pending.done.done():
                pending.done.set_exception(NotConnectedError("the client is closed"))
        self._events.put_nowait(None)

    async def __aenter__(self) -> ChatClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    @property
    def rooms(self) -> list[str]:
        """Rooms this client is in (and rejoins after a reconnect)."""
        return list(self.tracker.rooms)

    async def events(self) -> AsyncIterator[ClientEvent]:
        """Server events and connection changes, in order, until `close()`."""
        while True:
            event = await self._events.get()
            if event is None:
                return
            yield event

    def events_nowait(self) -> list[ClientEvent]:
        """Every event queued right now (for consumers that batch, like the TUI)."""
        found: list[ClientEvent] = []
        while not self._events.empty():
            event = self._events.get_nowait()
            if event is None:
                self._events.put_nowait(None)
                break
            found.append(event)
        return found

    # -- requests ------------------------------------------------------------

    async def join(self, room: str, since: int | None = None) -> RoomInfo:
        """Join `room`; its history arrives as `message` events, then live ones."""
        room = room.removeprefix("#")
        await self._wait_ready()
        state = self.tracker.rooms.get(room)
        if since is None and state is not None:
            since = state.last_seq
        return await self._join_once(room, since)

    async def part(self, room: str, reason: str | None = None) -> None:
        room = room.removeprefix("#")
        await self._request(lambda rid: Part(room=room, reason=reason, id=rid), Ack)
        self.tracker.parted(room)

    async def say(self, room: str, text: str, action: bool = False) -> int:
        """Say `text` in `room`; returns its seq once the server has stored it.

        If the connection drops first, the message is sent again after the
        reconnect unless the replayed history shows the server already has it.
        """
        room = room.removeprefix("#")
        _checked(lambda: Say(room=room, text=text, action=action))
        pending = _PendingSay(room, text, action, asyncio.get_running_loop().create_future())
        self._says.append(pending)
        try:
            if self.connected and not self._catching_up(room):
                self._send_say(pending)
            return await pending.done
        finally:
            self._says.remove(pending)

    async def dm(self, to: str, text: str) -> None:
        await self._request(lambda rid: SendDm(to=to, text=text, id=rid), Ack)

    async def set_nick(self, nick: str) -> None:
        await self._request(lambda rid: ChangeNick(nick=nick, id=rid), Ack)
        self.nick = nick

    async def set_topic(self, room: str, topic: str) -> None:
        room = room.removeprefix("#")
        await self._request(lambda rid: SetTopic(room=room, topic=topic, id=rid), Ack)

    async def who(self, room: str) -> list[str]:
        room = room.removeprefix("#")
        return (await self._request(lambda rid: Who(room=room, id=rid), Members)).members

    async def list_rooms(self) -> list[RoomSummary]:
        return (await self._request(lambda rid: ListRooms(id=rid), RoomList)).rooms

    async def history(
        self, room: str, *, before: int | None = None, after: int | None = None, limit: int = 50
    ) -> HistoryPage:
        room = room.removeprefix("#")
        return await self._request(
            lambda rid: GetHistory(room=room, before=before, after=after, limit=limit, id=rid),
            HistoryPage,
        )

    async def ping(self) -> float:
        """Round-trip time to the server, in seconds."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        await self._request(lambda rid: Ping(token=rid, id=rid), ServerPong)
        return loop.time() - started

    def _join_once(self, room: str, since: int | None) -> asyncio.Future[RoomInfo]:
        """Join `room` unless a join of it is already under way (then share that one)."""
        joining = self._joining.get(room)
        if joining is None:
            joining = self._joining[room] = asyncio.ensure_future(self._join(room, since))
            joining.add_done_callback(lambda _: self._joining.pop(room, None))
        return joining

    async def _join(self, room: str, since: int | None) -> RoomInfo:
        self.tracker.start_catch_up(room)
        history_done = self._join_history[room] = asyncio.get_running_loop().create_future()
        try:
            info = await self._request(lambda rid: Join(room=room, since=since, id=rid), RoomInfo)
        except BaseException:
            self._join_history.pop(room, None)
            state = self.tracker.rooms.get(room)
            if state is not None and state.last_seq is None:
                self.tracker.parted(room)
            raise
        self._emit(info)
        more, replayed = await history_done
        while more:
            page = await self.history(room, after=self.tracker.since(room) or 0, limit=REPLAY_PAGE)
            delivered = self.tracker.replayed(room, page.messages, page.more)
            self._deliver(delivered)
            replayed += delivered
            more = page.more
        self._claim_resent_says(room, replayed)
        self._resend_says(room)
        return info

    async def _request(self, build: Callable[[str], BaseModel], reply_type: type[R]) -> R:
        await self._wait_ready()
        request_id = f"c{next(self._ids)}"
        future = self._pending[request_id] = asyncio.get_running_loop().create_future()
        try:
            self._write(encode(_checked(lambda: build(request_id))))
            reply = await future
        finally:
            self._pending.pop(request_id, None)
        if isinstance(reply, ErrorReply):
            raise RequestError(reply.code, reply.message)
        if not isinstance(reply, reply_type):
            raise RequestError("internal", f"unexpected {reply.type} reply")
        return reply

    async def _wait_ready(self) -> None:
        """Wait for a registered connection; raise if the client closes first."""
        while not self._ready.is_set():
            if self._closing:
                raise NotConnectedError("the client is closed")
            ready = asyncio.ensure_future(self._ready.wait())
            closed = asyncio.ensure_future(self._closed.wait())
            await asyncio.wait([ready, closed], return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            closed.cancel()
        if self._closing:
            raise NotConnectedError("the client is closed")

    def _send_say(self, pending: _PendingSay) -> None:
        pending.request_id = f"s{next(self._ids)}"
        say = Say(
            room=pending.room, text=pending.text, action=pending.action, id=pending.request_id
        )
        self._write(encode(say))

    def _catching_up(self, room: str) -> bool:
        state = self.tracker.rooms.get(room)
        return state is not None and state.catching_up

    def _resend_says(self, room: str) -> None:
        for pending in self._says:
            if pending.room == room and pending.request_id is None and not pending.done.done():
                self._send_say(pending)

    def _write(self, data: bytes) -> None:
        writer = self._writer
        if writer is None or writer.is_closing():
            raise NotConnectedError("not connected")
        writer.write(data)

    # -- the connection task -------------------------------------------------

    async def _open_and_register(
        self,
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, Welcome]:
        reader, writer, security = await asyncio.wait_for(
            open_connection(
                self.host, self.port, self.tls, insecure=self.insecure, limit=READ_LIMIT
            ),
            self.settings.connect_timeout,
        )
        self.security = security
        try:
            hello = await self._read_until(reader, ServerHello)
            self.server_name = hello.server
            self.motd = hello.motd
            register = Register(
                nick=self.nick, password=self.password, client=self.client_name, id="register"
            )
            writer.write(encode(register))
            reply: BaseModel = await self._read_until(reader, Welcome, ErrorReply)
            if isinstance(reply, ErrorReply):
                raise RequestError(reply.code, reply.message)
            assert isinstance(reply, Welcome)
        except BaseException:
            writer.close()
            raise
        self.nick = reply.nick
        return reader, writer, reply

    async def _read_until(self, reader: asyncio.StreamReader, *types: type[R]) -> R:
        while True:
            line = await asyncio.wait_for(reader.readline(), self.settings.connect_timeout)
            if not line:
                raise NotConnectedError("the server closed the connection")
            try:
                message = decode_server_line(line.rstrip(b"\r\n"))
            except ProtocolError as exc:
                log.warning("unreadable line from the server: %s", exc)
                continue
            if isinstance(message, types):
                return message
            if isinstance(message, Bye):
                raise NotConnectedError(f"the server said bye: {message.reason}")

    async def _run(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, welcome: Welcome
    ) -> None:
        attempt = 0
        while True:
            reason = await self._serve(reader, writer, welcome)
            if self._closing or not self.settings.reconnect or reason is None:
                self._emit(Disconnected(reason or "closed", None))
                return
            while True:
                attempt += 1
                delay = self._backoff(attempt)
                self._emit(Disconnected(reason, delay))
                await asyncio.sleep(delay)
                self._emit(Connecting(self.host, self.port, attempt + 1))
                try:
                    reader, writer, welcome = await self._open_and_register()
                except RequestError as exc:
                    if exc.code in FATAL_CODES:
                        self._emit(Disconnected(str(exc), None))
                        return
                    reason = str(exc)
                except TrustError as exc:  # a changed certificate is never retried
                    self._emit(Disconnected(str(exc), None))
                    return
                except (OSError, TimeoutError, NotConnectedError) as exc:
                    reason = _plain_reason(exc)
                else:
                    attempt = 0
                    break

    def _backoff(self, attempt: int) -> float:
        base = self.settings.backoff_initial * 2.0 ** min(attempt - 1, 16)
        capped = min(self.settings.backoff_max, base)
        return capped * random.uniform(0.5, 1.0)  # jitter: clients of one server spread out

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, welcome: Welcome
    ) -> str | None:
        """Run one connection; return why it ended, or None if it must not be retried."""
        self._writer = writer
        self._emit(Connected(welcome.nick, self.server_name, self.motd, tuple(welcome.rooms)))
        rejoins = {
            room: self._join_once(room, self.tracker.since(room)) for room in self.tracker.rooms
        }
        self._ready.set()
        rejoin = asyncio.create_task(self._rejoin_all(rejoins))
        keepalive = asyncio.create_task(self._keep_alive())
        try:
            return await self._read_loop(reader)
        finally:
            self._ready.clear()
            for task in (rejoin, keepalive):
                task.cancel()
            await asyncio.gather(rejoin, keepalive, return_exceptions=True)
            await self._drop_writer()
            self._fail_pending(NotConnectedError("the connection dropped"))
            for pending in self._says:
                if pending.request_id is not None:
                    pending.request_id = None
                    pending.sent_before_drop = True

    async def _read_loop(self, reader: asyncio.StreamReader) -> str | None:
        loop = asyncio.get_running_loop()
        self._last_heard = loop.time()
        while True:
            try:
                line = await reader.readline()
            except (OSError, ValueError) as exc:  # ValueError: a line over READ_LIMIT
                return f"connection error: {exc}"
            if not line:
                return "the server closed the connection"
            self._last_heard = loop.time()
            try:
                message = decode_server_line(line.rstrip(b"\r\n"))
            except ProtocolError as exc:
                log.warning("unreadable line from the server: %s", exc)
                continue
            if isinstance(message, Bye):
                self._emit(message)
                if message.reason in FINAL_BYE_REASONS:
                    return None
                return f"the server said bye: {message.reason}"
            self._dispatch(message)

    def _dispatch(self, message: ServerMessage) -> None:
        request_id = getattr(message, "re", None)
        if request_id is not None:
            self._resolve(request_id, message)
        elif isinstance(message, ChatMessage):
            self._deliver(self.tracker.live(message))
        elif isinstance(message, HistoryPage):
            self._join_replay(message)
        elif isinstance(message, ServerPing):
            with contextlib.suppress(NotConnectedError):
                self._write(encode(Pong(token=message.token)))
        elif isinstance(message, ServerPong):
            sent = self._pings.pop(message.token or "", None)
            if sent is not None:
                self._emit(RoundTrip(asyncio.get_running_loop().time() - sent))
        else:
            if isinstance(message, NickChanged) and message.old.lower() == self.nick.lower():
                self.nick = message.new
            self._emit(message)  # type: ignore[arg-type]  # the rest are all ClientEvents

    def _resolve(self, request_id: str, message: ServerMessage) -> None:
        future = self._pending.get(request_id)
        if future is not None:
            if not future.done():
                future.set_result(message)
            return
        for pending in self._says:
            if pending.request_id == request_id and not pending.done.done():
                if isinstance(message, Ack) and message.seq is not None:
                    pending.done.set_result(message.seq)
                elif isinstance(message, ErrorReply):
                    pending.done.set_exception(RequestError(message.code, message.message))
                return
        if isinstance(message, ErrorReply):
            self._emit(message)

    def _join_replay(self, page: HistoryPage) -> None:
        """The `history` a join sends: deliver it, and tell the joiner if more remains."""
        delivered = self.tracker.replayed(page.room, page.messages, page.more)
        self._deliver(delivered)
        waiter = self._join_history.pop(page.room, None)
        if waiter is not None and not waiter.done():
            waiter.set_result((page.more, delivered))

    def _claim_resent_says(self, room: str, replayed: list[ChatMessage]) -> None:
        """Says whose ack was lost in a drop: the replay shows which the server kept."""
        mine = [m for m in replayed if m.sender.lower() == self.nick.lower()]
        for pending in self._says:
            if pending.room != room or not pending.sent_before_drop or pending.done.done():
                continue
            for message in mine:
                if message.text == pending.text and message.action == pending.action:
                    mine.remove(message)
                    pending.done.set_result(message.seq)
                    break
            pending.sent_before_drop = False

    def _deliver(self, messages: list[ChatMessage]) -> None:
        for message in messages:
            self._emit(message)

    async def _rejoin_all(self, rejoins: dict[str, asyncio.Future[RoomInfo]]) -> None:
        results = await asyncio.gather(*rejoins.values(), return_exceptions=True)
        for room, result in zip(rejoins, results, strict=True):
            if isinstance(result, RequestError):
                log.warning("could not rejoin #%s: %s", room, result)
        for pending in self._says:
            if pending.room not in self.tracker.rooms and not pending.done.done():
                pending.done.set_exception(NotConnectedError(f"not in #{pending.room}"))

    async def _keep_alive(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.settings.ping_interval
        for token in (f"k{n}" for n in itertools.count()):
            await asyncio.sleep(interval)
            if loop.time() - self._last_heard > self.settings.dead_after:
                log.warning(
                    "no word from the server in %.0f s; reconnecting", self.settings.dead_after
                )
                writer = self._writer
                if writer is not None:
                    writer.transport.abort()
                return
            self._pings = {token: loop.time()}
            with contextlib.suppress(NotConnectedError):
                self._write(encode(Ping(token=token)))

    async def _drop_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()

    def _fail_pending(self, error: Exception) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()
        for waiter in self._join_history.values():
            if not waiter.done():
                waiter.set_exception(error)
        self._join_history.clear()

    def _emit(self, event: ClientEvent) -> None:
        self._events.put_nowait(event)


M = TypeVar("M", bound=BaseModel)


def _checked(build: Callable[[], M]) -> M:
    """Build a request, turning a local validation failure into the server's error code."""
    try:
        return build()
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        code = first["type"] if first["type"] in _WIRE_CODES else ErrorCode.INVALID_MESSAGE
        field = ".".join(str(part) for part in first["loc"])
        message = first["msg"] if code != ErrorCode.INVALID_MESSAGE else f"{field}: {first['msg']}"
        raise RequestError(str(code), message) from None


_WIRE_CODES = frozenset(code.value for code in ErrorCode)


def _plain_reason(exc: BaseException) -> str:
    """Why a connection attempt failed, in words a person can act on."""
    if isinstance(exc, ConnectionRefusedError):
        return "the server is not accepting connections"
    if isinstance(exc, TimeoutError):
        return "the server did not answer"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__
