"""A plain-text session, for a person typing into netcat.

The first line is the password where one is required, then the nick (both
asked for again until right); a nick that is an account asks for its account
password next (the line `/back` goes back to choosing a nick); then the person is
in #lobby. A line starting
with `/` is a command, any other line is said in the current room. Output is
readable lines (see text_render), never JSON.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import TypeAdapter, ValidationError

from protocol import ChatMessage, ErrorCode
from protocol.features import Feature
from protocol.fields import (
    AccountPassword,
    AwayText,
    ChatText,
    Emoji,
    NickName,
    Reason,
    RoomName,
    TopicText,
)
from protocol.search import Query

from .errors import ChatError
from .hub import ChatHub, Result
from .json_session import Pending, SessionHost
from .text_render import clock, render_message

__all__ = ["HELP", "TextSession"]

# The same rules as the JSON path, from the one place they live (protocol.fields).
_NICK: TypeAdapter[str] = TypeAdapter(NickName)
_ROOM: TypeAdapter[str] = TypeAdapter(RoomName)
_TEXT: TypeAdapter[str] = TypeAdapter(ChatText)
_TOPIC: TypeAdapter[str] = TypeAdapter(TopicText)
_REASON: TypeAdapter[str] = TypeAdapter(Reason)
_ACCOUNT_PASSWORD: TypeAdapter[str] = TypeAdapter(AccountPassword)
_AWAY: TypeAdapter[str] = TypeAdapter(AwayText)
_EMOJI: TypeAdapter[str] = TypeAdapter(Emoji)
# Edits, deletes, reactions, kicks, bans and op changes show as readable lines
# (typing never does).
TEXT_FEATURES = frozenset({Feature.EDIT, Feature.REACT, Feature.MODERATION})
_QUERY: TypeAdapter[str] = TypeAdapter(Query)

LOBBY = "lobby"
SEARCH_LINES = 20  # hits /search prints
JOIN_LINES = 15  # history lines shown on join; a terminal is not a log viewer

HELP = """\
* Commands:
*   /join ROOM        join (or switch to) a room
*   /part             leave the current room
*   /msg NICK TEXT    private message
*   /me TEXT          action, e.g. /me waves
*   /nick NAME        change your nick
*   /topic [TEXT]     show or set the room's topic
*   /who              who is in the current room
*   /rooms            list rooms
*   /register PASSWORD  make your nick an account (8-128 characters)
*   /away [TEXT]      be away (no text: back)
*   /reply SEQ TEXT   answer message [SEQ] of the current room
*   /edit SEQ TEXT    replace the text of your message [SEQ]
*   /delete SEQ       delete message [SEQ]
*   /react SEQ EMOJI  react to message [SEQ] (/unreact SEQ EMOJI takes it back)
*   /search WORDS     find messages ("a phrase", prefix*), newest first
*   /op NICK, /deop NICK      make (or unmake) an op of the current room
*   /kick NICK [REASON], /ban NICK [REASON], /unban NICK   (ops only)
*   /help             this help
*   /quit [REASON]    leave
* Any other line is said in the current room.
"""


class _Stage(enum.Enum):
    PASSWORD = "password"
    NICK = "nick"
    ACCOUNT_PASSWORD = "account_password"
    CHAT = "chat"


class TextSession:
    """Handles the lines of one plain-text connection."""

    def __init__(self, hub: ChatHub, host: SessionHost) -> None:
        self._hub = hub
        self._host = host
        self._stage = _Stage.PASSWORD if hub.config.password is not None else _Stage.NICK
        self._current: str | None = None
        self._auth_failures = 0
        self._account = ""  # the account nick whose password is asked for
        self._commands: dict[str, Callable[[str], Pending]] = {
            "join": self._join,
            "j": self._join,
            "part": self._part,
            "leave": self._part,
            "msg": self._msg,
            "me": self._me,
            "nick": self._nick,
            "topic": self._topic,
            "who": self._who,
            "names": self._who,
            "rooms": self._rooms,
            "list": self._rooms,
            "register": self._register,
            "away": self._away,
            "reply": self._reply,
            "edit": self._edit,
            "delete": self._delete,
            "react": self._react,
            "unreact": self._unreact,
            "search": self._search,
            "op": self._op,
            "deop": self._deop,
            "kick": self._kick,
            "ban": self._ban,
            "unban": self._unban,
            "help": self._help,
            "quit": self._quit,
        }

    def handle_line(self, raw: bytes) -> Pending:
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            self._say_error("that line is not valid UTF-8", ErrorCode.BAD_ENCODING)
            return None
        try:
            if self._stage is _Stage.PASSWORD:
                return self._password(line)
            if self._stage is _Stage.NICK:
                return self._choose_nick(line)
            if self._stage is _Stage.ACCOUNT_PASSWORD:
                return self._account_password(line)
            if line.startswith("/") and not line.startswith("//"):
                name, _, rest = line[1:].partition(" ")
                command = self._commands.get(name.lower())
                if command is None:
                    raise ChatError(
                        ErrorCode.INVALID_MESSAGE, f"unknown command /{name}; try /help"
                    )
                return command(rest.strip())
            return self._say(line.removeprefix("/"), action=False)
        except ChatError as exc:
            self._say_error(exc.message, exc.code)
            return None

    # -- output -----------------------------------------------------------------

    def _write(self, text: str) -> None:
        self._host.send_text(text if text.endswith("\n") else text + "\n")

    def _say_error(self, message: str, code: ErrorCode) -> None:
        self._write(f"! {message} ({code})")

    # -- registration -------------------------------------------------------------

    def _password(self, line: str) -> Pending:
        wait = self._hub.password_wait(self._host)
        if wait > 0:
            return self._password_later(wait, line)
        try:
            self._hub.check_password(self._host, line)
        except ChatError:
            self._auth_failures += 1
            if self._auth_failures >= self._hub.config.auth_failures:
                self._write("! wrong password")
                self._host.close_with_bye("auth_failed")
                return None
            self._write("! wrong password; type the password again")
            return None
        self._stage = _Stage.NICK
        self._write("* Password accepted. Type your nick.")
        return None

    async def _password_later(self, wait: float, line: str) -> None:
        await asyncio.sleep(wait)
        if not self._host.closed:
            pending = self._password(line)  # another wait if guesses came meanwhile
            if pending is not None:
                await pending

    def _choose_nick(self, line: str) -> Pending:
        try:
            _valid(_NICK, line)
        except ChatError as exc:
            self._write(f"! {exc.message}; type another nick")
            return None
        if self._hub.accounts.is_account(line):
            self._account, self._stage = line, _Stage.ACCOUNT_PASSWORD
            self._write(f"* {line} is an account. Type its password (or /back for another nick).")
            return None
        try:
            self._hub.register(self._host, line)
        except ChatError:
            self._write(f"! the nick {line} is taken; type another nick")
            return None
        return self._welcome()

    def _welcome(self) -> Pending:
        self._host.registered = True
        self._host.features = TEXT_FEATURES
        self._stage = _Stage.CHAT
        rooms = ", ".join(f"#{name}" for name in self._hub.room_names()) or "none yet"
        self._write(f"* Welcome, {self._host.nick}! Rooms: {rooms}. Type /help for commands.")
        return self._join(LOBBY)

    def _account_password(self, line: str) -> Pending:
        if line == "/back":
            self._stage = _Stage.NICK
            self._write("* Type your nick.")
            return None
        return self._login(line)

    async def _login(self, password: str) -> None:
        """Log in to the account; the password line is never echoed or logged."""
        try:
            await self._hub.login(self._host, self._account, password)
        except ChatError as exc:
            if exc.code is ErrorCode.AUTH_FAILED:
                self._write("! wrong password; type it again (or /back for another nick)")
            else:
                self._stage = _Stage.NICK
                self._write(f"! {exc.message}; type a nick")
            return
        if self._host.closed:
            self._hub.unregister(self._host, "disconnected")
            return
        joined = self._welcome()
        if joined is not None:
            await joined
        await self._hub.deliver_pending(self._host)

    # -- commands -----------------------------------------------------------------

    def _room_name(self, arg: str) -> str:
        return _valid(_ROOM, arg.split(" ", 1)[0])

    def _text(self, text: str) -> str:
        return _valid(_TEXT, text, context={"max_text": self._hub.config.max_text})

    def _current_room(self) -> str:
        if self._current is None:
            raise ChatError(ErrorCode.NOT_IN_ROOM, "you are in no room; /join one")
        return self._current

    def _join(self, arg: str) -> Pending:
        if not arg:
            raise ChatError(ErrorCode.INVALID_ROOM, "usage: /join ROOM")
        name = self._room_name(arg)
        if name in self._host.rooms:
            self._current = name
            self._write(f"* Now talking in #{name}")
            return None
        result = self._hub.join(self._host, name, None)
        if isinstance(result, Result):
            self._finish_join(result)
            return None
        return self._await_join(result)

    async def _await_join(self, pending: Awaitable[Result]) -> None:
        try:
            result = await pending
        except ChatError as exc:
            self._say_error(exc.message, exc.code)
            return
        if not self._host.closed:
            self._finish_join(result)

    def _finish_join(self, result: Result) -> None:
        room = result.room
        self._current = room.name
        self._write(f"* Now talking in #{room.name}")
        if room.topic:
            self._write(f"* Topic: {room.topic}")
        members = [*room.nicks, self._host.nick] if self._host not in room else room.nicks
        self._write(f"* Members: {', '.join(members)}")
        for message in self._hub.with_files(result.messages[-JOIN_LINES:]):
            self._write(render_message(message.to_wire()))
        self._hub.enter(self._host, room)

    def _part(self, arg: str) -> Pending:
        name = self._room_name(arg) if arg else self._current_room()
        self._hub.part(self._host, name, None)
        if self._current == name:
            self._current = sorted(self._host.rooms)[0] if self._host.rooms else None
        where = f"#{self._current}" if self._current else "no room (/join one)"
        self._write(f"* You left #{name}; now talking in {where}")
        return None

    def _say(self, text: str, *, action: bool) -> Pending:
        room = self._current_room()
        self._hub.say(self._host, room, self._text(text), action, None)
        return None

    def _seq_and(self, arg: str, usage: str) -> tuple[int, str]:
        """`SEQ REST` of a change command: the seq (`12` or `#12`) and the rest."""
        first, _, rest = arg.partition(" ")
        first = first.removeprefix("#")
        if not first.isdigit() or not first.isascii() or not 0 < int(first) < 2**63:
            raise ChatError(ErrorCode.INVALID_MESSAGE, f"usage: {usage}")
        return int(first), rest.strip()

    def _reply(self, arg: str) -> Pending:
        seq, text = self._seq_and(arg, "/reply SEQ TEXT")
        room = self._current_room()
        return self._hub.changes.say(self._host, room, self._text(text), False, seq, None)

    def _edit(self, arg: str) -> Pending:
        seq, text = self._seq_and(arg, "/edit SEQ TEXT")
        room = self._current_room()
        return self._hub.changes.edit(self._host, room, seq, self._text(text), None)

    def _delete(self, arg: str) -> Pending:
        seq, rest = self._seq_and(arg, "/delete SEQ")
        if rest:
            raise ChatError(ErrorCode.INVALID_MESSAGE, "usage: /delete SEQ")
        return self._hub.changes.delete(self._host, self._current_room(), seq, None)

    def _react(self, arg: str, *, remove: bool = False) -> Pending:
        usage = "/unreact SEQ EMOJI" if remove else "/react SEQ EMOJI"
        seq, emoji = self._seq_and(arg, usage)
        emoji = _valid(_EMOJI, emoji, "emoji")
        return self._hub.changes.react(self._host, self._current_room(), seq, emoji, remove, None)

    def _unreact(self, arg: str) -> Pending:
        return self._react(arg, remove=True)

    def _me(self, arg: str) -> Pending:
        return self._say(arg, action=True)

    def _msg(self, arg: str) -> Pending:
        to, _, text = arg.partition(" ")
        if not to or not text.strip():
            raise ChatError(ErrorCode.INVALID_MESSAGE, "usage: /msg NICK TEXT")
        self._hub.dm(self._host, _valid(_NICK, to), self._text(text), None)
        return None

    def _nick(self, arg: str) -> Pending:
        self._hub.change_nick(self._host, _valid(_NICK, arg))
        return None

    def _topic(self, arg: str) -> Pending:
        room = self._hub.joined_room(self._host, self._current_room())
        if not arg:
            self._write(f"* Topic of #{room.name}: {room.topic or '(none)'}")
            return None
        self._hub.set_topic(self._host, room.name, _valid(_TOPIC, arg, "topic"), None)
        return None

    def _who(self, arg: str) -> Pending:
        room = self._hub.existing_room(self._room_name(arg) if arg else self._current_room())
        self._write(f"* Members of #{room.name}: {', '.join(room.nicks) or '(nobody)'}")
        return None

    def _rooms(self, _arg: str) -> Pending:
        summaries = self._hub.summaries()
        self._write(f"* {len(summaries)} room(s):")
        for summary in summaries:
            topic = f" - {summary.topic}" if summary.topic else ""
            self._write(f"*   #{summary.room} ({summary.members}){topic}")
        return None

    def _register(self, arg: str) -> Pending:
        password = _valid(_ACCOUNT_PASSWORD, arg, "password")
        return self._await_register(password)

    async def _await_register(self, password: str) -> None:
        try:
            await self._hub.register_account(self._host, password)
        except ChatError as exc:
            self._say_error(exc.message, exc.code)
            return
        self._write(f"* {self._host.nick} is now an account: log in with its password next time")

    def _away(self, arg: str) -> Pending:
        text = _valid(_AWAY, arg, "away text") or None
        self._hub.set_away(self._host, text)
        self._write(f"* you are away: {text}" if text else "* you are back")
        return None

    def _search(self, arg: str) -> Pending:
        query = _valid(_QUERY, arg.strip(), "search") if arg.strip() else ""
        if not query:
            raise ChatError(ErrorCode.INVALID_MESSAGE, "usage: /search WORDS")
        return self._await_search(query)

    async def _await_search(self, query: str) -> None:
        try:
            page = await self._hub.search(self._host, query, None, None, SEARCH_LINES, None)
        except ChatError as exc:
            self._say_error(exc.message, exc.code)
            return
        if not page.messages:
            self._write(f"* no messages match {query}")
            return
        more = " (the newest shown)" if page.more else ""
        self._write(f"* {len(page.messages)} message(s) match {query}{more}:")
        for message in page.messages:
            self._write("*   " + _hit_line(message.to_wire()))

    def _target(self, arg: str, usage: str) -> tuple[str, str | None]:
        nick, _, rest = arg.strip().partition(" ")
        if not nick:
            raise ChatError(ErrorCode.INVALID_MESSAGE, f"usage: {usage}")
        reason = _valid(_REASON, rest.strip(), "reason") if rest.strip() else None
        return _valid(_NICK, nick), reason

    def _op(self, arg: str) -> Pending:
        nick, _ = self._target(arg, "/op NICK")
        self._hub.moderator.set_op(self._host, self._current_room(), nick, False, None)
        return None

    def _deop(self, arg: str) -> Pending:
        nick, _ = self._target(arg, "/deop NICK")
        self._hub.moderator.set_op(self._host, self._current_room(), nick, True, None)
        return None

    def _kick(self, arg: str) -> Pending:
        nick, reason = self._target(arg, "/kick NICK [REASON]")
        self._hub.moderator.kick(self._host, self._current_room(), nick, reason, None)
        return None

    def _ban(self, arg: str) -> Pending:
        nick, reason = self._target(arg, "/ban NICK [REASON]")
        self._hub.moderator.ban(self._host, self._current_room(), nick, reason, None)
        return None

    def _unban(self, arg: str) -> Pending:
        nick, _ = self._target(arg, "/unban NICK")
        self._hub.moderator.unban(self._host, self._current_room(), nick, None, None)
        return None

    def _help(self, _arg: str) -> Pending:
        self._write(HELP)
        return None

    def _quit(self, arg: str) -> Pending:
        reason = _valid(_REASON, arg, "reason") if arg else "quit"
        self._host.close_with_bye("quit", reason)
        return None


def _hit_line(message: ChatMessage) -> str:
    """A search hit on one line: where, when, who, and the text with its newlines shown as ⏎."""
    text = message.text.replace("\n", " ⏎ ")
    return f"#{message.room} [{message.seq}] {clock(message.ts)} <{message.sender}> {text}"


def _valid(adapter: TypeAdapter[str], value: str, what: str = "", context: Any = None) -> str:
    """`value` checked by its protocol.fields rule; a refusal carries that rule's code.

    `what` names the field where the rule's message does not (a topic, a reason).
    """
    try:
        return adapter.validate_python(value, context=context)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        kind = error["type"]
        code = ErrorCode(kind) if kind in ErrorCode.__members__.values() else None
        message = f"{what}: {error['msg']}" if what else error["msg"]
        raise ChatError(code or ErrorCode.INVALID_MESSAGE, message) from None
