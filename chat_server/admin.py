"""`chat-server history ROOM`: read a room's history straight from the database.

Opens the file read-only, so it works while a server is running on it, and
prints the latest messages oldest first as the `message` lines a client
would have received.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from typing import TextIO

from .sqlite_store import HistoryReader, open_database
from .store import StoreError

__all__ = ["print_history"]


def print_history(db_path: str, room: str, limit: int, out: TextIO) -> int:
    """Print up to `limit` latest messages of `room`; return the process exit code."""
    if not os.path.exists(db_path):
        print(f"chat-server history: no history database at {db_path}", file=sys.stderr)
        return 1
    try:
        connection = open_database(db_path, read_only=True)
        if not _room_exists(connection, room):
            connection.close()
            print(f"chat-server history: there is no room #{room} in {db_path}", file=sys.stderr)
            return 1
        reader = HistoryReader(connection)
        try:
            page = reader.latest(room, limit)
        finally:
            reader.close()
    except StoreError as exc:
        print(f"chat-server history: {exc}", file=sys.stderr)
        return 1
    except sqlite3.Error as exc:
        print(f"chat-server history: cannot read {db_path}: {exc}", file=sys.stderr)
        return 1
    for message in page.messages:
        out.write(message.encode().decode())
    return 0


def _room_exists(connection: sqlite3.Connection, room: str) -> bool:
    # An unknown room is a mistyped name far more often than an empty room: say so.
    return connection.execute("SELECT 1 FROM rooms WHERE name = ?", (room,)).fetchone() is not None
