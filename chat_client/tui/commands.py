"""Slash commands typed in the input line: parsing and help, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["COMMANDS", "Command", "CommandError", "parse"]

COMMANDS: dict[str, tuple[str, str]] = {
    "/join": ("ROOM", "join a room (created if new) and switch to it"),
    "/part": ("[REASON]", "leave the room in view"),
    "/msg": ("NICK TEXT", "send a direct message; it opens as its own conversation"),
    "/me": ("TEXT", "say an action: * you TEXT"),
    "/nick": ("NAME", "change your nick"),
    "/topic": ("TEXT", "set the topic of the room in view"),
    "/who": ("[ROOM]", "list who is in a room"),
    "/rooms": ("", "list every room on the server"),
    "/clear": ("", "clear the log in view (history stays on the server)"),
    "/help": ("", "show this help"),
    "/quit": ("[REASON]", "leave the chat"),
}


class CommandError(ValueError):
    """The line is not a usable command; the message says what to type instead."""


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # without the slash
    args: tuple[str, ...]
    rest: str  # everything after the command name, as typed


def parse(line: str) -> Command | None:
    """A `/command ...` line as a Command; None for plain text (`//x` says `/x`)."""
    if not line.startswith("/") or line.startswith("//"):
        return None
    head, _, rest = line.partition(" ")
    name = head.lower()
    if name not in COMMANDS:
        raise CommandError(f"unknown command {head}: type /help for the list")
    rest = rest.strip()
    args = tuple(rest.split())
    needed = COMMANDS[name][0].split()
    required = [a for a in needed if not a.startswith("[")]
    if len(args) < len(required):
        usage = f"{name} {COMMANDS[name][0]}".strip()
        raise CommandError(f"usage: {usage}")
    return Command(name[1:], args, rest)


def help_lines() -> list[str]:
    lines = [f"{name} {usage}".ljust(20) + text for name, (usage, text) in COMMANDS.items()]
    lines.append("Keys: F2/F3 previous/next conversation, Tab completes, Up/Down recalls input,")
    lines.append("PageUp/PageDown scroll (the top loads older history), Ctrl+P command palette.")
    return lines
