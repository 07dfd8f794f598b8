"""Conversation logs on disk: one plain-text file per server, nick and conversation.

Off unless asked for (`--log`, or `"log": true` in the settings). Lines are
`YYYY-MM-DD HH:MM:SS <nick> text` in local time, appended, control characters
shown as stand-ins like on screen. Files live under the platform's log
directory (`~/.local/state/lanchat/log/` on Linux).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TextIO

import platformdirs

from .entries import Entry, Kind
from .text import visible

__all__ = ["Logbook", "default_log_dir"]

log = logging.getLogger(__name__)


def default_log_dir() -> Path:
    return platformdirs.user_log_path("lanchat")


class Logbook:
    """Appends entries to files; call `close()` at the end (lines are flushed as written)."""

    def __init__(self, directory: Path, server: str, nick: str) -> None:
        self.directory = directory / f"{server}-{nick.lower()}"
        self._files: dict[str, TextIO] = {}

    def path_for(self, key: str) -> Path:
        kind = "room" if key.startswith("#") else "dm"
        return self.directory / f"{kind}-{key[1:].lower()}.log"

    def write(self, key: str, entry: Entry) -> None:
        when = entry.ts.astimezone().strftime("%Y-%m-%d %H:%M:%S") if entry.ts else ""
        if entry.kind is Kind.ACTION:
            text = f"* {entry.author} {entry.text}"
        elif entry.kind is Kind.EVENT:
            text = f"-- {entry.text}"
        else:
            text = f"<{entry.author}> {entry.text}"
        try:
            handle = self._files.get(key)
            if handle is None:
                path = self.path_for(key)
                path.parent.mkdir(parents=True, exist_ok=True)
                handle = self._files[key] = path.open("a", encoding="utf-8", buffering=1)
            handle.write(f"{when} {visible(text)}\n".replace("\n", "\n    ", text.count("\n")))
        except OSError as exc:
            log.warning("could not write the log of %s: %s", key, exc)

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()
