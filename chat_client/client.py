"""`ChatClient`: the contract over asyncio, for bots, scripts and the TUI.

Every protocol rule lives in `ClientSession` (`session.py`). This shell owns
only what needs a loop: the socket, the keep-alive timer, reconnecting with
backoff and jitter, the futures callers await, and the bounded event queue.
One task reads the socket, feeds the session, writes what it queues and routes
what it reports: request outcomes to their futures, everything else to the
queue. Any read failure (a reset, EOF, a line over the limit, garbage before
`welcome`, a silent server) ends the connection with a reason shown in
`Disconnected`, and the same task tries again; it never dies quietly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from pydantic import BaseModel

from protocol import (
    Ack,
    BanEntry,
    BanList,
    DmHistoryPage,
    ErrorCode,
    FileInfo,
    HistoryPage,
    Members,
    RoomInfo,
    RoomList,
    RoomSummary,
    SearchResults,
    ServerPong,
    Upload,
    UploadReady,
    Welcome,
)

from .event_queue import EventQueue
from .events import (
    ChatClientError,
    ClientEvent,
    Connecting,
    Disconnected,
    NotConnectedError,
    RequestError,
    RoundTrip,
)
from .secure import PLAIN, Security, TlsOptions, open_connection
from .session import CLIENT_NAME, ClientSession, Completed, Ending, Failed, SessionEvent, State
from .tracking import RoomTracker
from .trust import TrustError
from .typing_notices import PAUSE_AFTER, Notice, Target, TypingNotifier

if TYPE_CHECKING:
    import aiohttp

    from .files import Progress

__all__ = ["ChatClient", "ClientSettings"]

log = logging.getLogger("chat_client")

R = TypeVar("R", bound=BaseModel)

READ_CHUNK = 256 * 1024
# Events routed per loop pass while a long page is delivered: the program gets to read
# between slices, so a reader that keeps up never sees `Lagged`.
DELIVERY_SLICE = 1_000


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """Timings and bounds; tests shorten them.

    `event_queue_size` bounds the events waiting for the program: past it the
    oldest are dropped and the program gets `Lagged` (see `ChatClient.events`).
    """

    connect_timeout: float = 10.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    ping_interval: float = 15.0
    dead_after: float = 45.0  # silence before the connection is presumed dead
    reconnect: bool = True
    event_queue_size: int = 10_000
    typing_pause: float = PAUSE_AFTER  # no key this long, text left: `paused` (`composing`)


class ChatClient:
    """A chat connection that survives drops. Use `async with` or `connect()`/`close()`.

    Args:
        host, port: the server.
        nick: the nick to register.
        password: the server password, if it asks for one (never logged).
        account_password: the password of the account `nick` (version 2): kept in
            memory only, for the login after a reconnect; never logged, never written.
        client_name: sent to the server as `client`.
        settings: timings and bounds.
        features: version-2 features to ask for; `features` says which were granted.
        tls: connect over TLS, checking the certificate (`secure.TlsOptions`); None: plain
            text, which is refused to a host once reached over TLS unless `insecure`.
        insecure: allow that plain-text connection anyway.
        alternates: other nodes of the same chat (`chat-server --redis`), tried in turn
            after `host`:`port` when a connection cannot be made or is lost; the session
            resumes there (rooms rejoined with `since`), so nothing is missed.
    """

    def __init__(
        self,
        host: str,
        port: int,
        nick: str,
        *,
        password: str | None = None,
        client_name: str = CLIENT_NAME,
        settings: ClientSettings | None = None,
        features: Iterable[str] = (),
        account_password: str | None = None,
        tls: TlsOptions | None = None,
        insecure: bool = False,
        alternates: Sequence[tuple[str, int]] = (),
    ) -> None:
        self.host = host
        self.port = port
        # Every address of the chat, the current one first; a failed or lost connection
        # moves on to the next.
        self.addresses: list[tuple[str, int]] = list(dict.fromkeys([(host, port), *alternates]))
        self.tls = tls
        self.insecure = insecure
        self.security: Security = PLAIN  # what protects the current connection
        self.settings = settings or ClientSettings()
        self.session = ClientSession(
            nick,
            password=password,
            client_name=client_name,
            features=frozenset(features),
            account_password=account_password,
        )
        self._password = password
        self._queue = EventQueue(self.settings.event_queue_size)
        self._futures: dict[str, asyncio.Future[BaseModel]] = {}
        self._pings: dict[str, float] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._ready = asyncio.Event()
        self._closed = asyncio.Event()
        self._closing = False
        self._runner: asyncio.Task[None] | None = None
        self._last_heard = 0.0
        self._dead_reason: str | None = None
        self._typist = TypingNotifier(pause_after=self.settings.typing_pause)
        self._typing_timer: asyncio.TimerHandle | None = None
        self._typing_sends: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:  # never shows the password
        return f"ChatClient({self.host!r}, {self.port}, {self.nick!r})"

    # -- state ---------------------------------------------------------------

    @property
    def nick(self) -> str:
        """The nick registered (it follows `set_nick` and the server's `nick` events)."""
        return self.session.nick

    @nick.setter
    def nick(self, nick: str) -> None:
        self.session.nick = nick

    @property
    def password(self) -> str | None:
        return self._password

    @property
    def client_name(self) -> str:
        return self.session.client_name

    @property
    def server_name(self) -> str:
        return self.session.server_name

    @property
    def motd(self) -> str:
        return self.session.motd

    @property
    def features(self) -> frozenset[str]:
        """Version-2 features the server granted (empty from a version-1 server)."""
        return self.session.features

    @property
    def tracker(self) -> RoomTracker:
        """The seq bookkeeping of every joined room."""
        return self.session.tracker

    @property
    def connected(self) -> bool:
        return self._ready.is_set() and self.session.state is State.READY

    @property
    def rooms(self) -> list[str]:
        """Rooms this client is in (and rejoins after a reconnect)."""
        return list(self.session.tracker.rooms)

    # -- life cycle ----------------------------------------------------------

    async def connect(self) -> Welcome:
        """Connect and register.

        Raises:
            RequestError: registration refused (`auth_failed`, `nick_taken`, ...).
            OSError, TimeoutError: the server cannot be reached or does not answer.
            NotConnectedError: the server ended the handshake or does not speak the protocol.
            TrustError: the certificate is not the one pinned or given (nothing was sent).
        """
        self._queue.put(Connecting(self.host, self.port, 1))
        for _ in range(len(self.addresses) - 1):
            try:
                reader, writer = await self._open()
                break
            except (OSError, TimeoutError) as exc:
                log.info("cannot reach %s:%d (%s); trying the next node", self.host, self.port, exc)
                self._next_address()
                self._queue.put(Connecting(self.host, self.port, 1))
        else:
            reader, writer = await self._open()
        self._runner = asyncio.create_task(self._run(reader, writer))
        assert self.session.welcome is not None
        return self.session.welcome

    async def close(self, reason: str | None = None) -> None:
        """Quit (politely, if connected) and stop reconnecting."""
        if self._closing:
            return
        self._closing = True
        self._closed.set()
        if self._typing_timer is not None:
            self._typing_timer.cancel()
            self._typing_timer = None
        with contextlib.suppress(ChatClientError):
            self.session.send_quit(reason)
        self._flush()
        if self._runner is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._runner), 1.0)
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        await self._drop_writer()
        self.session.close()
        for event in self.session.events_received():
            self._route(event)
        self._queue.close()

    async def __aenter__(self) -> ChatClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def events(self) -> AsyncIterator[ClientEvent]:
        """Server events and connection changes, in order, until `close()`.

        The queue holds at most `settings.event_queue_size` events. A program
        that does not read (or reads too slowly) loses the oldest ones and
        gets `Lagged(dropped=N)` where they were: it must then resync what it
        shows (e.g. `history(room, after=last_seq)`, `who(room)`).
        """
        while True:
            event = await self._queue.get()
            if event is None:
                return
            yield event

    def events_nowait(self) -> list[ClientEvent]:
        """Every event queued right now (for consumers that batch, like the TUI)."""
        found: list[ClientEvent] = []
        while (event := self._queue.get_nowait()) is not None:
            found.append(event)
        return found

    # -- requests ------------------------------------------------------------

    async def join(self, room: str, since: int | None = None) -> RoomInfo:
        """Join `room`; its history arrives as `message` events, then live ones."""
        return await self._call(lambda: self.session.send_join(room, since), RoomInfo)

    async def part(self, room: str, reason: str | None = None) -> None:
        await self._call(lambda: self.session.send_part(room, reason), Ack)

    async def say(self, room: str, text: str, action: bool = False) -> int:
        """Say `text` in `room`; returns its seq once the server has stored it.

        If the connection drops first, the message is sent again after the
        reconnect unless the replayed history shows the server already has it.
        """
        request_id = self.session.send_say(room, text, action)
        ack = await self._outcome(request_id, Ack)
        if ack.seq is None:
            raise RequestError(ErrorCode.INTERNAL, "the server acknowledged a say without a seq")
        return ack.seq

    async def reply(self, room: str, reply_to: int, text: str, action: bool = False) -> int:
        """Say `text` in `room` as an answer to message `reply_to`; returns its seq."""
        request_id = self.session.send_say(room, text, action, reply_to=reply_to)
        ack = await self._outcome(request_id, Ack)
        if ack.seq is None:
            raise RequestError(ErrorCode.INTERNAL, "the server acknowledged a say without a seq")
        return ack.seq

    async def edit(self, room: str, seq: int, text: str) -> None:
        """Replace the text of one's own message `seq` (members get `edited`)."""
        await self._call(lambda: self.session.send_edit(room, seq, text), Ack)

    async def delete(self, room: str, seq: int) -> None:
        """Delete message `seq` (members get `deleted`)."""
        await self._call(lambda: self.session.send_delete(room, seq), Ack)

    async def react(self, room: str, seq: int, emoji: str, *, remove: bool = False) -> None:
        """Add (or with `remove`, take back) one's reaction `emoji` to message `seq`."""
        await self._call(lambda: self.session.send_react(room, seq, emoji, remove=remove), Ack)

    async def typing(self, state: str, *, room: str | None = None, to: str | None = None) -> None:
        """Say that one is typing (`active`, `paused`, `done`) in `room` or to the user `to`."""
        await self._call(lambda: self.session.send_typing(state, room=room, to=to), Ack)

    def composing(self, text: str, *, room: str | None = None, to: str | None = None) -> None:
        """The user's unsent input for `room` (or the user `to`) is now `text`.

        Sends `typing` as the contract wants, without waiting for acks: `active` at
        most every 3 s while the text changes, `paused` once it has not changed for
        `settings.typing_pause` seconds (a timer), `done` when `text` is blank. Moving
        to another conversation ends the one before with `done`. Call it on every
        change of the input; call `stopped_composing` when the input is sent or is a
        command. Nothing is sent while disconnected. Call from the event loop.
        """
        if not text.strip():
            self.stopped_composing()
            return
        target = Target(to, dm=True) if to is not None else Target(room or "")
        loop = asyncio.get_running_loop()
        self._send_notices(self._typist.typed(target, loop.time()))
        self._arm_typing_timer()

    def stopped_composing(self) -> None:
        """The input was cleared, sent or turned into a command: `done`, if typing was told."""
        self._send_notices(self._typist.cleared())
        self._arm_typing_timer()

    def _arm_typing_timer(self) -> None:
        if self._typing_timer is not None:
            self._typing_timer.cancel()
            self._typing_timer = None
        deadline = self._typist.deadline()
        if deadline is not None:
            loop = asyncio.get_running_loop()
            self._typing_timer = loop.call_at(deadline, self._typing_due)

    def _typing_due(self) -> None:
        self._typing_timer = None
        self._send_notices(self._typist.due(asyncio.get_running_loop().time()))
        self._arm_typing_timer()

    def _send_notices(self, notices: list[Notice]) -> None:
        if not notices:
            return
        if not self.connected or self._closing:
            self._typist.forget()  # the receivers let it expire; start afresh
            return
        for notice in notices:
            target = notice.target
            if not target.dm:
                # Only where we are in: a notice has no id, so a refusal would be
                # a stray error for the user to read.
                if target.name in self.rooms:
                    with contextlib.suppress(NotConnectedError):
                        self.session.send_typing_notice(notice.state, target.name)
                        self._flush()
                continue
            # To a user, with an id: `no_such_user` when they are offline is expected,
            # and answered to this request rather than shown as a stray error.
            request = self.typing(notice.state, to=target.name)
            task = asyncio.get_running_loop().create_task(_quiet_typing(request))
            self._typing_sends.add(task)
            task.add_done_callback(self._typing_sends.discard)

    async def dm(self, to: str, text: str) -> None:
        await self._call(lambda: self.session.send_dm(to, text), Ack)

    async def set_nick(self, nick: str) -> None:
        await self._call(lambda: self.session.send_nick(nick), Ack)

    async def set_topic(self, room: str, topic: str) -> None:
        await self._call(lambda: self.session.send_topic(room, topic), Ack)

    async def who(self, room: str) -> list[str]:
        return (await self._call(lambda: self.session.send_who(room), Members)).members

    async def list_rooms(self) -> list[RoomSummary]:
        return (await self._call(self.session.send_rooms, RoomList)).rooms

    async def history(
        self, room: str, *, before: int | None = None, after: int | None = None, limit: int = 50
    ) -> HistoryPage:
        """Up to `limit` stored messages, oldest first, fetched in pages that fit."""
        return await self._call(
            lambda: self.session.send_history(room, before=before, after=after, limit=limit),
            HistoryPage,
        )

    async def history_around(self, room: str, seq: int, *, limit: int = 21) -> HistoryPage:
        """The messages centred on `seq` (at most 50), oldest first: how a client opens
        the original of a reply or a search hit that is not in memory."""
        return await self._call(
            lambda: self.session.send_history_around(room, seq, limit), HistoryPage
        )

    async def register(self, password: str) -> None:
        """Make the nick an account (version 2); later logins (reconnects too) use `password`."""
        await self._call(lambda: self.session.send_register(password), Ack)

    async def mark_read(
        self, seq: int, *, room: str | None = None, with_: str | None = None
    ) -> None:
        """Read up to `seq` in `room` (or the DM conversation `with_`); only moves forward."""
        await self._call(lambda: self.session.send_mark_read(seq, room=room, with_=with_), Ack)

    async def away(self, text: str | None = None) -> None:
        """Be away with `text`; None or "" means back."""
        await self._call(lambda: self.session.send_away(text), Ack)

    async def dm_history(
        self, with_: str, *, before: int | None = None, after: int | None = None, limit: int = 50
    ) -> DmHistoryPage:
        """A page (oldest first) of the stored DM conversation with the account `with_`."""
        return await self._call(
            lambda: self.session.send_dm_history(with_, before=before, after=after, limit=limit),
            DmHistoryPage,
        )

    async def search(
        self,
        query: str,
        *,
        room: str | None = None,
        with_: str | None = None,
        sender: str | None = None,
        limit: int = 20,
        before: str | None = None,
    ) -> SearchResults:
        """Messages matching `query`, newest first; `before` is a previous reply's `cursor`."""
        return await self._call(
            lambda: self.session.send_search(
                query, room=room, with_=with_, sender=sender, limit=limit, before=before
            ),
            SearchResults,
        )

    async def op(self, room: str, nick: str) -> None:
        """Make `nick` (an account) an op of `room` (ops only)."""
        await self._call(lambda: self.session.send_op(room, nick), Ack)

    async def deop(self, room: str, nick: str) -> None:
        """`nick` is no longer an op of `room` (ops only)."""
        await self._call(lambda: self.session.send_op(room, nick, remove=True), Ack)

    async def kick(self, room: str, nick: str, reason: str | None = None) -> None:
        """Put `nick` out of `room` (ops only; it may join again)."""
        await self._call(lambda: self.session.send_kick(room, nick, reason), Ack)

    async def ban(self, room: str, nick: str, reason: str | None = None) -> None:
        """Put `nick` out of `room` and refuse its joins (ops only)."""
        await self._call(lambda: self.session.send_ban(room, nick, reason), Ack)

    async def unban(self, room: str, nick: str, reason: str | None = None) -> None:
        """Lift the ban of `nick` (ops only)."""
        await self._call(lambda: self.session.send_unban(room, nick, reason), Ack)

    async def bans(self, room: str) -> list[BanEntry]:
        """The bans of `room`, oldest first (ops only)."""
        reply = await self._call(lambda: self.session.send_bans(room), BanList)
        return list(reply.bans)

    async def request_upload(self, upload: Upload) -> UploadReady:
        """Send an `upload` line; returns `upload_ready` (raises `UploadRefused`)."""
        from .files import UploadRefused  # aiohttp: loaded only by programs that share files

        try:
            return await self._call(lambda: self.session.send_upload(upload), UploadReady)
        except RequestError as error:
            raise UploadRefused(error.code, error.message) from None

    async def upload(
        self,
        path: Path,
        *,
        room: str | None = None,
        to: str | None = None,
        progress: Progress | None = None,
    ) -> FileInfo:
        """Share a file in `room` or with `to` (see `chat_client.files.upload`)."""
        from . import files

        return await files.upload(
            path,
            request=self.request_upload,
            room=room,
            to=to,
            progress=progress,
            ssl=self.files_ssl(),
        )

    async def download(
        self, file: FileInfo, dest: Path, *, progress: Progress | None = None
    ) -> Path:
        """Save a shared file (see `chat_client.files.download`), checked like `upload`."""
        from . import files

        return await files.download(file, dest, progress=progress, ssl=self.files_ssl())

    def files_ssl(self) -> aiohttp.Fingerprint | None:
        """How to check the files port: a TLS server's is HTTPS with the chat certificate,
        so it is pinned to the fingerprint this connection was checked against."""
        fingerprint = self.security.fingerprint if self.security.encrypted else None
        if fingerprint is None:
            return None
        import aiohttp

        return aiohttp.Fingerprint(bytes.fromhex(fingerprint.replace(":", "")))

    async def ping(self) -> float:
        """Round-trip time to the server, in seconds."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        await self._call(self.session.send_ping, ServerPong)
        return loop.time() - started

    async def _call(self, send: Callable[[], str], reply_type: type[R]) -> R:
        await self._wait_ready()
        return await self._outcome(send(), reply_type)

    async def _outcome(self, request_id: str, reply_type: type[R]) -> R:
        self._flush()
        future = self._futures.get(request_id)
        if future is None:
            future = self._futures[request_id] = asyncio.get_running_loop().create_future()
        reply = await asyncio.shield(future)  # a join may be shared by several callers
        assert isinstance(reply, reply_type), reply  # the session checked the reply type
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

    # -- the connection task -------------------------------------------------

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect and register; raise why not (the session's `ending.error` if it ended it)."""
        reader, writer, self.security = await asyncio.wait_for(
            open_connection(self.host, self.port, self.tls, insecure=self.insecure),
            self.settings.connect_timeout,
        )
        self._writer = writer
        self._dead_reason = None
        self.session.connection_opened()
        try:
            async with asyncio.timeout(self.settings.connect_timeout):
                while self.session.state is not State.READY:
                    await self._receive(reader)
                    if self.session.ending is not None:
                        raise self.session.ending.error
                    if self.session.state is State.CLOSED:
                        raise NotConnectedError("the client is closed")
        except TimeoutError:
            self.session.abort("the server did not answer")
            await self._deliver()
            await self._drop_writer()
            raise
        except BaseException:
            await self._drop_writer()
            raise
        self._ready.set()
        return reader, writer

    async def _run(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        attempt = 0
        while True:
            ending = await self._serve(reader, writer)
            if self._closing or not ending.retry or not self.settings.reconnect:
                self._queue.put(Disconnected(ending.reason, None))
                return
            while True:
                attempt += 1
                delay = self._backoff(attempt)
                self._queue.put(Disconnected(ending.reason, delay))
                await asyncio.sleep(delay)
                if len(self.addresses) > 1:
                    self._next_address()
                self._queue.put(Connecting(self.host, self.port, attempt + 1))
                try:
                    reader, writer = await self._open()
                except Exception as exc:  # any failure is a reason shown and another try
                    ending = self._failed_attempt(exc)
                    if not ending.retry:
                        self._queue.put(Disconnected(ending.reason, None))
                        return
                else:
                    attempt = 0
                    break

    def _next_address(self) -> None:
        """Move on to the chat's next address (the nodes are tried in turn)."""
        here = (self.host, self.port)
        index = self.addresses.index(here) if here in self.addresses else -1
        self.host, self.port = self.addresses[(index + 1) % len(self.addresses)]

    def _failed_attempt(self, exc: Exception) -> Ending:
        ending = self.session.ending
        if ending is not None and ending.error is exc:
            return ending
        if isinstance(exc, TrustError):  # a changed certificate is never retried
            return Ending(str(exc), retry=False, error=exc)
        if not isinstance(exc, OSError | TimeoutError | ChatClientError):
            log.error("unexpected error while connecting", exc_info=exc)
        reason = _plain_reason(exc)
        return Ending(reason, retry=True, error=NotConnectedError(reason))

    def _backoff(self, attempt: int) -> float:
        base = self.settings.backoff_initial * 2.0 ** min(attempt - 1, 16)
        capped = min(self.settings.backoff_max, base)
        return capped * random.uniform(0.5, 1.0)  # jitter: clients of one server spread out

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Ending:
        """Run one registered connection until it ends; return why."""
        keepalive = asyncio.create_task(self._keep_alive(writer))
        try:
            while self.session.ending is None:
                await self._receive(reader)
        except Exception as exc:  # a bug must cost a reconnect, not the client
            log.error("unexpected error on the connection", exc_info=exc)
            self.session.abort(f"unexpected error: {_plain_reason(exc)}")
            await self._deliver()
        finally:
            self._ready.clear()
            keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keepalive
            await self._drop_writer()
        assert self.session.ending is not None
        return self.session.ending

    async def _receive(self, reader: asyncio.StreamReader) -> None:
        """Read once, feed the session, write and route what comes out."""
        try:
            data = await reader.read(READ_CHUNK)
        except OSError as exc:
            self.session.connection_lost(self._dead_reason or _plain_reason(exc))
        else:
            if data:
                self._last_heard = asyncio.get_running_loop().time()
                self.session.receive_data(data)
            else:
                self.session.connection_lost(
                    self._dead_reason or "the server closed the connection"
                )
        await self._deliver()

    async def _deliver(self) -> None:
        """Route the session's events in slices, letting the loop run between them."""
        while True:
            events = self.session.next_events(DELIVERY_SLICE)
            if self.session.ending is not None:
                self._ready.clear()  # requests made from now on wait for the next connection
            self._flush()
            for start in range(0, len(events), DELIVERY_SLICE):
                if start:
                    await asyncio.sleep(0)
                for event in events[start : start + DELIVERY_SLICE]:
                    self._route(event)
            if not self.session.has_pending_input:
                return
            await asyncio.sleep(0)

    def _route(self, event: SessionEvent) -> None:
        if isinstance(event, Completed | Failed):
            sent = self._pings.pop(event.request_id, None)
            if sent is not None and isinstance(event, Completed):
                self._queue.put(RoundTrip(asyncio.get_running_loop().time() - sent))
            future = self._futures.pop(event.request_id, None)
            if future is None or future.done():
                return
            if isinstance(event, Completed):
                future.set_result(event.reply)
            else:
                future.set_exception(event.error)
        else:
            self._queue.put(event)

    async def _keep_alive(self, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        self._last_heard = loop.time()
        while True:
            await asyncio.sleep(self.settings.ping_interval)
            if loop.time() - self._last_heard > self.settings.dead_after:
                self._dead_reason = f"no word from the server in {self.settings.dead_after:.0f} s"
                log.warning("%s; reconnecting", self._dead_reason)
                writer.transport.abort()
                return
            with contextlib.suppress(NotConnectedError):
                self._pings = {self.session.send_ping(): loop.time()}
                self._flush()

    def _flush(self) -> None:
        data = self.session.data_to_send()
        writer = self._writer
        if data and writer is not None and not writer.is_closing():
            writer.write(data)

    async def _drop_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()


async def _quiet_typing(request: Awaitable[None]) -> None:
    """A typing notice sent in the background: a refusal or a lost connection is no news."""
    with contextlib.suppress(ChatClientError, ConnectionError):
        await request


def _plain_reason(exc: BaseException) -> str:
    """Why a connection attempt failed, in words a person can act on."""
    if isinstance(exc, ConnectionRefusedError):
        return "the server is not accepting connections"
    if isinstance(exc, TimeoutError):
        return "the server did not answer"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__
