"""A JSON-mode session: decode each line, run it on the hub, answer per the contract.

Every request with an `id` gets exactly one direct reply carrying it as `re`.
Refusals become `error` replies; nothing here raises out except bugs, which
the connection logs and turns into a disconnect.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from protocol import (
    Ban,
    ChangeNick,
    ClientMessage,
    DeleteMessage,
    DmHistoryPage,
    EditMessage,
    ErrorCode,
    ErrorReply,
    GetBans,
    GetHistory,
    HistoryPage,
    Join,
    Kick,
    ListRooms,
    MarkRead,
    Members,
    Part,
    Ping,
    Pong,
    ProtocolError,
    Quit,
    React,
    Register,
    RegisterAccount,
    RoomInfo,
    RoomList,
    Say,
    Search,
    SearchResults,
    SendDm,
    ServerPong,
    SetAway,
    SetOp,
    SetTopic,
    Typing,
    Unban,
    Upload,
    Welcome,
    Who,
    decode_client_line,
)
from protocol.limits import REPLAY_MAX

from .config import feature_set, granted_features, supported_features
from .errors import ChatError
from .hub import ChatHub, Peer, Result

if TYPE_CHECKING:
    from .files.sharing import FileSharing

__all__ = ["HANDLERS", "NOT_YET_HANDLED", "JsonSession", "SessionHost"]

Pending = Awaitable[None] | None

TYPING_TARGETS = 64  # throttle entries kept before the stale ones are swept

# Decoded `typing` lines without an id, by their bytes. A client sends the same few
# lines (`{"type":"typing","room":"lobby","state":"active"}`, then `done`) around every
# message, and every member of a room sends the same ones: decoding is pure and the
# models are frozen, so a line seen before is not validated again. Bounded: cleared
# when full. Lines with an id are never kept (each id is new).
_TYPING_LINES: dict[bytes, Typing] = {}
TYPING_LINES_KEPT = 1024
TYPING_LINE_MAX = 200  # bytes; longer lines are never looked up (hashing costs)


class SessionHost(Peer, Protocol):
    """The connection a session talks through."""

    registered: bool
    ip: str

    @property
    def local_host(self) -> str | None:
        """The address the client reached the server at (file URLs use it)."""
        ...

    def reply(self, message: BaseModel) -> None:
        """Queue a direct reply (output the client asked for, paced by its reading)."""
        ...

    def send_text(self, text: str) -> None:
        """Queue a plain-text reply line (text mode only)."""
        ...

    def allow_typing(self) -> bool:
        """Count a `typing` line against its own bound, not the line bucket."""
        ...

    def close_with_bye(
        self, reason: str, left_reason: str | None = None, *, bye: bool = True
    ) -> None:
        """Send `bye`, leave every room (members get `left`), then close."""
        ...


class JsonSession:
    """Handles the lines of one JSON-mode connection."""

    def __init__(self, hub: ChatHub, host: SessionHost) -> None:
        self._hub = hub
        self._host = host
        self._max_text = hub.config.max_text
        self._auth_failures = 0
        self._typing_interval = hub.config.typing_interval
        # typing target -> when `active` last went; made by the first `typing`
        self._last_active: dict[str, float] | None = None
        self._server_password_failed = False  # account logins are throttled, not closed

    def _refused(self, exc: ChatError, request_id: str | None) -> None:
        self._error(exc.code, exc.message, request_id)
        if exc.code is ErrorCode.AUTH_FAILED and self._server_password_failed:
            self._auth_failures += 1
            if self._auth_failures >= self._hub.config.auth_failures:
                self._host.close_with_bye("auth_failed")

    def handle_line(self, line: bytes) -> Pending:
        """Handle one framed line; return an awaitable if the answer needs the store."""
        message: ClientMessage | None = None
        if len(line) <= TYPING_LINE_MAX:
            message = _TYPING_LINES.get(line)
        if message is None:
            try:
                message = decode_client_line(line, max_text=self._max_text)
            except ProtocolError as exc:
                self._host.reply(ErrorReply(code=exc.code, message=exc.message, re=exc.re))
                return None
            if type(message) is Typing and message.id is None and len(line) <= TYPING_LINE_MAX:
                _remember_typing(line, message)
        if not self._host.registered and not isinstance(message, Register | Pong | Quit):
            self._error(ErrorCode.NOT_REGISTERED, "say hello with a nick first", message.id)
            return None
        handler = HANDLERS.get(type(message))
        if handler is None:  # a type the codec knows and this server does not handle yet
            kind = getattr(message, "type", "?")
            self._error(ErrorCode.INVALID_MESSAGE, f"'{kind}' is not handled here", message.id)
            return None
        try:
            return handler(self, message)
        except ChatError as exc:
            self._refused(exc, message.id)
            return None

    def _error(self, code: ErrorCode, message: str, re: str | None) -> None:
        self._host.reply(ErrorReply(code=code, message=message, re=re))

    def _ack(self, request_id: str | None) -> None:
        if request_id is not None:
            self._host.send_ack(request_id)

    def _register(self, message: Register) -> Pending:
        host = self._host
        if host.registered:
            raise ChatError(ErrorCode.ALREADY_REGISTERED, "you are already registered")
        wait = self._hub.password_wait(host)
        if wait > 0:
            return self._register_later(wait, message)
        self._server_password_failed = True
        self._hub.check_password(host, message.password)
        self._server_password_failed = False
        if (
            message.account_password is None
            and not self._hub.presence.clustered
            and not self._hub.accounts.is_account(message.nick)
        ):
            self._hub.register(host, message.nick)  # a guest: no store read, as in version 1
            self._welcome(message)
            return None
        return self._login(message)

    async def _login(self, message: Register) -> None:
        try:
            await self._hub.login(self._host, message.nick, message.account_password)
        except ChatError as exc:
            self._refused(exc, message.id)
            return
        if self._host.closed:
            self._hub.unregister(self._host, "disconnected")
            return
        self._welcome(message)
        if self._host.account:
            await self._hub.deliver_pending(self._host)

    def _welcome(self, message: Register) -> None:
        host = self._host
        host.registered = True
        granted = granted_features(message.features, supported_features(self._hub.config))
        host.features = feature_set(granted)
        host.reply(
            Welcome(
                nick=host.nick,
                rooms=self._hub.room_names(),
                features=granted,
                account=host.account,
                re=message.id,
            )
        )

    async def _register_later(self, wait: float, message: Register) -> None:
        """Check a password only once its address's wrong guesses have been waited out."""
        await asyncio.sleep(wait)
        if self._host.closed:
            return
        try:
            pending = self._register(message)
        except ChatError as exc:
            self._refused(exc, message.id)
            return
        if pending is not None:
            await pending

    def _join(self, message: Join) -> Pending:
        result = self._hub.join(self._host, message.room, message.since, message.changed_since)
        if isinstance(result, Result):
            self._finish_join(result, message.id)
            return None
        return self._await_join(result, message.id)

    async def _await_join(self, pending: Awaitable[Result], request_id: str | None) -> None:
        try:
            result = await pending
        except ChatError as exc:
            self._error(exc.code, exc.message, request_id)
            return
        if not self._host.closed:
            self._finish_join(result, request_id)

    def _finish_join(self, result: Result, request_id: str | None) -> None:
        host, room = self._host, result.room
        members = room.nicks
        if host not in room and not room.has_nick(host.nick):
            members.append(host.nick)
        host.reply(
            RoomInfo(
                room=room.name,
                topic=room.topic,
                members=members,
                read=self._hub.marker(host, "#" + room.name),
                away=self._hub.away_in(room),
                ops=self._hub.moderator.ops_in(room, None if host in room else host),
                re=request_id,
            )
        )
        host.reply(_history_page(self._hub, result, None))
        self._hub.enter(host, room)

    def _part(self, message: Part) -> Pending:
        self._hub.part(self._host, message.room, message.reason)
        self._ack(message.id)
        return None

    def _say(self, message: Say) -> Pending:
        if message.reply_to is None:
            self._hub.say(self._host, message.room, message.text, message.action, message.id)
            return None
        return self._hub.changes.say(
            self._host, message.room, message.text, message.action, message.reply_to, message.id
        )

    def _edit(self, message: EditMessage) -> Pending:
        return self._hub.changes.edit(
            self._host, message.room, message.seq, message.text, message.id
        )

    def _delete(self, message: DeleteMessage) -> Pending:
        return self._hub.changes.delete(self._host, message.room, message.seq, message.id)

    def _react(self, message: React) -> Pending:
        return self._hub.changes.react(
            self._host, message.room, message.seq, message.emoji, message.remove, message.id
        )

    def _dm(self, message: SendDm) -> Pending:
        self._hub.dm(self._host, message.to, message.text, message.id)
        return None

    def _nick(self, message: ChangeNick) -> Pending:
        pending = self._hub.change_nick(self._host, message.nick)
        if pending is not None:
            return self._nick_later(pending, message.id)
        self._ack(message.id)
        return None

    async def _nick_later(self, pending: Awaitable[None], request_id: str | None) -> None:
        try:
            await pending
        except ChatError as exc:
            self._refused(exc, request_id)
            return
        self._ack(request_id)

    def _topic(self, message: SetTopic) -> Pending:
        self._hub.set_topic(self._host, message.room, message.topic, message.id)
        return None

    def _who(self, message: Who) -> Pending:
        room = self._hub.existing_room(message.room)
        self._host.reply(
            Members(room=room.name, members=room.nicks, away=self._hub.away_in(room), re=message.id)
        )
        return None

    def _rooms(self, message: ListRooms) -> Pending:
        self._host.reply(RoomList(rooms=self._hub.summaries(), re=message.id))
        return None

    def _history(self, message: GetHistory) -> Pending:
        if message.room is None:
            assert message.with_ is not None
            return self._dm_history(message, message.with_)
        if message.around is not None:
            pending = self._hub.history_around(message.room, message.around, message.limit)
            return self._await_history(pending, message.id)
        if message.changed_since is not None:
            room = self._hub.existing_room(message.room)
            limit = REPLAY_MAX if "limit" not in message.model_fields_set else message.limit
            changed = self._hub.changed_since(room, message.changed_since, limit)
            return self._await_history(changed, message.id)
        result = self._hub.history(message.room, message.before, message.after, message.limit)
        if isinstance(result, Result):
            self._host.reply(_history_page(self._hub, result, message.id))
            return None
        return self._await_history(result, message.id)

    async def _await_history(self, pending: Awaitable[Result], request_id: str | None) -> None:
        try:
            result = await pending
        except ChatError as exc:  # the shared store is gone (`unavailable`)
            self._error(exc.code, exc.message, request_id)
            return
        if not self._host.closed:
            self._host.reply(_history_page(self._hub, result, request_id))

    def _typing(self, message: Typing) -> Pending:
        if self._host.allow_typing() and self._throttle_passes(message):
            self._hub.typing(self._host, message.room, message.to, message.state)
        self._ack(message.id)  # a throttled one too: dropped, not refused
        return None

    def _throttle_passes(self, message: Typing) -> bool:
        """At most one `active` per target every `typing_interval`; other states always pass."""
        if message.state != "active":
            return True
        target = f"#{message.room}" if message.room is not None else (message.to or "").lower()
        now = time.monotonic()
        seen = self._last_active
        if seen is None:
            seen = self._last_active = {}
        last = seen.get(target)
        if last is not None and now - last < self._typing_interval:
            return False
        if len(seen) >= TYPING_TARGETS:
            seen = self._forget_old_typing(seen, now)
        seen[target] = now
        return True

    def _forget_old_typing(self, seen: dict[str, float], now: float) -> dict[str, float]:
        interval = self._typing_interval
        self._last_active = {t: at for t, at in seen.items() if now - at < interval}
        return self._last_active

    async def _dm_history(self, message: GetHistory, with_: str) -> None:
        try:
            other, page = await self._hub.dm_history(
                self._host, with_, message.before, message.after, message.limit
            )
        except ChatError as exc:
            self._refused(exc, message.id)
            return
        if not self._host.closed:
            self._host.reply(
                DmHistoryPage(
                    with_=other,
                    messages=[dm.to_wire() for dm in page.messages],
                    more=page.more,
                    read=self._hub.marker(self._host, "@" + other.lower()),
                    re=message.id,
                )
            )

    # -- version 2: accounts, read markers, away ----------------------------------

    def _register_account(self, message: RegisterAccount) -> Pending:
        return self._await_register_account(message)

    async def _await_register_account(self, message: RegisterAccount) -> None:
        try:
            await self._hub.register_account(self._host, message.password)
        except ChatError as exc:
            self._refused(exc, message.id)
            return
        self._ack(message.id)

    def _mark_read(self, message: MarkRead) -> Pending:
        self._hub.mark_read(self._host, message.room, message.with_, message.seq, message.id)
        return None

    def _away(self, message: SetAway) -> Pending:
        self._hub.set_away(self._host, message.text)
        self._ack(message.id)
        return None

    def _ping(self, message: Ping) -> Pending:
        self._host.reply(ServerPong(token=message.token, re=message.id))
        return None

    def _quit(self, message: Quit) -> Pending:
        self._host.close_with_bye("quit", message.reason or "quit")
        return None

    def _upload(self, message: Upload) -> Pending:
        files = self._hub.files
        if files is None:
            raise ChatError(ErrorCode.INVALID_MESSAGE, "this server does not share files")
        self._hub.check_can_share(self._host, message.room, message.to)
        return self._await_upload(files, message)

    async def _await_upload(self, files: FileSharing, message: Upload) -> None:
        try:
            ready = await files.request(self._host, message)
        except ChatError as exc:
            self._refused(exc, message.id)
            return
        if not self._host.closed:
            self._host.reply(ready)

    # -- version 2: search and moderation ------------------------------------------

    def _search(self, message: Search) -> Pending:
        return self._await_search(message)

    async def _await_search(self, message: Search) -> None:
        hub, host = self._hub, self._host
        try:
            if message.with_ is not None:
                other, dms, more, cursor = await hub.search_dms(
                    host,
                    message.query,
                    message.with_,
                    message.sender,
                    message.limit,
                    message.before,
                )
                reply = SearchResults(
                    query=message.query,
                    results=[dm.to_wire() for dm in dms],
                    more=more,
                    cursor=cursor.encode() if cursor is not None else None,
                    with_=other,
                    re=message.id,
                )
            else:
                page = await hub.search(
                    host, message.query, message.room, message.sender, message.limit, message.before
                )
                cursor = page.cursor
                reply = SearchResults(
                    query=message.query,
                    results=[m.to_wire() for m in hub.with_files(page.messages)],
                    more=page.more,
                    cursor=cursor.encode() if cursor is not None else None,
                    re=message.id,
                )
        except ChatError as exc:
            self._refused(exc, message.id)
            return
        if not host.closed:
            host.reply(reply)

    def _op(self, message: SetOp) -> Pending:
        self._hub.moderator.set_op(
            self._host, message.room, message.nick, message.remove, message.id
        )
        return None

    def _kick(self, message: Kick) -> Pending:
        self._hub.moderator.kick(self._host, message.room, message.nick, message.reason, message.id)
        return None

    def _ban(self, message: Ban) -> Pending:
        self._hub.moderator.ban(self._host, message.room, message.nick, message.reason, message.id)
        return None

    def _unban(self, message: Unban) -> Pending:
        moderator = self._hub.moderator
        moderator.unban(self._host, message.room, message.nick, message.reason, message.id)
        return None

    def _bans(self, message: GetBans) -> Pending:
        self._host.reply(self._hub.moderator.bans(self._host, message.room, message.id))
        return None


