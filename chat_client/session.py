"""`ClientSession`: every rule of the client side of the protocol, with no I/O.

The model is websockets' `Protocol`: bytes go in (`receive_data`, `receive_eof`,
`connection_lost`), events and bytes come out (`events_received` or, a slice at
a time, `next_events`; then `data_to_send`). `send_*` methods only queue bytes
and return the request id whose outcome arrives later as `Completed` or
`Failed`. Nothing here imports asyncio: `ChatClient` owns the socket, the
timers, the reconnects and the futures, and calls these methods.

Rules:

1. States: DISCONNECTED -> AWAITING_HELLO (`connection_opened`) -> REGISTERING
   (the server's `hello`; ours is queued at once) -> READY (`welcome`) ->
   DISCONNECTED (bye, EOF, a read error, a refused registration, a line over
   `SERVER_LINE_LIMIT`, an unreadable line before `welcome`, a line that is
   not JSON after it). `ending` then says why and whether to retry; the rejoin
   with `since` recovers whatever a damaged line held. After `welcome`, valid
   JSON of an unknown type or shape (a newer server's) is skipped. CLOSED after
   `close()`.
2. One reply per id (`requests.py`): the first line carrying a request's id as
   `re` settles it (its reply type, `ack`, or `error` -> `Failed` with a
   `RequestError`); later ones are ignored. An `error` with an unknown or no
   `re` is an event.
3. When a connection ends, every open request fails with `NotConnectedError`,
   except says (`says.py`): a say sent but not acked is matched after the
   rejoin against the replayed history (own nick, same text and action) and
   completes with that seq, or is sent again. A say made while disconnected, or
   while its room is catching up, waits and goes out once the room is rejoined.
4. After `welcome` every tracked room is joined again with `since` = the last
   seq delivered; the join's `history` and the `history after` pages that
   follow while `more` is true go through `RoomTracker`, so each seq is
   delivered once, in order, and live messages wait meanwhile. The `room` reply
   is reported right after the join's own `history` (the server sends the two
   together, so nothing comes between them): a program sees the replay, then
   the room as it is now. A join completes (with its `room` reply) once the
   whole replay is in.
5. Pages that fit: catch-up pages and `history()` ask for at most
   `HISTORY_PAGE` messages per reply (`paging.py` says why).
6. Features: `hello` carries the version-2 features asked for; `welcome.features`
   (absent from a version-1 server: none) are the ones granted.
7. Accounts (version 2): with an account password (from the caller; kept only in
   memory, for the next login after a drop, and never shown by `repr` or logs)
   `hello` carries `account_password`; `auth_required` and `auth_failed` end the
   session for good. Stored DMs (with `seq`) go through `DmTracker`: each is
   delivered once, and after a reconnect every conversation seen is caught up
   with `history {with, after}` (pages of `HISTORY_PAGE`), so none is lost.
8. Changes (version 2): a room whose messages carry `rev` is rejoined with
   `changed_since` = the highest rev seen instead of `since`; the pages (and
   `history {changed_since}` pages while `more`) are gathered, then delivered as
   the current state of older messages that changed (`MessageUpdated`), the new
   messages (`ChatMessage`, in seq order), then what waited meanwhile. Live
   `edited`, `deleted` and `reaction` events at or below the highest rev seen are
   dropped (already shown), so nothing is missed and nothing comes twice.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from protocol import (
    Ack,
    Ban,
    BanList,
    Banned,
    Bye,
    ChangeNick,
    ChatMessage,
    DeleteMessage,
    DirectMessage,
    DmHistoryPage,
    EditMessage,
    ErrorCode,
    ErrorReply,
    GetBans,
    GetHistory,
    HistoryPage,
    Join,
    Kick,
    Kicked,
    Left,
    LineFramer,
    LineTooLong,
    ListRooms,
    MarkRead,
    Members,
    MessageDeleted,
    MessageEdited,
    NickChanged,
    Part,
    Ping,
    Pong,
    ProtocolError,
    Quit,
    React,
    ReactionChanged,
    Register,
    RegisterAccount,
    RoomInfo,
    RoomList,
    Say,
    Search,
    SearchResults,
    SendDm,
    ServerHello,
    ServerMessage,
    ServerPing,
    ServerPong,
    SetAway,
    SetOp,
    SetTopic,
    Typing,
    Unban,
    Upload,
    UploadReady,
    Welcome,
    Who,
    encode,
    validation_error,
)
from protocol.limits import HISTORY_MAX

from .decoding import SERVER_LINE_LIMIT, PageInSlices, decode_line
from .dm_tracking import DmTracker
from .events import (
    ChatClientError,
    ClientEvent,
    Connected,
    MessageUpdated,
    NotConnectedError,
    RequestError,
)
from .paging import HISTORY_PAGE, HistoryCollector
from .requests import RequestTable
from .says import PendingSay, SayBook
from .tracking import RoomTracker

__all__ = [
    "CLIENT_NAME",
    "FATAL_CODES",
    "ClientSession",
    "Completed",
    "Ending",
    "Failed",
    "SessionEvent",
    "State",
]

log = logging.getLogger("chat_client")

CLIENT_NAME = "chat-client/0.1"
REGISTER_ID = "register"
# Registration refusals that another try cannot fix (`nick_taken` may clear up).
FATAL_CODES = frozenset({ErrorCode.AUTH_FAILED, ErrorCode.INVALID_NICK, ErrorCode.AUTH_REQUIRED})
DEFAULT_SLICE = 1_000

M = TypeVar("M", bound=BaseModel)


class State(Enum):
    DISCONNECTED = "disconnected"
    AWAITING_HELLO = "awaiting hello"
    REGISTERING = "registering"
    READY = "ready"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Completed:
    """Request `request_id` got its reply (for a say: an `Ack` with its seq)."""

    request_id: str
    reply: BaseModel


@dataclass(frozen=True, slots=True)
class Failed:
    """Request `request_id` was refused, or its connection ended first."""

    request_id: str
    error: ChatClientError


@dataclass(frozen=True, slots=True)
class Ending:
    """Why a connection ended, and whether trying again may help."""

    reason: str
    retry: bool
    error: ChatClientError


SessionEvent = ClientEvent | Completed | Failed


@dataclass(slots=True)
class _Join:
    request_id: str
    info: RoomInfo | None = None
    info_shown: bool = False
    replayed: list[ChatMessage] = field(default_factory=list)
    resume: bool = False  # joined with `changed_since`: gather every page first (rule 8)
    pages: list[ChatMessage] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Lost:
    reason: str


class ClientSession:
    """The client's protocol state for one user, across reconnects.

    Args:
        nick: the nick to register (after `welcome`, the one the server gave).
        password: the server password, when it asks for one.
        account_password: the password of the account `nick` (version 2; rule 7).
        client_name: sent in `hello` as `client`.
        features: version-2 features to ask for in `hello`.
        max_line: the longest server line accepted, in bytes (tests make it small).
    """

    def __init__(
        self,
        nick: str,
        *,
        password: str | None = None,
        client_name: str = CLIENT_NAME,
        features: frozenset[str] = frozenset(),
        max_line: int = SERVER_LINE_LIMIT,
        account_password: str | None = None,
    ) -> None:
        self.nick = nick
        self.max_line = max_line
        self._password = password
        self._account_password = account_password
        self.dm_tracker = DmTracker()
        self.client_name = client_name
        self.wanted_features = features
        self.features: frozenset[str] = frozenset()  # granted by the last welcome
        self.server_features: frozenset[str] = frozenset()
        self.server_name = ""
        self.motd = ""
        self.state = State.DISCONNECTED
        self.ending: Ending | None = None
        self.welcome: Welcome | None = None  # the last one
        self.tracker = RoomTracker()
        self._framer = LineFramer(max_line)
        self._inbox: deque[bytes | LineTooLong | _Lost] = deque()
        self._page: PageInSlices | None = None
        self._out: list[bytes] = []
        self._events: list[SessionEvent] = []
        self._requests = RequestTable()
        self._says = SayBook()
        self._joins: dict[str, _Join] = {}
        self._ids = itertools.count(1)

    def __repr__(self) -> str:  # never shows the password
        return f"ClientSession(nick={self.nick!r}, state={self.state.value!r})"

    # -- bytes in, events and bytes out ---------------------------------------

    def connection_opened(self) -> None:
        """A new connection is up: expect the server's `hello`."""
        if self.state is State.CLOSED:
            raise NotConnectedError("the client is closed")
        self.state = State.AWAITING_HELLO
        self.ending = None
        self._framer = LineFramer(self.max_line)
        self._inbox.clear()
        self._page = None
        self._out.clear()

    def receive_data(self, data: bytes) -> None:
        """Bytes from the server; then call `events_received()` (or `next_events()`)."""
        if self._connected():
            self._inbox.extend(self._framer.feed(data))

    def receive_eof(self) -> None:
        """The server closed the connection."""
        self.connection_lost("the server closed the connection")

    def connection_lost(self, reason: str) -> None:
        """The connection failed (`reason` in plain words); lines already read still count."""
        if self._connected():
            self._inbox.append(_Lost(reason))

    def abort(self, reason: str) -> None:
        """End the connection now (the caller gave up on it); unread lines are dropped."""
        self._end(reason, retry=True, error=NotConnectedError(reason))

    @property
    def has_pending_input(self) -> bool:
        """Received lines not processed yet (`next_events` stopped at its budget)."""
        return bool(self._inbox) or self._page is not None

    def next_events(self, budget: int = DEFAULT_SLICE) -> list[SessionEvent]:
        """Process received lines for about `budget` units of work; return the events.

        A line, a message validated and an event produced each cost one unit, so
        a long history page takes several calls and a caller can let other work
        run between them while `has_pending_input`.
        """
        spent = 0
        while spent < budget and self.has_pending_input:
            produced = len(self._events)
            if self._page is not None:
                spent += self._advance_page(budget - spent)
            else:
                self._take(self._inbox.popleft())
                spent += 1
            spent += len(self._events) - produced
        events, self._events = self._events, []
        return events

    def events_received(self) -> list[SessionEvent]:
        """Every event from the data received so far."""
        events: list[SessionEvent] = []
        while self.has_pending_input:
            events += self.next_events()
        return events + self.next_events()

    def data_to_send(self) -> bytes:
        """The bytes to write now (empty when there is nothing)."""
        data = b"".join(self._out)
        self._out.clear()
        return data

    def close(self) -> None:
        """Stop for good: every open request and say fails with `NotConnectedError`."""
        if self.state is State.CLOSED:
            return
        self.state = State.CLOSED
        error = NotConnectedError("the client is closed")
        open_ids = dict.fromkeys(self._requests.clear() + self._says.clear())
        self._joins.clear()
        self._inbox.clear()
        self._page = None
        self._events += [Failed(request_id, error) for request_id in open_ids]

    # -- requests: each queues bytes and returns the id its outcome will carry --

    def send_join(self, room: str, since: int | None = None) -> str:
        """Join `room` (or share a join of it under way); `since` defaults to the last seq seen."""
        join = _built(lambda: Join(room=room, since=since))
        running = self._joins.get(join.room)
        if running is not None:
            return running.request_id
        self._require_ready()
        return self._start_join(
            join.room, since if since is not None else self.tracker.since(join.room)
        )

    def send_part(self, room: str, reason: str | None = None) -> str:
        part = _built(lambda: Part(room=room, reason=reason))
        return self._request(part, Ack, after=lambda _: self.tracker.parted(part.room))

    def send_say(
        self, room: str, text: str, action: bool = False, *, reply_to: int | None = None
    ) -> str:
        """Say `text` (answering message `reply_to`); it completes with an `Ack` carrying
        its seq, even across drops (rule 3)."""
        say = _built(lambda: Say(room=room, text=text, action=action, reply_to=reply_to))
        if self.state is State.CLOSED:
            raise NotConnectedError("the client is closed")
        pending = PendingSay(
            self._next_id("s"), say.room, say.text, say.action, reply_to=say.reply_to
        )
        self._says.add(pending)
        if self.state is State.READY and not self._catching_up(say.room):
            self._send_say(pending)
        return pending.request_id

    def send_edit(self, room: str, seq: int, text: str) -> str:
        """Replace the text of one's own message `seq`; completes with an `Ack`."""
        return self._request(_built(lambda: EditMessage(room=room, seq=seq, text=text)), Ack)

    def send_delete(self, room: str, seq: int) -> str:
        """Delete message `seq`; completes with an `Ack`."""
        return self._request(_built(lambda: DeleteMessage(room=room, seq=seq)), Ack)

    def send_react(self, room: str, seq: int, emoji: str, *, remove: bool = False) -> str:
        """Add (or `remove`) one's reaction `emoji` to message `seq`; completes with an `Ack`."""
        react = _built(lambda: React(room=room, seq=seq, emoji=emoji, remove=remove))
        return self._request(react, Ack)

    def send_typing(self, state: str, *, room: str | None = None, to: str | None = None) -> str:
        """Tell `room` (or the user `to`) that one is typing: `active`, `paused` or `done`."""
        typing = _built(lambda: Typing.model_validate({"room": room, "to": to, "state": state}))
        return self._request(typing, Ack)

    def send_typing_notice(self, state: str, room: str) -> None:
        """Tell `room` that one is typing, as a notice: no id, so no ack to wait for.

        The same few lines go out around every message, and the server handles a
        line it has seen before without validating it again (only lines without an
        id are kept). In a room this is never refused while one is in it.
        """
        self._require_ready()
        typing = _built(lambda: Typing.model_validate({"room": room, "state": state}))
        self._out.append(encode(typing))

    def send_dm(self, to: str, text: str) -> str:
        return self._request(_built(lambda: SendDm(to=to, text=text)), Ack)

    def send_nick(self, nick: str) -> str:
        change = _built(lambda: ChangeNick(nick=nick))
        return self._request(change, Ack, after=lambda _: self._renamed(change.nick))

    def send_topic(self, room: str, topic: str) -> str:
        return self._request(_built(lambda: SetTopic(room=room, topic=topic)), Ack)

    def send_who(self, room: str) -> str:
        return self._request(_built(lambda: Who(room=room)), Members)

    def send_rooms(self) -> str:
        return self._request(ListRooms(), RoomList)

    def send_upload(self, upload: Upload) -> str:
        """Announce a file; it completes with `UploadReady` (then PUT the bytes to its URL)."""
        return self._request(upload, UploadReady)

    def send_ping(self) -> str:
        return self._request(Ping(), ServerPong)

    def send_history(
        self, room: str, *, before: int | None = None, after: int | None = None, limit: int = 50
    ) -> str:
        """Ask for up to `limit` messages; it completes with one `HistoryPage` (rule 5)."""
        request = _built(lambda: GetHistory(room=room, before=before, after=after, limit=limit))
        self._require_ready()
        collector = HistoryCollector(request)
        public_id = self._next_id("h")
        self._ask_history(public_id, collector)
        return public_id

    def send_history_around(self, room: str, seq: int, limit: int = 21) -> str:
        """The `limit` messages centred on `seq` (version 2 `around`), in one page."""
        request = _built(lambda: GetHistory(room=room, around=seq, limit=min(limit, HISTORY_PAGE)))
        return self._request(request, HistoryPage)

    def send_register(self, password: str) -> str:
        """Make the registered nick an account; the password is kept for later logins."""
        register = _built(lambda: RegisterAccount(password=password))

        def registered(_ack: Ack) -> None:
            self._account_password = register.password

        return self._request(register, Ack, after=registered)

    def send_mark_read(self, seq: int, *, room: str | None = None, with_: str | None = None) -> str:
        """Move the read marker of `room` (or of the DM conversation `with_`) up to `seq`."""
        return self._request(_built(lambda: MarkRead(room=room, with_=with_, seq=seq)), Ack)

    def send_away(self, text: str | None = None) -> str:
        """Be away with `text`; None or "" is back."""
        return self._request(_built(lambda: SetAway(text=text)), Ack)

    def send_dm_history(
        self, with_: str, *, before: int | None = None, after: int | None = None, limit: int = 50
    ) -> str:
        """A page of the stored conversation with `with_`; completes with a `DmHistoryPage`."""
        request = _built(lambda: GetHistory(with_=with_, before=before, after=after, limit=limit))
        return self._request(request, DmHistoryPage)

    def send_search(
        self,
        query: str,
        *,
        room: str | None = None,
        with_: str | None = None,
        sender: str | None = None,
        limit: int = 20,
        before: str | None = None,
    ) -> str:
        """Search (feature `search`); completes with `SearchResults`, newest hit first."""
        request = _built(
            lambda: Search(
                query=query, room=room, with_=with_, sender=sender, limit=limit, before=before
            )
        )
        return self._request(request, SearchResults)

    def send_op(self, room: str, nick: str, *, remove: bool = False) -> str:
        """Make `nick` an op of `room` (with `remove`: no longer one)."""
        return self._request(_built(lambda: SetOp(room=room, nick=nick, remove=remove)), Ack)

    def send_kick(self, room: str, nick: str, reason: str | None = None) -> str:
        return self._request(_built(lambda: Kick(room=room, nick=nick, reason=reason)), Ack)

    def send_ban(self, room: str, nick: str, reason: str | None = None) -> str:
        return self._request(_built(lambda: Ban(room=room, nick=nick, reason=reason)), Ack)

    def send_unban(self, room: str, nick: str, reason: str | None = None) -> str:
        return self._request(_built(lambda: Unban(room=room, nick=nick, reason=reason)), Ack)

    def send_bans(self, room: str) -> str:
        """The bans of `room` (ops only); completes with a `BanList`."""
        return self._request(_built(lambda: GetBans(room=room)), BanList)

    def send_quit(self, reason: str | None = None) -> None:
        """Say goodbye; the server answers `bye` and closes."""
        quit_ = _built(lambda: Quit(reason=reason))
        if self.state is State.READY:
            self._out.append(encode(quit_))

    # -- line handling ---------------------------------------------------------

    def _take(self, item: bytes | LineTooLong | _Lost) -> None:
        if isinstance(item, _Lost):
            self._end(item.reason, retry=True, error=NotConnectedError(item.reason))
        elif isinstance(item, LineTooLong):
            reason = f"the server sent a line longer than {_size(self.max_line)}"
            self._end(reason, retry=True, error=NotConnectedError(reason))
        elif self._connected():
            try:
                decoded = decode_line(item)
            except ProtocolError as exc:
                self._unreadable(exc)
                return
            if isinstance(decoded, PageInSlices):
                self._page = decoded
            else:
                self._handle(decoded)

    def _advance_page(self, budget: int) -> int:
        page = self._page
        assert page is not None
        done = page.advance(budget)
        if page.finished:
            self._page = None
            whole = page.page()
            if whole is None:
                self._unreadable(ProtocolError(ErrorCode.INVALID_MESSAGE, "a broken long line"))
            else:
                self._handle(whole)
        return done

    def _unreadable(self, exc: ProtocolError) -> None:
        if self.state is not State.READY:  # a broken handshake: say so, try again later
            reason = f"the server does not speak the chat protocol ({exc.message})"
        elif exc.code is ErrorCode.INVALID_MESSAGE:
            # Valid JSON of a type or shape this version does not know: a newer server's.
            log.warning("a line from the server this client cannot read, skipped: %s", exc)
            return
        else:  # not JSON at all after welcome: the stream is damaged; resync with `since`
            reason = f"the server sent an unreadable line ({exc.message})"
        self._end(reason, retry=True, error=NotConnectedError(reason))

    def _handle(self, message: ServerMessage) -> None:
        if isinstance(message, Bye):
            self._events.append(message)
            reason = f"the server said bye: {message.reason}"
            self._end(reason, retry=message.reason != "quit", error=NotConnectedError(reason))
        elif self.state is State.AWAITING_HELLO:
            if isinstance(message, ServerHello):
                self._greeted(message)
        elif self.state is State.REGISTERING:
            self._registering(message)
        elif self.state is State.READY:
            request_id = getattr(message, "re", None)
            if request_id is not None:
                self._settle(request_id, message)
            else:
                self._broadcast(message)

    def _greeted(self, hello: ServerHello) -> None:
        self.server_name = hello.server
        self.motd = hello.motd
        self.server_features = frozenset(hello.features or ())
        self.state = State.REGISTERING
        register = Register(
            nick=self.nick,
            password=self._password,
            client=self.client_name,
            features=sorted(self.wanted_features) or None,
            account_password=self._account_password,
            id=REGISTER_ID,
        )
        self._out.append(encode(register))

    def _registering(self, message: ServerMessage) -> None:
        if isinstance(message, Welcome):
            self._welcomed(message)
        elif isinstance(message, ErrorReply) and message.re == REGISTER_ID:
            error = RequestError.from_reply(message)
            self._end(str(error), retry=error.code not in FATAL_CODES, error=error)
        elif isinstance(message, ServerPing):
            self._out.append(encode(Pong(token=message.token)))

    def _welcomed(self, welcome: Welcome) -> None:
        self.state = State.READY
        self.welcome = welcome
        self.nick = welcome.nick
        self.features = frozenset(welcome.features or ())
        self._events.append(
            Connected(
                welcome.nick,
                self.server_name,
                self.motd,
                tuple(welcome.rooms),
                self.features,
                account=welcome.account,
            )
        )
        for room in list(self.tracker.rooms):
            self._start_join(room, self.tracker.since(room), self.tracker.resume_rev(room))
        for say in self._says.unsent_outside(self.tracker.rooms):
            self._send_say(say)
        if welcome.account:
            for other in self.dm_tracker.conversations:
                self._catch_up_dms(other, self.dm_tracker.since(other))

    def _broadcast(self, message: ServerMessage) -> None:
        if isinstance(message, ChatMessage):
            delivered = self.tracker.live(message)
            self._says.seen_live(delivered, self.nick)
            self._events.extend(delivered)
        elif isinstance(message, MessageEdited | MessageDeleted | ReactionChanged):
            self._events.extend(self.tracker.live_change(message))
        elif isinstance(message, HistoryPage):
            self._join_page(message)
        elif isinstance(message, DirectMessage):
            self._dm(message)
        elif isinstance(message, ServerPing):
            self._out.append(encode(Pong(token=message.token)))
        elif isinstance(message, NickChanged):
            if message.old.lower() == self.nick.lower():
                self.nick = message.new
            self._events.append(message)
        elif isinstance(message, Kicked | Banned | Left):
            if message.nick.lower() == self.nick.lower() and _put_out(message):
                self.tracker.parted(message.room)  # not rejoined after a reconnect
            self._events.append(message)
        elif isinstance(
            message,
            ServerHello
            | Welcome
            | Members
            | RoomList
            | Ack
            | ServerPong
            | UploadReady
            | DmHistoryPage
            | SearchResults
            | BanList,
        ):
            log.debug("ignored a %s without a request", message.type)
        else:
            self._events.append(message)

    def _dm(self, dm: DirectMessage) -> None:
        if dm.seq is None or self.dm_tracker.deliver(self._other(dm), dm.seq):
            self._events.append(dm)

    def _other(self, dm: DirectMessage) -> str:
        return dm.to if dm.sender.lower() == self.nick.lower() else dm.sender

    def _catch_up_dms(self, other: str, since: int) -> None:
        """After a reconnect: the DMs of a conversation stored since the last one delivered."""
        request_id = self._next_id("c")

        def replied(page: DmHistoryPage) -> None:
            for dm in page.messages:
                self._dm(dm)
            if page.more and page.messages:
                self._catch_up_dms(other, page.messages[-1].seq or since)

        def failed(error: ChatClientError) -> None:
            log.debug("could not catch up the DMs with %s: %s", other, error)

        self._requests.expect(request_id, DmHistoryPage, replied, failed)
        request = GetHistory(with_=other, after=since, limit=HISTORY_PAGE, id=request_id)
        self._out.append(encode(request))

    def _settle(self, request_id: str, reply: ServerMessage) -> None:
        if self._requests.settle(request_id, reply):
            return
        if isinstance(reply, ErrorReply):
            self._events.append(reply)  # for no request of ours: show it
        else:
            log.debug("ignored a second or unknown reply to %r", request_id)

    def _end(self, reason: str, *, retry: bool, error: ChatClientError) -> None:
        if not self._connected():
            return
        self.state = State.DISCONNECTED
        self.ending = Ending(reason, retry, error)
        self._inbox.clear()
        self._page = None
        self._requests.drop_all()
        for room in list(self._joins):
            self._join_dropped(room)

    # -- requests and their outcomes -------------------------------------------

    def _request(
        self,
        message: BaseModel,
        expects: type[M],
        *,
        after: Callable[[M], None] | None = None,
    ) -> str:
        self._require_ready()
        request_id = self._next_id("c")

        def replied(reply: M) -> None:
            if after is not None:
                after(reply)
            self._events.append(Completed(request_id, reply))

        self._requests.expect(request_id, expects, replied, self._fail(request_id))
        self._out.append(encode(message.model_copy(update={"id": request_id})))
        return request_id

    def _fail(self, request_id: str) -> Callable[[ChatClientError], None]:
        return lambda error: self._events.append(Failed(request_id, error))

    def _renamed(self, nick: str) -> None:
        self.nick = nick

    def _ask_history(self, public_id: str, collector: HistoryCollector) -> None:
        request_id = self._next_id("c")

        def replied(page: HistoryPage) -> None:
            if collector.add(page):
                self._events.append(Completed(public_id, collector.result(public_id)))
            else:
                self._ask_history(public_id, collector)

        self._requests.expect(request_id, HistoryPage, replied, self._fail(public_id))
        self._out.append(encode(collector.next_request(request_id)))

    # -- joins, replay and catch-up (rule 4) ------------------------------------

    def _start_join(self, room: str, since: int | None, changed_since: int | None = None) -> str:
        request_id = self._next_id("j")
        self.tracker.start_catch_up(room)
        resume = changed_since is not None and since is not None
        self._joins[room] = _Join(request_id, resume=resume)
        self._requests.expect(
            request_id,
            RoomInfo,
            lambda info: self._join_answered(room, info),
            lambda error: self._join_refused(room, error),
            lambda: None,  # `_end` drops every join still under way
        )
        if resume:
            join = Join(room=room, changed_since=changed_since, id=request_id)
        else:
            join = Join(room=room, since=since, id=request_id)
        self._out.append(encode(join))
        return request_id

    def _join_answered(self, room: str, info: RoomInfo) -> None:
        join = self._joins.get(room)
        if join is None:
            self._events.append(info)
        else:  # shown right after the join's own replay (rule 4)
            join.info = info

    def _join_page(self, page: HistoryPage) -> None:
        """The `history` a join sends (no `re`): deliver it, then page on while `more`."""
        join = self._joins.get(page.room)
        if join is None:  # not asked for: deliver what is new, wait for nothing
            self._events.extend(self.tracker.replayed(page.room, page.messages, more=False))
            return
        self._replay_page(page.room, join, page)

    def _replay_page(self, room: str, join: _Join, page: HistoryPage) -> None:
        more = page.more and bool(page.messages)
        if join.resume:
            self._resume_page(room, join, page, more)
            return
        delivered = self.tracker.replayed(room, page.messages, more)
        self._events.extend(delivered)
        join.replayed += [m for m in delivered if isinstance(m, ChatMessage)]
        self._show_info(join)
        if more:
            self._ask_catch_up(room, join)
        else:
            self._join_done(room, join)

    def _ask_catch_up(self, room: str, join: _Join) -> None:
        request_id = self._next_id("c")
        after = self.tracker.since(room) or 0
        self._requests.expect(
            request_id,
            HistoryPage,
            lambda page: self._replay_page(room, join, page),
            lambda error: self._catch_up_failed(room, join, error),
            lambda: None,  # `_end` drops the join; the next connection rejoins with `since`
        )
        request = GetHistory(room=room, after=after, limit=HISTORY_PAGE, id=request_id)
        self._out.append(encode(request))

    def _resume_page(self, room: str, join: _Join, page: HistoryPage, more: bool) -> None:
        """A page of a `changed_since` rejoin: gather; once all are in, deliver (rule 8)."""
        join.pages += page.messages
        if more:
            request_id = self._next_id("c")
            last = max(m.rev or 0 for m in page.messages)
            self._requests.expect(
                request_id,
                HistoryPage,
                lambda page: self._replay_page(room, join, page),
                lambda error: self._catch_up_failed(room, join, error),
                lambda: None,  # `_end` drops the join; the next connection resumes again
            )
            request = GetHistory(room=room, changed_since=last, limit=HISTORY_MAX, id=request_id)
            self._out.append(encode(request))
            return
        fresh, changed, waited = self.tracker.resumed(room, join.pages)
        join.pages = []
        self._events.extend(MessageUpdated(message) for message in changed)
        self._events.extend(fresh)
        self._events.extend(waited)
        join.replayed += fresh + [m for m in waited if isinstance(m, ChatMessage)]
        self._join_done(room, join)

    def _catch_up_failed(self, room: str, join: _Join, error: ChatClientError) -> None:
        log.warning("could not page through the history of #%s: %s", room, error)
        self._events.extend(self.tracker.replayed(room, [], more=False))
        self._join_done(room, join)

    def _show_info(self, join: _Join) -> None:
        if join.info is not None and not join.info_shown:
            join.info_shown = True
            self._events.append(join.info)

    def _join_done(self, room: str, join: _Join) -> None:
        self._show_info(join)
        self._joins.pop(room, None)
        for request_id, seq in self._says.stored(room, join.replayed, self.nick):
            self._say_acked(request_id, seq)
        for say in self._says.unsent(room):
            self._send_say(say)
        if join.info is not None:
            self._events.append(Completed(join.request_id, join.info))

    def _join_refused(self, room: str, error: ChatClientError) -> None:
        join = self._joins.pop(room, None)
        state = self.tracker.rooms.get(room)
        if state is not None and state.last_seq is None:
            self.tracker.parted(room)
        elif state is not None:  # a rejoin: show it, and stop holding live messages
            self._events.extend(self.tracker.replayed(room, [], more=False))
            if isinstance(error, RequestError):
                message = f"could not rejoin #{room}: {error.message}"
                self._events.append(ErrorReply(code=error.wire_code, message=message))
        for say in self._says.unsent(room):
            self._say_refused(say.request_id, error)
        if join is not None:
            self._events.append(Failed(join.request_id, error))

    def _join_dropped(self, room: str) -> None:
        join = self._joins.pop(room, None)
        state = self.tracker.rooms.get(room)
        if state is not None and state.last_seq is None:
            self.tracker.parted(room)  # never joined: nothing to rejoin
        if join is not None:
            self._events.append(
                Failed(join.request_id, NotConnectedError("the connection dropped"))
            )

    # -- says (rule 3) -----------------------------------------------------------

    def _send_say(self, say: PendingSay) -> None:
        say.sent = True
        self._requests.expect(
            say.request_id,
            Ack,
            lambda ack: self._say_acked(say.request_id, ack.seq),
            lambda error: self._say_refused(say.request_id, error),
            lambda: self._say_dropped(say),
        )
        message = Say(
            room=say.room,
            text=say.text,
            action=say.action,
            reply_to=say.reply_to,
            id=say.request_id,
        )
        self._out.append(encode(message))

    def _say_acked(self, request_id: str, seq: int | None) -> None:
        self._says.pop(request_id)
        self._events.append(Completed(request_id, Ack(re=request_id, seq=seq)))

    def _say_refused(self, request_id: str, error: ChatClientError) -> None:
        self._says.pop(request_id)
        self._events.append(Failed(request_id, error))

    def _say_dropped(self, say: PendingSay) -> None:
        seq = self._says.dropped(say)
        if seq is not None:  # its message came back: only the ack was lost
            self._say_acked(say.request_id, seq)

    # -- small helpers -----------------------------------------------------------

    def _connected(self) -> bool:
        return self.state in (State.AWAITING_HELLO, State.REGISTERING, State.READY)

    def _require_ready(self) -> None:
        if self.state is State.CLOSED:
            raise NotConnectedError("the client is closed")
        if self.state is not State.READY:
            raise NotConnectedError("not connected")

    def _catching_up(self, room: str) -> bool:
        state = self.tracker.rooms.get(room)
        return state is not None and state.catching_up

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"


def _put_out(message: Kicked | Banned | Left) -> bool:
    """Whether an event about one's own nick took one out of its room."""
    if isinstance(message, Left):
        return message.reason in ("kicked", "banned")
    if isinstance(message, Banned):
        return not message.removed
    return True


def _size(count: int) -> str:
    if count >= 1 << 20:
        return f"{count / (1 << 20):g} MiB"
    return f"{count:,} bytes"


def _built(build: Callable[[], M]) -> M:
    """Build a request; a local validation failure raises the server's own code and words."""
    try:
        return build()
    except ValidationError as exc:
        error = validation_error(exc)
        raise RequestError(error.code, error.message) from None
