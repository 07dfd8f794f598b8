"""Slash commands: one table feeds `/help`, Tab completion and the command palette.

Parsing and the handlers' argument rules live here, with no Textual and no I/O:
a handler calls one method of `Actions`, which the chat screen implements.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from pydantic import TypeAdapter, ValidationError

from protocol.fields import NickName, normalize_room

__all__ = [
    "COMMANDS",
    "Actions",
    "Command",
    "CommandError",
    "Spec",
    "help_lines",
    "parse",
    "run",
]


class CommandError(ValueError):
    """The line is not a usable command; the message says what to type instead."""


class Actions(Protocol):
    """What commands can ask the chat screen to do."""

    def join(self, room: str) -> None: ...
    def part(self, reason: str | None) -> None: ...
    def open_dm(self, nick: str, text: str | None) -> None: ...
    def say(self, text: str, *, action: bool = False) -> None: ...
    def change_nick(self, nick: str) -> None: ...
    def topic(self, text: str | None) -> None: ...
    def who(self, room: str | None) -> None: ...
    def list_rooms(self, prefix: str) -> None: ...
    def clear(self) -> None: ...
    def show_help(self) -> None: ...
    def reconnect(self) -> None: ...
    def quit(self, reason: str | None) -> None: ...
    def upload(self, path: str) -> None: ...
    def download(self, name: str | None) -> None: ...
    def register(self) -> None: ...
    def forget_typed(self) -> None: ...
    def set_away(self, text: str | None) -> None: ...
    def reply(self, seq: int, text: str) -> None: ...
    def edit(self, seq: int, text: str) -> None: ...
    def delete(self, seq: int) -> None: ...
    def react(self, seq: int, emoji: str) -> None: ...
    def set_typing(self, on: bool) -> None: ...
    def search(self, line: str) -> None: ...
    def set_op(self, nick: str, op: bool) -> None: ...
    def kick(self, nick: str, reason: str | None) -> None: ...
    def ban(self, nick: str, reason: str | None) -> None: ...
    def unban(self, nick: str) -> None: ...
    def list_bans(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Command:
    """A typed command: its name (no slash), words and everything after the name."""

    name: str
    args: tuple[str, ...]
    rest: str


@dataclass(frozen=True, slots=True)
class Spec:
    """One row of the table: `/name USAGE`, what it does, and how."""

    name: str
    usage: str
    help: str
    handler: Callable[[Actions, Command], None]
    aliases: tuple[str, ...] = ()

    @property
    def required(self) -> int:
        return sum(1 for word in self.usage.split() if not word.startswith("["))

    @property
    def takes_room(self) -> bool:
        return "ROOM" in self.usage

    @property
    def takes_nick(self) -> bool:
        return "NICK" in self.usage

    @property
    def takes_path(self) -> bool:
        return "PATH" in self.usage


_NICK: TypeAdapter[str] = TypeAdapter(NickName)


def _nick(text: str) -> str:
    try:
        return _NICK.validate_python(text)
    except ValidationError as exc:
        raise CommandError(exc.errors(include_url=False)[0]["msg"]) from None


def _room(text: str) -> str:
    try:
        return normalize_room(text.lower())
    except ValueError as exc:
        message = getattr(exc, "message", None)
        raise CommandError(message() if callable(message) else str(exc)) from None


def _one_word(command: Command, what: str) -> str:
    if len(command.args) > 1:
        raise CommandError(f"{what} has no spaces: /{command.name} {command.args[0]}?")
    return command.args[0]


def _join(actions: Actions, command: Command) -> None:
    actions.join(_room(_one_word(command, "a room name")))


def _msg(actions: Actions, command: Command) -> None:
    nick, _, text = command.rest.partition(" ")
    actions.open_dm(_nick(nick), text.strip() or None)


def _nick_cmd(actions: Actions, command: Command) -> None:
    actions.change_nick(_nick(_one_word(command, "a nick")))


def _register(actions: Actions, command: Command) -> None:
    if command.rest:
        actions.forget_typed()
        raise CommandError(
            "type /register alone: the password is asked in a masked field, never in the "
            "chat line (what you typed was not sent and is not kept)"
        )
    actions.register()


def _seq(command: Command) -> tuple[int, str]:
    """The SEQ a message command starts with (`#12` or `12`), and the rest of the line."""
    word, _, rest = command.rest.partition(" ")
    digits = word.removeprefix("#")
    if not digits.isdigit() or int(digits) < 1:
        raise CommandError(
            f"/{command.name} needs a message number first (the # a selected message shows), "
            f"e.g. /{command.name} 12"
        )
    return int(digits), rest.strip()


def _with_text(command: Command) -> tuple[int, str]:
    seq, text = _seq(command)
    if not text:
        raise CommandError(f"usage: /{command.name} SEQ TEXT")
    return seq, text


def _reply(actions: Actions, command: Command) -> None:
    actions.reply(*_with_text(command))


def _edit(actions: Actions, command: Command) -> None:
    actions.edit(*_with_text(command))


def _delete(actions: Actions, command: Command) -> None:
    seq, rest = _seq(command)
    if rest:
        raise CommandError("usage: /delete SEQ (it asks before deleting)")
    actions.delete(seq)


def _react(actions: Actions, command: Command) -> None:
    seq, emoji = _seq(command)
    if not emoji or " " in emoji:
        raise CommandError("usage: /react SEQ EMOJI (the same again takes it back)")
    actions.react(seq, emoji)


def _typing(actions: Actions, command: Command) -> None:
    if command.rest.lower() not in ("on", "off"):
        raise CommandError("usage: /typing on|off")
    actions.set_typing(command.rest.lower() == "on")


def _nick_and_reason(command: Command) -> tuple[str, str | None]:
    nick, _, reason = command.rest.partition(" ")
    return _nick(nick), reason.strip() or None


def _kick(actions: Actions, command: Command) -> None:
    actions.kick(*_nick_and_reason(command))


def _ban(actions: Actions, command: Command) -> None:
    actions.ban(*_nick_and_reason(command))


def _who(actions: Actions, command: Command) -> None:
    actions.who(_room(_one_word(command, "a room name")) if command.args else None)


COMMANDS: tuple[Spec, ...] = (
    Spec("join", "ROOM", "join a room (created if new) and switch to it", _join),
    Spec(
        "part",
        "[REASON]",
        "leave the room in view, or close the DM in view",
        lambda a, c: a.part(c.rest or None),
        aliases=("close",),
    ),
    Spec(
        "msg",
        "NICK [TEXT]",
        "open a DM with NICK, sending TEXT if given",
        _msg,
        aliases=("query",),
    ),
    Spec("me", "TEXT", "say an action: * you TEXT", lambda a, c: a.say(c.rest, action=True)),
    Spec("nick", "NAME", "change your nick", _nick_cmd),
    Spec(
        "topic",
        "[TEXT]",
        "show the topic of the room in view, or set it",
        lambda a, c: a.topic(c.rest or None),
    ),
    Spec("who", "[ROOM]", "list who is in a room", _who, aliases=("names",)),
    Spec(
        "rooms",
        "[PREFIX]",
        "list the rooms on the server (those starting with PREFIX)",
        lambda a, c: a.list_rooms(c.rest.removeprefix("#").lower()),
    ),
    Spec(
        "clear", "", "clear the log in view (history stays on the server)", lambda a, c: a.clear()
    ),
    Spec(
        "reconnect",
        "",
        "open the connect screen (another server, nick or password)",
        lambda a, c: a.reconnect(),
        aliases=("connect",),
    ),
    Spec(
        "upload",
        "PATH",
        "share a file in the room or DM in view (Tab completes the path)",
        lambda a, c: a.upload(c.rest),
    ),
    Spec(
        "download",
        "[NAME]",
        "save the newest file shared in view (or the newest called NAME) to your downloads",
        lambda a, c: a.download(c.rest or None),
        aliases=("save",),
    ),
    Spec(
        "register",
        "",
        "make your nick an account (asks for a password twice, masked)",
        _register,
    ),
    Spec(
        "away",
        "[TEXT]",
        "be away, saying TEXT to those who look; /away alone: back",
        lambda a, c: a.set_away(c.rest or None),
    ),
    Spec("reply", "SEQ TEXT", "answer message SEQ (Alt+R on a selected message)", _reply),
    Spec("edit", "SEQ TEXT", "change the text of your message SEQ (Up in an empty line)", _edit),
    Spec("delete", "SEQ", "delete your message SEQ, after asking (Alt+D)", _delete),
    Spec("react", "SEQ EMOJI", "react to message SEQ; again: take it back (Alt+S)", _react),
    Spec("typing", "on|off", "tell others while you type, or not", _typing),
    Spec(
        "search",
        "WORDS",
        'find messages (add in:#room, from:nick; "a phrase", word*); Ctrl+F too',
        lambda a, c: a.search(c.rest),
    ),
    Spec(
        "op",
        "NICK",
        "make NICK an op of the room in view (ops only)",
        lambda a, c: a.set_op(_nick(_one_word(c, "a nick")), True),
    ),
    Spec(
        "deop",
        "NICK",
        "NICK is no longer an op of the room in view",
        lambda a, c: a.set_op(_nick(_one_word(c, "a nick")), False),
    ),
    Spec("kick", "NICK [REASON]", "put NICK out of the room in view (ops only)", _kick),
    Spec("ban", "NICK [REASON]", "put NICK out and keep them out (ops only)", _ban),
    Spec(
        "unban",
        "NICK",
        "lift the ban on NICK",
        lambda a, c: a.unban(_nick(_one_word(c, "a nick"))),
    ),
    Spec("bans", "", "list the bans of the room in view (ops only)", lambda a, c: a.list_bans()),
    Spec("help", "", "show this help", lambda a, c: a.show_help()),
    Spec("quit", "[REASON]", "leave the chat", lambda a, c: a.quit(c.rest or None)),
)

_BY_NAME: dict[str, Spec] = {name: spec for spec in COMMANDS for name in (spec.name, *spec.aliases)}


def command_names() -> list[str]:
    """Every `/name`, aliases too, for completion."""
    return sorted("/" + name for name in _BY_NAME)


def lookup(name: str) -> Spec | None:
    return _BY_NAME.get(name.lower().removeprefix("/"))


def parse(line: str) -> tuple[Spec, Command] | None:
    """A `/command ...` line as its Spec and Command; None for plain text (`//x` says `/x`)."""
    if not line.startswith("/") or line.startswith("//"):
        return None
    head, _, rest = line.partition(" ")
    spec = lookup(head)
    if spec is None:
        raise CommandError(f"unknown command {head}: type /help for the list")
    rest = rest.strip()
    command = Command(spec.name, tuple(rest.split()), rest)
    if len(command.args) < spec.required:
        raise CommandError(f"usage: /{spec.name} {spec.usage}".rstrip())
    return spec, command


def run(actions: Actions, line: str) -> bool:
    """Run `line` if it is a command (raises CommandError); False for plain text."""
    parsed = parse(line)
    if parsed is None:
        return False
    spec, command = parsed
    spec.handler(actions, command)
    return True


KEYS: tuple[tuple[str, str], ...] = (
    ("Enter", "send (a paste of several lines is sent as one message)"),
    ("Ctrl+J", "a new line in the message"),
    ("Up / Down", "recall earlier input; Up in an empty line edits your last message"),
    ("Alt+Up / Alt+Down", "select a message (or click it); Esc: none"),
    ("Alt+R / E / D / S", "on the selected message: reply, edit, delete, react"),
    ("Alt+J", "jump to the original of the selected reply (loaded if needed)"),
    ("Ctrl+F", "search: Enter opens a hit in its room, Esc closes"),
    ("Tab", "complete a command, room or nick (again: the next match)"),
    ("Alt+1..9, Alt+A", "go to conversation N, or to the next with activity"),
    ("F2 / F3", "previous / next conversation (also Alt+Left / Alt+Right)"),
    ("PageUp / PageDown, End", "scroll (the top loads older history); back to the newest"),
    ("Ctrl+L, F1, Ctrl+P, Ctrl+Q", "clear the log, help, command palette, quit"),
)


def help_lines(specs: Iterable[Spec] = COMMANDS) -> list[str]:
    lines = []
    for spec in specs:
        also = f" (also /{', /'.join(spec.aliases)})" if spec.aliases else ""
        lines.append(f"/{spec.name} {spec.usage}".ljust(22) + spec.help + also)
    lines.extend(f"{keys}".ljust(22) + what for keys, what in KEYS)
    return lines
