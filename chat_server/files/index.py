"""What the server knows about each shared file: one `FileRecord` per shared copy.

Two implementations of one interface: `MemoryFileIndex` (tests, `--db :memory:`) and
`SqliteFileIndex`, which keeps the same dictionaries in memory and writes every change
through to its own database file (`files.sqlite3` in the files directory), so it never
shares a schema or a writer thread with the message store. Changes are rare (one per
upload, expiry or delete) and small; lookups, one per download, are dictionary reads.

Several records may share one blob (the same bytes shared twice): a blob is deleted
only when no live record names its hash any more.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote

from protocol import FileInfo

__all__ = ["FileIndex", "FileRecord", "MemoryFileIndex", "SqliteFileIndex"]


@dataclass(frozen=True, slots=True)
class FileRecord:
    """One shared file: who shared it where, and its download capability `token`."""

    id: str
    token: str
    name: str
    size: int
    sha256: str
    sender: str
    room: str | None
    to: str | None
    created_ms: int
    host: str  # the files listener's host as the sharer reached it (URLs use it)
    seq: int | None = None  # the room message that shares it, once committed
    expired: bool = False

    def url(self, base: str) -> str:
        """The download capability under `base` (`http://host:port`); the trailing name is
        for `curl -O` and is not checked."""
        return f"{base}/f/{self.token}/{quote(self.name, safe='')}"

    def to_wire(self, base: str) -> FileInfo:
        """The `file` object of the message that shares it."""
        return FileInfo(
            id=self.id,
            name=self.name,
            size=self.size,
            sha256=self.sha256,
            url=self.url(base),
            expired=True if self.expired else None,
        )


class FileIndex(ABC):
    """Records by id, by download token and by the message that shares them."""

    def __init__(self) -> None:
        self._by_id: dict[str, FileRecord] = {}
        self._by_token: dict[str, str] = {}
        self._by_message: dict[tuple[str, int], str] = {}

    def by_id(self, file_id: str) -> FileRecord | None:
        """The record, live or expired; None once deleted."""
        return self._by_id.get(file_id)

    def by_token(self, token: str) -> FileRecord | None:
        """The live record this download token opens; None for anything else."""
        file_id = self._by_token.get(token)
        record = self._by_id.get(file_id) if file_id is not None else None
        return record if record is not None and not record.expired else None

    def by_message(self, room: str, seq: int) -> FileRecord | None:
        """The record shared by message `seq` of `room`, if any."""
        file_id = self._by_message.get((room, seq))
        return self._by_id.get(file_id) if file_id is not None else None

    def has_messages(self) -> bool:
        """Whether any room message shares a file (history needs no lookups otherwise)."""
        return bool(self._by_message)

    def live_oldest_first(self) -> list[FileRecord]:
        """Records whose bytes are still kept, oldest first: the order quota expiry takes."""
        live = [record for record in self._by_id.values() if not record.expired]
        return sorted(live, key=lambda record: (record.created_ms, record.id))

    def live_hashes(self) -> dict[str, int]:
        """sha256 -> size of every blob some live record needs."""
        return {r.sha256: r.size for r in self._by_id.values() if not r.expired}

    def add(self, record: FileRecord) -> None:
        """Record a newly shared file."""
        self._put(record)
        self._persist_add(record)

    def set_seq(self, file_id: str, seq: int) -> None:
        """Link a record to the room message that shares it (for delete-with-message)."""
        record = self._by_id.get(file_id)
        if record is not None:
            self._put(replace(record, seq=seq))
            self._persist_update(file_id, "seq", seq)

    def mark_expired(self, file_id: str) -> None:
        """The bytes are gone; the record stays so messages can say `expired`."""
        record = self._by_id.get(file_id)
        if record is not None and not record.expired:
            self._put(replace(record, expired=True))
            self._persist_update(file_id, "expired", 1)

    def remove(self, file_id: str) -> FileRecord | None:
        """Forget a record entirely (its message was deleted); returns it."""
        record = self._by_id.pop(file_id, None)
        if record is not None:
            self._by_token.pop(record.token, None)
            if record.room is not None and record.seq is not None:
                self._by_message.pop((record.room, record.seq), None)
            self._persist_remove(file_id)
        return record

    def close(self) -> None:  # noqa: B027 (a memory index holds nothing open)
        """Release what the index holds open."""

    def _put(self, record: FileRecord) -> None:
        self._by_id[record.id] = record
        self._by_token[record.token] = record.id
        if record.room is not None and record.seq is not None:
            self._by_message[(record.room, record.seq)] = record.id

    @abstractmethod
    def _persist_add(self, record: FileRecord) -> None: ...

    @abstractmethod
    def _persist_update(self, file_id: str, column: str, value: int) -> None: ...

    @abstractmethod
    def _persist_remove(self, file_id: str) -> None: ...


class MemoryFileIndex(FileIndex):
    """Keeps nothing across restarts."""

    def _persist_add(self, record: FileRecord) -> None:
        pass

    def _persist_update(self, file_id: str, column: str, value: int) -> None:
        pass

    def _persist_remove(self, file_id: str) -> None:
        pass


_SCHEMA = """
CREATE TABLE IF NOT EXISTS shared_files (
    id TEXT PRIMARY KEY,
    token TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    sender TEXT NOT NULL,
    room TEXT,
    dm_to TEXT,
    created_ms INTEGER NOT NULL,
    host TEXT NOT NULL,
    seq INTEGER,
    expired INTEGER NOT NULL DEFAULT 0
)
"""
_COLUMNS = "id, token, name, size, sha256, sender, room, dm_to, created_ms, host, seq, expired"
_UPDATABLE = {"seq", "expired"}


class SqliteFileIndex(FileIndex):
    """Write-through to an SQLite file of its own; loads every record when opened."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        for row in self._db.execute(f"SELECT {_COLUMNS} FROM shared_files"):
            self._put(
                FileRecord(
                    id=row[0],
                    token=row[1],
                    name=row[2],
                    size=row[3],
                    sha256=row[4],
                    sender=row[5],
                    room=row[6],
                    to=row[7],
                    created_ms=row[8],
                    host=row[9],
                    seq=row[10],
                    expired=bool(row[11]),
                )
            )

    def close(self) -> None:
        self._db.close()

    def _persist_add(self, record: FileRecord) -> None:
        self._db.execute(
            f"INSERT INTO shared_files ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                record.id,
                record.token,
                record.name,
                record.size,
                record.sha256,
                record.sender,
                record.room,
                record.to,
                record.created_ms,
                record.host,
                record.seq,
                int(record.expired),
            ),
        )

    def _persist_update(self, file_id: str, column: str, value: int) -> None:
        assert column in _UPDATABLE  # never a name from outside
        self._db.execute(f"UPDATE shared_files SET {column} = ? WHERE id = ?", (value, file_id))

    def _persist_remove(self, file_id: str) -> None:
        self._db.execute("DELETE FROM shared_files WHERE id = ?", (file_id,))
