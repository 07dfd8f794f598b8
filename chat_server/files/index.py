"""What the server knows about each shared file: one `FileRecord` per shared copy.

One interface, three implementations: `MemoryFileIndex` (tests, `--db :memory:`),
`SqliteFileIndex`, which keeps the same dictionaries in memory and writes every change
through to its own database file (`files.sqlite3` in the files directory), so it never
shares a schema or a writer thread with the message store, and `RedisFileIndex`
(redis_index.py), the one index of every node of a chat kept in Redis. One contract
suite (tests/files/test_index.py) runs over the three.

Two kinds of calls:

- the *view* (`by_id`, `by_message`, `has_messages`): plain dictionary reads of what
  this process knows, for the paths that never wait (history, joins). On one server it
  is the index; on a node it is a copy kept current by the other nodes' events, so it
  may be one event read behind them.
- the *decisions* (`by_token`, `add`, `remove`, ...): async, and on a node answered
  by Redis in one atomic script, so two nodes never both take the last bytes of the
  quota, and a download on any node sees a delete made on any other.

Several records may share one blob (the same bytes shared twice): a blob is deleted
only when no live record names its hash any more. Deleting one is two steps: the index
marks the hash as being deleted (and says so, `Change.doomed`), the caller unlinks the
file, then calls `blobs_deleted`. Meanwhile `add` of a record with that hash answers
None (try again in a moment), so a node never links a new record to bytes another
node is about to unlink.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import quote

from protocol import FileInfo

__all__ = [
    "Change",
    "FileIndex",
    "FileRecord",
    "LocalFileIndex",
    "MemoryFileIndex",
    "SqliteFileIndex",
]


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


@dataclass(slots=True)
class Change:
    """What one decision did besides its own record: files expired to make room, the
    record removed, and the hashes whose blobs the caller must now unlink."""

    expired: list[FileRecord] = field(default_factory=list)
    removed: FileRecord | None = None
    doomed: list[str] = field(default_factory=list)


class FileIndex(ABC):
    """Records by id, by download token and by the message that shares them."""

    def __init__(self) -> None:
        self._by_id: dict[str, FileRecord] = {}
        self._by_token: dict[str, str] = {}
        self._by_message: dict[tuple[str, int], str] = {}
        # Files whose message this process saw deleted: no download from here on, even
        # before the decision reached the index (on a node: Redis).
        self._hidden: set[str] = set()

    # --- the view ------------------------------------------------------------------------

    def by_id(self, file_id: str) -> FileRecord | None:
        """The record, live or expired; None once deleted."""
        return self._by_id.get(file_id)

    def by_message(self, room: str, seq: int) -> FileRecord | None:
        """The record shared by message `seq` of `room`, if any."""
        file_id = self._by_message.get((room, seq))
        return self._by_id.get(file_id) if file_id is not None else None

    def has_messages(self) -> bool:
        """Whether any room message shares a file (history needs no lookups otherwise)."""
        return bool(self._by_message)

    def hide_message(self, room: str, seq: int) -> None:
        """The message was deleted: its file opens nothing here from now on."""
        record = self.by_message(room, seq)
        if record is not None:
            self._hidden.add(record.id)

    def set_seq(self, file_id: str, seq: int) -> None:
        """Link a record to the room message that shares it (for delete-with-message).

        Called in the loop pass that broadcasts the message, so it never waits: the view
        has the link at once, the index (on a node: Redis) a moment later."""
        record = self._by_id.get(file_id)
        if record is not None and record.seq != seq:
            self._put(replace(record, seq=seq))
            self._persist_seq(record, seq)

    def apply(self, fields: dict[str, str]) -> None:  # noqa: B027 (one process: no events)
        """An event of another node (a `file` entry of the events stream)."""

    # --- the decisions -------------------------------------------------------------------

    async def open(self) -> None:  # noqa: B027 (a memory index has nothing to read)
        """Read what is kept (before the first call)."""

    async def close(self) -> None:  # noqa: B027 (a memory index holds nothing open)
        """Release what the index holds open."""

    @abstractmethod
    async def by_token(self, token: str) -> FileRecord | None:
        """The live record this download token opens; None for anything else."""

    @abstractmethod
    async def add(self, record: FileRecord, quota: int) -> Change | None:
        """Record a newly shared file, first expiring the oldest live files until the
        distinct blobs of live files fit `quota` with it (nothing to expire when its
        hash is kept already). None: its hash is being deleted; ask again shortly."""

    @abstractmethod
    async def remove(self, file_id: str) -> Change:
        """Forget a record entirely (its message was deleted); `removed` is it."""

    @abstractmethod
    async def remove_for_message(self, room: str, seq: int) -> Change:
        """Forget the record that message `seq` of `room` shares, if one does."""

    @abstractmethod
    async def blobs_deleted(self, hashes: Iterable[str]) -> None:
        """The blobs of `hashes` (doomed by an earlier call) are unlinked."""

    @abstractmethod
    async def doom_unused(self, hashes: Iterable[str]) -> list[str]:
        """Of `hashes` (blobs found on disk), those no live record needs, now doomed."""

    @abstractmethod
    async def expire_missing(self, stored: set[str]) -> None:
        """Mark expired the live records whose blob is not among `stored` (lost bytes)."""

    # --- unfinished uploads other nodes may resume (only on nodes) -------------------

    async def find_upload(self, key: str) -> dict[str, str] | None:
        """The upload kept under `key` by any node (its id and token), if it lives."""
        return None

    async def keep_upload(self, key: str, ticket: dict[str, str], ttl: float) -> None:  # noqa: B027
        """Keep `ticket` under `key` for `ttl` seconds, for a resume through any node."""

    async def drop_upload(self, key: str) -> None:  # noqa: B027
        """The upload under `key` finished (or was dropped): nobody resumes it."""

    def _put(self, record: FileRecord) -> None:
        self._by_id[record.id] = record
        self._by_token[record.token] = record.id
        if record.room is not None and record.seq is not None:
            self._by_message[(record.room, record.seq)] = record.id

    def _drop(self, file_id: str) -> FileRecord | None:
        record = self._by_id.pop(file_id, None)
        if record is not None:
            self._by_token.pop(record.token, None)
            if record.room is not None and record.seq is not None:
                self._by_message.pop((record.room, record.seq), None)
        return record

    def _persist_seq(self, record: FileRecord, seq: int) -> None:  # noqa: B027
        pass


class LocalFileIndex(FileIndex):
    """The index of one process: the view is the index, every decision a dictionary step
    on the event loop (so atomic), written through by `_persist_*`."""

    def __init__(self) -> None:
        super().__init__()
        self._doomed: set[str] = set()

    def live_oldest_first(self) -> list[FileRecord]:
        """Records whose bytes are still kept, oldest first: the order quota expiry takes."""
        live = [record for record in self._by_id.values() if not record.expired]
        return sorted(live, key=lambda record: (record.created_ms, record.id))

    def live_hashes(self) -> dict[str, int]:
        """sha256 -> size of every blob some live record needs."""
        return {r.sha256: r.size for r in self._by_id.values() if not r.expired}

    async def by_token(self, token: str) -> FileRecord | None:
        file_id = self._by_token.get(token)
        record = self._by_id.get(file_id) if file_id is not None else None
        if record is None or record.expired or record.id in self._hidden:
            return None
        return record

    async def add(self, record: FileRecord, quota: int) -> Change | None:
        if record.sha256 in self._doomed:
            return None
        change = Change()
        live = self.live_hashes()
        if record.sha256 not in live:
            used = sum(live.values())
            for old in self.live_oldest_first():
                if used + record.size <= quota:
                    break
                self._expire(old, change)
                if old.sha256 in change.doomed:
                    used -= old.size
        self._put(record)
        self._persist_add(record)
        return change

    def _expire(self, record: FileRecord, change: Change) -> None:
        self._put(replace(record, expired=True))
        self._persist_expired(record.id)
        change.expired.append(replace(record, expired=True))
        self._release(record.sha256, change)

    def _release(self, sha256: str, change: Change) -> None:
        if sha256 not in self.live_hashes():
            self._doomed.add(sha256)
            change.doomed.append(sha256)

    async def remove(self, file_id: str) -> Change:
        change = Change()
        record = change.removed = self._drop(file_id)
        if record is not None:
            self._persist_remove(file_id)
            if not record.expired:
                self._release(record.sha256, change)
        return change

    async def remove_for_message(self, room: str, seq: int) -> Change:
        record = self.by_message(room, seq)
        return Change() if record is None else await self.remove(record.id)

    async def blobs_deleted(self, hashes: Iterable[str]) -> None:
        self._doomed.difference_update(hashes)

    async def doom_unused(self, hashes: Iterable[str]) -> list[str]:
        live = self.live_hashes()
        doomed = [sha256 for sha256 in hashes if sha256 not in live]
        self._doomed.update(doomed)
        return doomed

    async def expire_missing(self, stored: set[str]) -> None:
        for record in self.live_oldest_first():
            if record.sha256 not in stored:
                self._put(replace(record, expired=True))
                self._persist_expired(record.id)

    def _persist_seq(self, record: FileRecord, seq: int) -> None:
        self._persist_update(record.id, "seq", seq)

    def _persist_expired(self, file_id: str) -> None:
        self._persist_update(file_id, "expired", 1)

    @abstractmethod
    def _persist_add(self, record: FileRecord) -> None: ...

    @abstractmethod
    def _persist_update(self, file_id: str, column: str, value: int) -> None: ...

    @abstractmethod
    def _persist_remove(self, file_id: str) -> None: ...


class MemoryFileIndex(LocalFileIndex):
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


class SqliteFileIndex(LocalFileIndex):
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

    async def close(self) -> None:
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
