"""A JSON-mode session: decode each line, run it on the hub, answer per the contract.

Every request with an `id` gets exactly one direct reply carrying it as `re`.
Refusals become `error` replies; nothing here raises out except bugs, which
the connection logs and turns into a disconnect.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from pydantic import BaseModel

from protocol import (
    ChangeNick,
    ErrorCode,
    ErrorReply,
    GetHistory,
    HistoryPage,
    Join,
    ListRooms,
    Members,
    Part,
    Ping,
    Pong,
    ProtocolError,
    Quit,
    Register,
    RoomInfo,
    RoomList,
    Say,
    SendDm,
    ServerPong,
    SetTopic,
    Welcome,
    Who,
    decode_client_line,
    grant,
)

from .config import SUPPORTED_FEATURES
from .errors import ChatError
from .hub import ChatHub, Peer, Result

__all__ = ["JsonSession", "SessionHost"]

Pending = Awaitable[None] | None


class SessionHost(Peer, Protocol):
    """The connection a session talks through."""

    registered: bool

    def send_text(self, text: str) -> None:
        """Queue a plain-text line (text mode only)."""
        ...

    def close_with_bye(self, reason: str, left_reason: str | None = None) -> None:
        """Send `bye`, leave every room (members get `left`), then close."""
        ...


class JsonSession:
    """Handles the lines of one JSON-mode connection."""

    def __init__(self, hub: ChatHub, host: SessionHost) -> None:
        self._hub = hub
        self._host = host
        self._max_text = hub.config.max_text
        self._handlers: dict[type[BaseModel], Callable[[Any], Pending]] = {
            Register: self._register,
            Join: self._join,
            Part: self._part,
            Say: self._say,
            SendDm: self._dm,
            ChangeNick: self._nick,
            SetTopic: self._topic,
            Who: self._who,
            ListRooms: self._rooms,
            GetHistory: self._history,
            Ping: self._ping,
            Pong: _ignore,
            Quit: self._quit,
        }

    def handle_line(self, line: bytes) -> Pending:
        """Handle one framed line; return an awaitable if the answer needs the store."""
        try:
            message = decode_client_line(line, max_text=self._max_text)
        except ProtocolError as exc:
            self._host.send_message(ErrorReply(code=exc.code, message=exc.message, re=exc.re))
            return None
        if not self._host.registered and not isinstance(message, Register | Pong | Quit):
            self._error(ErrorCode.NOT_REGISTERED, "say hello with a nick first", message.id)
            return None
        try:
            return self._handlers[type(message)](message)
        except ChatError as exc:
            self._error(exc.code, exc.message, message.id)
            return None

    def _error(self, code: ErrorCode, message: str, re: str | None) -> None:
        self._host.send_message(ErrorReply(code=code, message=message, re=re))

    def _ack(self, request_id: str | None) -> None:
        if request_id is not None:
            self._host.send_ack(request_id)

    def _register(self, message: Register) -> Pending:
        host = self._host
        if host.registered:
            raise ChatError(ErrorCode.ALREADY_REGISTERED, "you are already registered")
        self._hub.check_password(message.password)
        self._hub.register(host, message.nick)
        host.registered = True
        host.send_message(
            Welcome(
                nick=host.nick,
                rooms=self._hub.room_names(),
                features=grant(message.features, SUPPORTED_FEATURES),
                re=message.id,
            )
        )
        return None

    def _join(self, message: Join) -> Pending:
        result = self._hub.join(self._host, message.room, message.since)
        if isinstance(result, Result):
            self._finish_join(result, message.id)
            return None
        return self._await_join(result, message.id)

    async def _await_join(self, pending: Awaitable[Result], request_id: str | None) -> None:
        result = await pending
        if not self._host.closed:
            self._finish_join(result, request_id)

    def _finish_join(self, result: Result, request_id: str | None) -> None:
        host, room = self._host, result.room
        members = room.nicks if host in room else [*room.nicks, host.nick]
        host.send_message(
            RoomInfo(room=room.name, topic=room.topic, members=members, re=request_id)
        )
        host.send_message(_history_page(result, None))
        self._hub.enter(host, room)

    def _part(self, message: Part) -> Pending:
        self._hub.part(self._host, message.room, message.reason)
        self._ack(message.id)
        return None

    def _say(self, message: Say) -> Pending:
        self._hub.say(self._host, message.room, message.text, message.action, message.id)
        return None

    def _dm(self, message: SendDm) -> Pending:
        self._hub.dm(self._host, message.to, message.text)
        self._ack(message.id)
        return None

    def _nick(self, message: ChangeNick) -> Pending:
        self._hub.change_nick(self._host, message.nick)
        self._ack(message.id)
        return None

    def _topic(self, message: SetTopic) -> Pending:
        self._hub.set_topic(self._host, message.room, message.topic, message.id)
        return None

    def _who(self, message: Who) -> Pending:
        room = self._hub.existing_room(message.room)
        self._host.send_message(Members(room=room.name, members=room.nicks, re=message.id))
        return None

    def _rooms(self, message: ListRooms) -> Pending:
        self._host.send_message(RoomList(rooms=self._hub.summaries(), re=message.id))
        return None

    def _history(self, message: GetHistory) -> Pending:
        result = self._hub.history(message.room, message.before, message.after, message.limit)
        if isinstance(result, Result):
            self._host.send_message(_history_page(result, message.id))
            return None
        return self._await_history(result, message.id)

    async def _await_history(self, pending: Awaitable[Result], request_id: str | None) -> None:
        result = await pending
        if not self._host.closed:
            self._host.send_message(_history_page(result, request_id))

    def _ping(self, message: Ping) -> Pending:
        self._host.send_message(ServerPong(token=message.token, re=message.id))
        return None

    def _quit(self, message: Quit) -> Pending:
        self._host.close_with_bye("quit", message.reason or "quit")
        return None


def _ignore(_message: Pong) -> Pending:
    return None


def _history_page(result: Result, request_id: str | None) -> HistoryPage:
    return HistoryPage(
        room=result.room.name,
        messages=[m.to_wire() for m in result.messages],
        more=result.more,
        re=request_id,
    )
