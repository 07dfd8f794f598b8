"""The SQL of accounts, stored DMs and read markers (schema version 2).

`SqliteStore` runs the writes on its writer thread (group commit, like room
messages) and the reads on its read thread through `AccountReader`; the
`chat-server accounts` command uses `AccountAdmin` on a connection of its own,
which works while a server runs on the same file (WAL, busy timeout): the
server reads an account afresh at every login, so a reset password or a
deleted account counts from the next login on.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from .account_store import Account, DmPage, StoredDm, key

__all__ = [
    "ACCOUNTS_MIGRATION",
    "CREATE_ACCOUNT",
    "DMS_DELIVERED",
    "INSERT_DM",
    "SET_MARKER",
    "AccountAdmin",
    "AccountReader",
]

# Appended to sqlite_store.MIGRATIONS (version 1 -> 2). `dm_pairs` keeps a pair's last
# seq when its DMs are deleted with an account, so the pair's seqs never restart.
ACCOUNTS_MIGRATION: Final = """
    CREATE TABLE accounts (
        name_key TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE dms (
        id INTEGER PRIMARY KEY,
        pair TEXT NOT NULL,
        seq INTEGER NOT NULL,
        sender TEXT NOT NULL,
        recipient TEXT NOT NULL,
        recipient_key TEXT NOT NULL,
        text TEXT NOT NULL,
        ts_ms INTEGER NOT NULL,
        pending INTEGER NOT NULL,
        UNIQUE (pair, seq)
    );
    CREATE INDEX dms_pending ON dms (recipient_key) WHERE pending = 1;
    CREATE TABLE dm_pairs (
        pair TEXT PRIMARY KEY,
        last_seq INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE markers (
        account_key TEXT NOT NULL,
        target TEXT NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (account_key, target)
    ) WITHOUT ROWID;
"""

CREATE_ACCOUNT: Final = (
    "INSERT INTO accounts (name_key, name, password_hash, created_ms) VALUES (?, ?, ?, ?)"
)
INSERT_DM: Final = (
    "INSERT INTO dms (pair, seq, sender, recipient, recipient_key, text, ts_ms, pending) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
DMS_DELIVERED: Final = "UPDATE dms SET pending = 0 WHERE pair = ? AND seq = ?"
SET_MARKER: Final = (
    "INSERT INTO markers (account_key, target, seq) VALUES (?, ?, ?) "
    "ON CONFLICT (account_key, target) DO UPDATE SET seq = MAX(seq, excluded.seq)"
)
_DM_COLUMNS = "SELECT pair, seq, sender, recipient, text, ts_ms FROM dms"


def load_dm_seqs(connection: sqlite3.Connection) -> dict[str, int]:
    """The last seq of every pair, from its DMs or from `dm_pairs` (after a deletion)."""
    seqs: dict[str, int] = dict(connection.execute("SELECT pair, last_seq FROM dm_pairs"))
    for pair, last in connection.execute("SELECT pair, MAX(seq) FROM dms GROUP BY pair"):
        seqs[pair] = max(last, seqs.get(pair, 0))
    return seqs


class AccountReader:
    """Account queries on one connection, used from one thread only."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def account(self, name: str) -> Account | None:
        row = self._connection.execute(
            "SELECT name, password_hash FROM accounts WHERE name_key = ?", (key(name),)
        ).fetchone()
        return None if row is None else Account(row[0], row[1])

    def account_names(self) -> list[str]:
        rows = self._connection.execute("SELECT name FROM accounts ORDER BY name_key")
        return [name for (name,) in rows]

    def dm_seqs(self) -> dict[str, int]:
        return load_dm_seqs(self._connection)

    def pending_dms(self, name: str) -> list[StoredDm]:
        rows = self._connection.execute(
            _DM_COLUMNS + " WHERE recipient_key = ? AND pending = 1 ORDER BY id", (key(name),)
        ).fetchall()
        return [StoredDm(*row) for row in rows]

    def dm_history(self, pair: str, before: int | None, after: int | None, limit: int) -> DmPage:
        if after is not None:
            rows = self._connection.execute(
                _DM_COLUMNS + " WHERE pair = ? AND seq > ? ORDER BY seq LIMIT ?",
                (pair, after, limit + 1),
            ).fetchall()
            return DmPage([StoredDm(*row) for row in rows[:limit]], more=len(rows) > limit)
        bound = before if before is not None else 1 << 62
        rows = self._connection.execute(
            _DM_COLUMNS + " WHERE pair = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
            (pair, bound, limit + 1),
        ).fetchall()
        page = [StoredDm(*row) for row in rows[:limit]][::-1]
        return DmPage(page, more=len(rows) > limit)

    def markers(self, name: str) -> dict[str, int]:
        rows = self._connection.execute(
            "SELECT target, seq FROM markers WHERE account_key = ?", (key(name),)
        )
        return dict(rows)


class AccountAdmin:
    """What `chat-server accounts` does, on its own connection (autocommit off per call)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        self.reader = AccountReader(connection)

    def delete(self, name: str) -> bool:
        """Delete an account, its markers and its DMs; the pairs' last seqs are kept."""
        connection, name_key = self._connection, key(name)
        connection.execute("BEGIN IMMEDIATE")
        try:
            found = connection.execute(
                "DELETE FROM accounts WHERE name_key = ?", (name_key,)
            ).rowcount
            pairs = [
                (pair,)
                for (pair,) in connection.execute("SELECT DISTINCT pair FROM dms")
                if name_key in pair.split(" ")
            ]
            connection.executemany(
                "INSERT INTO dm_pairs (pair, last_seq) "
                "SELECT pair, MAX(seq) FROM dms WHERE pair = ?1 GROUP BY pair "
                "ON CONFLICT (pair) DO UPDATE SET last_seq = MAX(last_seq, excluded.last_seq)",
                pairs,
            )
            connection.executemany("DELETE FROM dms WHERE pair = ?", pairs)
            connection.execute("DELETE FROM markers WHERE account_key = ?", (name_key,))
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return bool(found)

    def set_password_hash(self, name: str, password_hash: str) -> bool:
        cursor = self._connection.execute(
            "UPDATE accounts SET password_hash = ? WHERE name_key = ?", (password_hash, key(name))
        )
        return bool(cursor.rowcount)
