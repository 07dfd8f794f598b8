"""A plain-text session, for a person typing into netcat.

The first line is the password where one is required, then the nick (both
asked for again until right); then the person is in #lobby. A line starting
with `/` is a command, any other line is said in the current room. Output is
readable lines (see text_render), never JSON.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable

from protocol import ErrorCode
from protocol.limits import CONTROL_CHARS, LINE_CONTROL_CHARS, MAX_TOPIC, NICK_RE, ROOM_RE

from .errors import ChatError
from .hub import ChatHub, Result
from .json_session import Pending, SessionHost
from .text_render import render_message

__all__ = ["HELP", "TextSession"]

LOBBY = "lobby"
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
*   /help             this help
*   /quit [REASON]    leave
* Any other line is said in the current room.
"""


class _Stage(enum.Enum):
    PASSWORD = "password"
    NICK = "nick"
    CHAT = "chat"


class TextSession:
    """Handles the lines of one plain-text connection."""

    def __init__(self, hub: ChatHub, host: SessionHost) -> None:
        self._hub = hub
        self._host = host
        self._stage = _Stage.PASSWORD if hub.config.password is not None else _Stage.NICK
        self._current: str | None = None
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
            "help": self._help,
            "quit": self._quit,
        }

    def start(self, first_line: bytes) -> Pending:
        """Called with the line that put the connection in text mode."""
        return self.handle_line(first_line)

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
        try:
            self._hub.check_password(line)
        except ChatError:
            self._write("! wrong password; type the password again")
            return None
        self._stage = _Stage.NICK
        self._write("* Password accepted. Type your nick.")
        return None

    def _choose_nick(self, line: str) -> Pending:
        if NICK_RE.fullmatch(line) is None:
            self._write("! a nick is 1-32 characters: letters, digits, _ or -; type another nick")
            return None
        try:
            self._hub.register(self._host, line)
        except ChatError:
            self._write(f"! the nick {line} is taken; type another nick")
            return None
        self._host.registered = True
        self._stage = _Stage.CHAT
        rooms = ", ".join(f"#{name}" for name in self._hub.room_names()) or "none yet"
        self._write(f"* Welcome, {line}! Rooms: {rooms}. Type /help for commands.")
        return self._join(LOBBY)

    # -- commands -----------------------------------------------------------------

    def _room_name(self, arg: str) -> str:
        name = arg.split(" ", 1)[0].removeprefix("#")
        if ROOM_RE.fullmatch(name) is None:
            raise ChatError(
                ErrorCode.INVALID_ROOM,
                "a room name is 1-64 characters: lowercase letters, digits, _ or -",
            )
        return name

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
        result = await pending
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
        _check_text(text, self._hub.config.max_text)
        self._hub.say(self._host, room, text, action, None)
        return None

    def _me(self, arg: str) -> Pending:
        return self._say(arg, action=True)

    def _msg(self, arg: str) -> Pending:
        to, _, text = arg.partition(" ")
        if NICK_RE.fullmatch(to) is None or not text.strip():
            raise ChatError(ErrorCode.INVALID_MESSAGE, "usage: /msg NICK TEXT")
        _check_text(text, self._hub.config.max_text)
        self._hub.dm(self._host, to, text)
        return None

    def _nick(self, arg: str) -> Pending:
        if NICK_RE.fullmatch(arg) is None:
            raise ChatError(
                ErrorCode.INVALID_NICK, "a nick is 1-32 characters: letters, digits, _ or -"
            )
        self._hub.change_nick(self._host, arg)
        return None

    def _topic(self, arg: str) -> Pending:
        room = self._hub.joined_room(self._host, self._current_room())
        if not arg:
            self._write(f"* Topic of #{room.name}: {room.topic or '(none)'}")
            return None
        if len(arg) > MAX_TOPIC or LINE_CONTROL_CHARS.search(arg):
            raise ChatError(ErrorCode.INVALID_TEXT, f"a topic is at most {MAX_TOPIC} characters")
        self._hub.set_topic(self._host, room.name, arg, None)
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

    def _help(self, _arg: str) -> Pending:
        self._write(HELP)
        return None

    def _quit(self, arg: str) -> Pending:
        self._host.close_with_bye("quit", arg or "quit")
        return None


def _check_text(text: str, limit: int) -> None:
    if not text:
        raise ChatError(ErrorCode.INVALID_TEXT, "nothing to say")
    if len(text) > limit:
        raise ChatError(ErrorCode.INVALID_TEXT, f"text is longer than {limit} characters")
    if CONTROL_CHARS.search(text):
        raise ChatError(ErrorCode.INVALID_TEXT, "text holds a control character")