def _ignore(_session: JsonSession, _message: Pong) -> Pending:
    return None


Handler = Callable[[JsonSession, Any], Pending]

# Every client message type and its handler, by feature. A test checks that each
# type of the protocol's union is here; one that is not gets `invalid_message`.
SESSION_HANDLERS: dict[type[BaseModel], Handler] = {
    Register: JsonSession._register,
    Ping: JsonSession._ping,
    Pong: _ignore,
    Quit: JsonSession._quit,
}
ROOM_HANDLERS: dict[type[BaseModel], Handler] = {
    Join: JsonSession._join,
    Part: JsonSession._part,
    SetTopic: JsonSession._topic,
    Who: JsonSession._who,
    ListRooms: JsonSession._rooms,
}
CHAT_HANDLERS: dict[type[BaseModel], Handler] = {
    Say: JsonSession._say,
    EditMessage: JsonSession._edit,
    DeleteMessage: JsonSession._delete,
    React: JsonSession._react,
    SendDm: JsonSession._dm,
    ChangeNick: JsonSession._nick,
}
HISTORY_HANDLERS: dict[type[BaseModel], Handler] = {
    GetHistory: JsonSession._history,
}
TYPING_HANDLERS: dict[type[BaseModel], Handler] = {
    Typing: JsonSession._typing,
}
ACCOUNT_HANDLERS: dict[type[BaseModel], Handler] = {
    RegisterAccount: JsonSession._register_account,
    MarkRead: JsonSession._mark_read,
    SetAway: JsonSession._away,
}
FILES_HANDLERS: dict[type[BaseModel], Handler] = {
    Upload: JsonSession._upload,
}
SEARCH_HANDLERS: dict[type[BaseModel], Handler] = {
    Search: JsonSession._search,
}
MODERATION_HANDLERS: dict[type[BaseModel], Handler] = {
    SetOp: JsonSession._op,
    Kick: JsonSession._kick,
    Ban: JsonSession._ban,
    Unban: JsonSession._unban,
    GetBans: JsonSession._bans,
}
HANDLERS: dict[type[BaseModel], Handler] = {
    **SESSION_HANDLERS,
    **ACCOUNT_HANDLERS,
    **ROOM_HANDLERS,
    **CHAT_HANDLERS,
    **HISTORY_HANDLERS,
    **TYPING_HANDLERS,
    **FILES_HANDLERS,
    **SEARCH_HANDLERS,
    **MODERATION_HANDLERS,
}
# Requests of the protocol this server does not do yet: they fall through to
# `invalid_message` ("not handled here"), and their features are not offered.
NOT_YET_HANDLED: frozenset[type[BaseModel]] = frozenset()


def _history_page(hub: ChatHub, result: Result, request_id: str | None) -> HistoryPage:
    return HistoryPage(
        room=result.room.name,
        messages=[m.to_wire() for m in hub.with_files(result.messages)],
        more=result.more,
        re=request_id,
    )


def _remember_typing(line: bytes, message: Typing) -> None:
    if len(_TYPING_LINES) >= TYPING_LINES_KEPT:
        _TYPING_LINES.clear()
    _TYPING_LINES[line] = message
