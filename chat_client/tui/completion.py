"""Tab completion: which words complete the one before the cursor, and how.

Pure: `Completer` gets the candidates from callables and keeps the cycle
state (Tab again shows the next match). Nicks of the conversation in view
come first; a nick that starts the line gets `: `, any other word a space.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .commands import command_names, lookup

__all__ = ["Completer", "Completion"]


@dataclass(frozen=True, slots=True)
class Completion:
    text: str  # the whole new line
    cursor: int


@dataclass(slots=True)
class _Cycle:
    start: int
    matches: list[str]
    shown: int
    end: int  # where the inserted text ends
    inserted: str = ""
    path: bool = False  # completing a file path (after /upload)


class Completer:
    """Completes commands, rooms (after /join and other ROOM commands, or `#`) and nicks."""

    def __init__(
        self,
        nicks: Callable[[], Sequence[str]],
        rooms: Callable[[], Sequence[str]],
        paths: Callable[[str], Sequence[str]] = lambda _typed: (),
    ) -> None:
        self._nicks = nicks  # the conversation in view first, then everyone else known
        self._rooms = rooms
        self._paths = paths  # file paths completing what was typed (after /upload)
        self._cycle: _Cycle | None = None

    def reset(self) -> None:
        self._cycle = None

    def complete(self, line: str, cursor: int) -> Completion | None:
        cycle = self._cycle
        if (
            cycle is not None
            and cursor == cycle.end
            and line[cycle.start : cursor] == cycle.inserted
        ):
            cycle.shown = (cycle.shown + 1) % len(cycle.matches)
            return self._insert(line, cycle)
        before = line[:cursor]
        command = before.split(" ", 1)[0]
        if " " in before and self._is_path(command + " "):
            start = len(command) + 1  # a path is all the rest, spaces included
        else:
            start = before.rfind(" ") + 1
        word = before[start:]
        matches = self._candidates(before[:start], word)
        if not matches:
            self._cycle = None
            return None
        self._cycle = _Cycle(start, matches, 0, cursor, path=self._is_path(before[:start]))
        return self._insert(line, self._cycle)

    def _insert(self, line: str, cycle: _Cycle) -> Completion:
        choice = cycle.matches[cycle.shown]
        is_nick = not choice.startswith(("/", "#"))
        suffix = ": " if is_nick and cycle.start == 0 else " "
        if cycle.path:
            suffix = "" if choice.endswith("/") else " "  # a folder: go on typing inside it
        head = line[: cycle.start] + choice + suffix
        new_line = head + line[cycle.end :]
        cycle.end = len(head)
        cycle.inserted = choice + suffix
        return Completion(new_line, len(head))

    @staticmethod
    def _is_path(before: str) -> bool:
        first = before.split(" ", 1)[0]
        spec = lookup(first) if first.startswith("/") and before.count(" ") == 1 else None
        return spec is not None and spec.takes_path

    def _candidates(self, before: str, word: str) -> list[str]:
        if not before and word.startswith("/"):
            return [name for name in command_names() if name.startswith(word.lower())]
        first = before.split(" ", 1)[0]
        spec = lookup(first) if first.startswith("/") and before.count(" ") == 1 else None
        if self._is_path(before):
            return list(self._paths(word))
        if word.startswith("#") or (spec is not None and spec.takes_room):
            prefix = word.removeprefix("#").lower()
            rooms = sorted(room for room in self._rooms() if room.startswith(prefix))
            return ["#" + room for room in rooms]
        if not word:
            return []
        lowered = word.lower()
        seen: set[str] = set()
        found: list[str] = []
        for nick in self._nicks():
            if nick.lower().startswith(lowered) and nick.lower() not in seen:
                seen.add(nick.lower())
                found.append(nick)
        return found
