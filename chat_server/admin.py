"""The shell commands that read or change the database next to a running server.

`chat-server history ROOM` opens the file read-only and prints the latest
messages oldest first as the `message` lines a client would have received.
`chat-server accounts ...` opens it for writing without the server's lock
(SQLite's own locks and WAL let both work; the server reads an account afresh
at every login). A new password comes from standard input, never the command
line, so it shows in no `ps` listing, and it is never printed.
"""

from __future__ import annotations

import getpass
import os
import sqlite3
import sys
from typing import TextIO

from pydantic import ValidationError

from protocol import ProtocolError, RegisterAccount, validation_error

from .passwords import hash_password
from .sqlite_accounts import AccountAdmin
from .sqlite_store import HistoryReader, migrate, open_database
from .store import StoreError

__all__ = ["manage_accounts", "print_history"]


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


def manage_accounts(db_path: str, action: str, nick: str | None, stdin: TextIO, out: TextIO) -> int:
    """`list`, `delete NICK` or `reset-password NICK`; return the process exit code."""
    if not os.path.exists(db_path):
        print(f"chat-server accounts: no database at {db_path}", file=sys.stderr)
        return 1
    try:
        connection = open_database(db_path)
        try:
            migrate(connection, db_path)
            return _run_action(AccountAdmin(connection), action, nick, stdin, out)
        finally:
            connection.close()
    except StoreError as exc:
        print(f"chat-server accounts: {exc}", file=sys.stderr)
    except sqlite3.Error as exc:
        print(f"chat-server accounts: cannot use {db_path}: {exc}", file=sys.stderr)
    return 1


def _run_action(
    admin: AccountAdmin, action: str, nick: str | None, stdin: TextIO, out: TextIO
) -> int:
    if action == "list":
        for name in admin.reader.account_names():
            out.write(name + "\n")
        return 0
    assert nick is not None
    if admin.reader.account(nick) is None:
        print(f"chat-server accounts: {nick} is not an account", file=sys.stderr)
        return 1
    if action == "delete":
        admin.delete(nick)
        out.write(f"deleted {nick}\n")
        return 0
    if stdin.isatty():
        password = getpass.getpass(f"new password for {nick}: ", stream=sys.stderr)
    else:
        password = stdin.readline().removesuffix("\n").removesuffix("\r")
    try:
        RegisterAccount(password=password)
    except ValidationError as exc:
        problem: ProtocolError = validation_error(exc)
        print(f"chat-server accounts: password refused: {problem.message}", file=sys.stderr)
        return 1
    admin.set_password_hash(nick, hash_password(password))
    out.write(f"new password set for {nick}\n")
    return 0
