"""The SQLite history store: the default, so history survives restarts.

Writes never run on the event loop. `append` and `set_topic` put work on a
queue; one writer thread takes everything queued, commits it in a single
transaction (group commit) and hands the batch's callbacks back to the loop
with one `call_soon_threadsafe`, in the order the work arrived. Reads run on
a second thread with their own connection: WAL lets them proceed while the
writer commits.

Seqs have no gaps: the writer thread knows every stored room's last seq and
refuses (with `StoreError`, to that write's callback alone) a message whose seq
does not follow it, or one for a room that is not stored. Those checks run before
the transaction, so one bad write never takes a batch of good ones down; a
failure of the commit itself (disk full, I/O error, the database locked by another
program past the busy timeout) fails the whole batch and nothing of it is stored.
The first failure is logged once, and the recovery once.

Revs (the rooms' change counters) are checked the same way: a new message or
a change (`update`) must carry its room's next rev. A room's last rev is the
highest rev of its messages (every change sets the rev of the message it
changes), so it is committed in the same transaction as the change. A delete
overwrites the text (`secure_delete` zeroes the freed bytes) and the
transaction is followed by a truncating WAL checkpoint, so the old text is in
neither the database file nor its WAL afterwards.

WAL checkpoints (copying committed pages from the WAL into the database file,
with an fsync of each) run on a third thread with its own connection, about once
a second while there are commits, never on the writer: an automatic checkpoint
ran inside whichever commit crossed 1,000 WAL pages, so that commit (and every
ack and broadcast queued behind it) waited for the disk. Moving them changes no
guarantee: a commit is in the WAL before its callback runs, as before. Only the
truncating checkpoint after a delete stays on the writer, so the delete is not
acknowledged before its old text is gone; a lock keeps the two from overlapping.

The database file itself is held with `flock`, so a second server fails to start
on it whatever path reaches it (a symlink, a hard link, a bind mount, a `file:`
URI); SQLite's own locks would only make the two take turns.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import queue
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

from protocol import now_ms

from .account_store import Account, DmPage, StoredDm, key
from .moderation import BanRecord, ModerationRecords
from .search import SearchCursor, SearchIndex, SearchPage, Term
from .sqlite_accounts import (
    ACCOUNTS_MIGRATION,
    CREATE_ACCOUNT,
    DMS_DELIVERED,
    INSERT_DM,
    SET_MARKER,
    AccountReader,
    load_dm_seqs,
)
from .sqlite_search import (
    INDEX_ROOM,
    MERGE_STEP,
    SEARCH_MARK_MIGRATION,
    SEARCH_MIGRATION,
    UNINDEXED_ROOMS,
    SearchReader,
)
from .store import (
    CommitCallback,
    HistoryPage,
    Reactions,
    RoomRecord,
    Store,
    StoredMessage,
    StoreError,
)

__all__ = ["SCHEMA_VERSION", "HistoryReader", "SqliteStore", "open_database"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# Each entry upgrades the schema from version N to N + 1 (PRAGMA user_version).
# A later release appends to this list; it never edits a shipped entry.
MIGRATIONS: Final[tuple[str, ...]] = (
    """
    CREATE TABLE rooms (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        topic TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE messages (
        room_id INTEGER NOT NULL REFERENCES rooms (id),
        seq INTEGER NOT NULL,
        sender TEXT NOT NULL,
        text TEXT NOT NULL,
        action INTEGER NOT NULL,
        ts_ms INTEGER NOT NULL,
        PRIMARY KEY (room_id, seq)
    ) WITHOUT ROWID;
    """,
    ACCOUNTS_MIGRATION,
    # Replies, edits, deletes, reactions: per-room revs (an old message's rev is its
    # seq, so each room's counter goes on after its highest seq) and message authors
    # (unknown, '', for old messages: nobody may edit those).
    """
    ALTER TABLE messages ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE messages ADD COLUMN reply_to INTEGER;
    ALTER TABLE messages ADD COLUMN edited_ms INTEGER;
    ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE messages ADD COLUMN author TEXT NOT NULL DEFAULT '';
    UPDATE messages SET rev = seq;
    CREATE INDEX messages_by_rev ON messages (room_id, rev);
    CREATE TABLE reactions (
        room_id INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        position INTEGER NOT NULL,
        emoji TEXT NOT NULL,
        nick TEXT NOT NULL,
        PRIMARY KEY (room_id, seq, position)
    ) WITHOUT ROWID;
    """,
    SEARCH_MIGRATION,
    # Moderation: ops by account key, bans by nick key (an account's name or a guest's nick).
    """
    CREATE TABLE room_ops (
        room TEXT NOT NULL,
        account_key TEXT NOT NULL,
        PRIMARY KEY (room, account_key)
    ) WITHOUT ROWID;
    CREATE TABLE room_bans (
        room TEXT NOT NULL,
        nick_key TEXT NOT NULL,
        nick TEXT NOT NULL,
        by_nick TEXT NOT NULL,
        reason TEXT,
        ts_ms INTEGER NOT NULL,
        PRIMARY KEY (room, nick_key)
    ) WITHOUT ROWID;
    """,
    SEARCH_MARK_MIGRATION,
    # Reaction positions by group: (the emoji's group << 20) + the nick's place in it,
    # so one reaction is one row written or deleted (see `REACTION_GROUP`), where every
    # change rewrote all the message's rows (a popular message: quadratic).
    """
    CREATE TABLE reactions_by_group (
        room_id INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        position INTEGER NOT NULL,
        emoji TEXT NOT NULL,
        nick TEXT NOT NULL,
        PRIMARY KEY (room_id, seq, position)
    ) WITHOUT ROWID;
    INSERT INTO reactions_by_group (room_id, seq, position, emoji, nick)
    SELECT room_id, seq,
        (DENSE_RANK() OVER (PARTITION BY room_id, seq ORDER BY first) - 1) * 1048576
            + ROW_NUMBER() OVER (PARTITION BY room_id, seq, emoji ORDER BY position) - 1,
        emoji, nick
    FROM (
        SELECT *, MIN(position) OVER (PARTITION BY room_id, seq, emoji) AS first
        FROM reactions
    );
    DROP TABLE reactions;
    ALTER TABLE reactions_by_group RENAME TO reactions;
    """,
)
SCHEMA_VERSION: Final = len(MIGRATIONS)

# Columns as StoredMessage wants them; `room` is filled in by the caller.
_SELECT = (
    "SELECT seq, sender, text, action, ts_ms, rev, reply_to, edited_ms, deleted, author "
    "FROM messages WHERE room_id = ?"
)
_INSERT_MESSAGE = (
    "INSERT INTO messages (room_id, seq, sender, text, action, ts_ms, rev, reply_to, author) "
    "VALUES ((SELECT id FROM rooms WHERE name = ?), ?, ?, ?, ?, ?, ?, ?, ?)"
)
_ROOM_ID = "(SELECT id FROM rooms WHERE name = ?)"
_UPDATE_MESSAGE = (
    "UPDATE messages SET text = ?, edited_ms = ?, deleted = ?, rev = ? "
    f"WHERE room_id = {_ROOM_ID} AND seq = ?"
)
_CLEAR_REACTIONS = f"DELETE FROM reactions WHERE room_id = {_ROOM_ID} AND seq = ?"
_INSERT_REACTION = (
    f"INSERT INTO reactions (room_id, seq, position, emoji, nick) VALUES ({_ROOM_ID}, ?, ?, ?, ?)"
)
# A reaction's position is (its emoji's group << REACTION_GROUP) + its place in the
# group. Groups keep the order in which their emoji first came (a group's first nick
# may leave without the group moving), nicks the order they came in: the order
# `StoredMessage.react` keeps in memory, so one change is one row.
REACTION_GROUP: Final = 20
_ADD_REACTION = (
    f"INSERT INTO reactions (room_id, seq, position, emoji, nick) VALUES ({_ROOM_ID}, ?, "
    f"COALESCE((SELECT MAX(position) + 1 FROM reactions WHERE room_id = {_ROOM_ID} "
    "AND seq = ? AND emoji = ?), "
    f"(SELECT COALESCE(MAX(position >> {REACTION_GROUP}), -1) + 1 FROM reactions "
    f"WHERE room_id = {_ROOM_ID} AND seq = ?) << {REACTION_GROUP}), ?, ?)"
)
_REMOVE_REACTION = (
    f"DELETE FROM reactions WHERE room_id = {_ROOM_ID} AND seq = ? AND emoji = ? AND nick = ?"
)
_SELECT_REACTIONS = (
    "SELECT seq, emoji, nick FROM reactions WHERE room_id = ? AND seq BETWEEN ? AND ? "
    "ORDER BY seq, position"
)
Row = tuple[int, str, str, int, int, int, int | None, int | None, int, str]
_INSERT_ROOM = "INSERT OR IGNORE INTO rooms (name) VALUES (?)"
_SET_TOPIC = "UPDATE rooms SET topic = ? WHERE name = ?"
_DELETE_ROOM = "DELETE FROM rooms WHERE name = ?"
_DELETE_ROOM_OPS = "DELETE FROM room_ops WHERE room = ?"
_DELETE_ROOM_BANS = "DELETE FROM room_bans WHERE room = ?"
_SET_OP = "INSERT OR IGNORE INTO room_ops (room, account_key) VALUES (?, ?)"
_UNSET_OP = "DELETE FROM room_ops WHERE room = ? AND account_key = ?"
_SET_BAN = (
    "INSERT OR REPLACE INTO room_bans (room, nick_key, nick, by_nick, reason, ts_ms)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_UNSET_BAN = "DELETE FROM room_bans WHERE room = ? AND nick_key = ?"
_INDEX_BATCH: Final = 2_000  # messages pending for the search index that start indexing...
_INDEX_DELAY: Final = 0.5  # ...or seconds after the last indexing, whichever comes first
_MERGE_IDLE: Final = 1.0  # seconds without indexing after which the writer merges the index
_LARGE_MIGRATION: Final = 100_000  # messages above which an upgrade logs its progress
_BUSY_TIMEOUT: Final = 5.0  # seconds a commit waits for another program's lock
_CHECKPOINT_INTERVAL: Final = 1.0  # seconds between WAL checkpoints while commits come


@dataclass(frozen=True, slots=True)
class _Write:
    """One queued write: SQL, its parameters, and who to tell when it is committed.

    `room` and `seq` let the writer check the write before running it: a message
    (`seq` > 0) must follow its room's last stored seq, and every write but a
    creation needs its room stored. A stored DM's `room` is `@` and its pair (its
    seq must follow the pair's last); account writes have no `room`. An empty
    `sql` writes nothing (a barrier).
    """

    sql: str
    params: tuple[object, ...]
    done: CommitCallback | None
    room: str = ""
    seq: int = 0
    rev: int = 0
    # Statements run right after this one, in the same transaction (a change's reactions).
    then: tuple[tuple[str, tuple[object, ...]], ...] = ()
    erases: bool = False  # a delete: checkpoint the WAL after its commit


_STOP: Final[list[_Write]] = []  # an empty hand-over tells the writer to finish


def open_database(
    path: str, *, read_only: bool = False, fsync: bool = False, busy_timeout: float = _BUSY_TIMEOUT
) -> sqlite3.Connection:
    """Open `path` with the pragmas this store relies on. Raises `StoreError`.

    `fsync` makes every commit wait for the disk (`synchronous=FULL`).
    """
    try:
        if read_only:
            uri = Path(database_file(path) or path).resolve().as_uri() + "?mode=ro"
            connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
        else:
            connection = sqlite3.connect(
                path, check_same_thread=False, isolation_level=None, uri=path.startswith("file:")
            )
        connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        if not read_only:
            connection.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL mode: a commit is in the WAL file before anyone is told about
            # the message, so a crash or kill -9 of the server loses nothing acknowledged;
            # the fsync happens at checkpoints (a power cut can lose the last commits).
            # FULL also fsyncs the WAL on every commit.
            connection.execute(f"PRAGMA synchronous = {'FULL' if fsync else 'NORMAL'}")
            # A deleted message's text is overwritten with zeros, not left in free space.
            connection.execute("PRAGMA secure_delete = ON")
        return connection
    except sqlite3.Error as exc:
        raise _store_error(path, exc) from exc


def _store_error(path: str, exc: sqlite3.Error) -> StoreError:
    text = str(exc)
    if isinstance(exc, sqlite3.DatabaseError) and "not a database" in text:
        return StoreError(f"{path} is not an SQLite database, or it is damaged ({text})")
    if "malformed" in text:
        return StoreError(f"{path} is damaged ({text}); restore a backup or move it aside")
    if "full" in text:
        return StoreError(f"cannot write {path}: the disk is full ({text})")
    if "locked" in text or "busy" in text:
        return StoreError(f"{path} is locked by another program ({text})")
    if "readonly" in text or "unable to open" in text:
        return StoreError(f"cannot write {path} ({text}); check the path and its permissions")
    return StoreError(f"{path}: {text}")


def migrate(connection: sqlite3.Connection, path: str) -> None:
    """Bring the schema up to SCHEMA_VERSION, refusing a database from a newer release."""
    try:
        version = int(connection.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{path} was written by a newer release (schema {version}; "
                f"this one knows up to {SCHEMA_VERSION})"
            )
        messages = _message_count(connection) if version < SCHEMA_VERSION else 0
        for target in range(version + 1, SCHEMA_VERSION + 1):
            started = time.monotonic()
            if messages >= _LARGE_MIGRATION:
                log.info(
                    "upgrading the history schema to version %d over %d messages...",
                    target,
                    messages,
                )
            connection.execute("BEGIN IMMEDIATE")
            for statement in statements(MIGRATIONS[target - 1]):
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {target}")
            connection.execute("COMMIT")
            log.info(
                "history schema upgraded to version %d (%.1f s)",
                target,
                time.monotonic() - started,
            )
        if version < SCHEMA_VERSION:  # an upgrade (a rebuilt index) can leave a big WAL
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    except sqlite3.Error as exc:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise _store_error(path, exc) from exc


def statements(script: str) -> list[str]:
    """The SQL statements of `script`, split at `;` except inside a trigger's body."""
    found: list[str] = []
    current = ""
    for piece in script.split(";"):
        current += piece + ";"
        if sqlite3.complete_statement(current):
            if current.strip(" \n;"):
                found.append(current.strip())
            current = ""
    if current.strip(" \n;"):
        found.append(current.strip())
    return found


def _message_count(connection: sqlite3.Connection) -> int:
    """Messages stored (0 before the schema has a messages table)."""
    row = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages'"
    ).fetchone()
    if row is None:
        return 0
    return int(connection.execute("SELECT COUNT(*) FROM messages").fetchone()[0])


def load_moderation(connection: sqlite3.Connection) -> ModerationRecords:
    """Every stored op and ban."""
    records = ModerationRecords()
    for room, account_key in connection.execute("SELECT room, account_key FROM room_ops"):
        records.set_op(room, account_key, True)
    rows = connection.execute(
        "SELECT room, nick_key, nick, by_nick, reason, ts_ms FROM room_bans ORDER BY ts_ms"
    )
    for room, nick_key, nick, by, reason, ts_ms in rows:
        records.set_ban(room, nick_key, BanRecord(room, nick, by, reason, ts_ms))
    return records


def load_rooms(connection: sqlite3.Connection) -> dict[str, RoomRecord]:
    """Every stored room with its topic and last seq (one indexed lookup per room)."""
    rows = connection.execute(
        "SELECT name, topic, (SELECT MAX(seq) FROM messages WHERE room_id = rooms.id), "
        "(SELECT MAX(rev) FROM messages WHERE room_id = rooms.id) FROM rooms"
    ).fetchall()
    return {name: RoomRecord(name, topic, last or 0, rev or 0) for name, topic, last, rev in rows}


class HistoryReader:
    """History queries on one connection, used from one thread only."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        self._room_ids: dict[str, int] = {}

    def close(self) -> None:
        self._connection.close()

    def latest(self, room: str, limit: int) -> HistoryPage:
        rows = self._query(room, " ORDER BY seq DESC LIMIT ?", limit + 1)
        return self._page(room, rows[:limit][::-1], more=len(rows) > limit)

    def before(self, room: str, seq: int, limit: int) -> HistoryPage:
        rows = self._query(room, " AND seq < ? ORDER BY seq DESC LIMIT ?", seq, limit + 1)
        return self._page(room, rows[:limit][::-1], more=len(rows) > limit)

    def after(self, room: str, seq: int, limit: int) -> HistoryPage:
        rows = self._query(room, " AND seq > ? ORDER BY seq LIMIT ?", seq, limit + 1)
        return self._page(room, rows[:limit], more=len(rows) > limit)

    def changed_since(self, room: str, rev: int, limit: int) -> HistoryPage:
        rows = self._query(room, " AND rev > ? ORDER BY rev LIMIT ?", rev, limit + 1)
        return self._page(room, rows[:limit], more=len(rows) > limit)

    def message(self, room: str, seq: int) -> StoredMessage | None:
        page = self._page(room, self._query(room, " AND seq = ?", seq), more=False)
        return page.messages[0] if page.messages else None

    def _query(self, room: str, tail: str, *params: object) -> list[Row]:
        room_id = self._room_id(room)
        if room_id is None:
            return []
        return self._connection.execute(_SELECT + tail, (room_id, *params)).fetchall()

    def _reactions(self, room: str, rows: Sequence[Row]) -> dict[int, Reactions]:
        """The reactions of the messages in `rows`, by seq (one range query)."""
        room_id = self._room_id(room)
        if room_id is None or not rows:
            return {}
        seqs = [row[0] for row in rows]
        found: dict[int, dict[str, list[str]]] = {}
        for seq, emoji, nick in self._connection.execute(
            _SELECT_REACTIONS, (room_id, min(seqs), max(seqs))
        ):
            found.setdefault(seq, {}).setdefault(emoji, []).append(nick)
        return {
            seq: tuple((emoji, tuple(nicks)) for emoji, nicks in by_emoji.items())
            for seq, by_emoji in found.items()
        }

    def _room_id(self, room: str) -> int | None:
        found = self._room_ids.get(room)
        if found is None:
            row = self._connection.execute(
                "SELECT id FROM rooms WHERE name = ?", (room,)
            ).fetchone()
            if row is None:
                return None
            found = self._room_ids[room] = int(row[0])
        return found

    def _page(self, room: str, rows: Sequence[Row], more: bool) -> HistoryPage:
        reactions = self._reactions(room, rows)
        messages = [
            StoredMessage(
                room,
                seq,
                sender,
                text,
                bool(action),
                ts_ms,
                None,
                rev,
                reply_to,
                edited_ms,
                bool(deleted),
                reactions.get(seq, ()),
                author,
            )
            for seq, sender, text, action, ts_ms, rev, reply_to, edited_ms, deleted, author in rows
        ]
        return HistoryPage(messages, more)


class SqliteStore(Store, SearchIndex):
    """Rooms, topics and messages in one SQLite file (WAL mode, group commit)."""

    def __init__(
        self, path: str, *, fsync: bool = False, busy_timeout: float = _BUSY_TIMEOUT
    ) -> None:
        self.path = path
        self._fsync = fsync
        self._busy_timeout = busy_timeout
        self._last_seqs: dict[str, int] = {}  # stored rooms' last seqs; writer thread only
        self._last_revs: dict[str, int] = {}  # stored rooms' last revs; writer thread only
        self._failing = False  # writer thread only: the last commit failed
        self._queue: queue.SimpleQueue[list[_Write]] = queue.SimpleQueue()
        self._gathering: list[_Write] = []  # this loop pass's writes, handed over at its end
        self._writer: threading.Thread | None = None
        self._checkpointer: threading.Thread | None = None
        self._checkpoint_wanted = threading.Event()  # the writer committed something
        self._checkpoint_stop = threading.Event()  # set once the writer has finished
        self._checkpoint_lock = threading.Lock()  # one checkpoint at a time
        self._reader: HistoryReader | None = None
        self._accounts: AccountReader | None = None
        self._dm_seqs: dict[str, int] = {}
        self._moderation = ModerationRecords()
        self._search: SearchReader | None = None
        self._unindexed = 0  # writer thread only: messages waiting for the index...
        self._unindexed_rooms: set[str] = set()  # ...and their rooms
        self._indexed_at = 0.0
        self._merge_owed = True  # writer thread only: the index may have merge work...
        self._merging = False  # ...and a merge step found some
        self._index_failing = False  # writer thread only: the last indexing failed
        self._read_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="history-read")
        self._lock_fd: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._stopped: asyncio.Future[None] | None = None

    async def open(self) -> dict[str, RoomRecord]:
        self._loop = asyncio.get_running_loop()
        return await self._loop.run_in_executor(self._read_pool, self._open_blocking)

    def _open_blocking(self) -> dict[str, RoomRecord]:
        self._lock_fd = _take_lock(self.path)
        checkpoints: sqlite3.Connection | None = None
        try:
            writer = open_database(self.path, fsync=self._fsync, busy_timeout=self._busy_timeout)
            migrate(writer, self.path)
            if database_file(self.path) is not None:
                # The checkpointer thread checkpoints; the writer's commits never do.
                writer.execute("PRAGMA wal_autocheckpoint = 0")
                checkpoints = open_database(
                    self.path, fsync=self._fsync, busy_timeout=self._busy_timeout
                )
            try:
                rooms = load_rooms(writer)
            except sqlite3.Error as exc:
                raise _store_error(self.path, exc) from exc
            self._last_seqs = {name: record.last_seq for name, record in rooms.items()}
            self._last_revs = {name: record.last_rev for name, record in rooms.items()}
            try:  # what the last run left pending for the search index
                self._unindexed_rooms = {name for (name,) in writer.execute(UNINDEXED_ROOMS)}
            except sqlite3.Error as exc:
                raise _store_error(self.path, exc) from exc
            self._unindexed = len(self._unindexed_rooms)
            try:
                self._dm_seqs = load_dm_seqs(writer)
            except sqlite3.Error as exc:
                raise _store_error(self.path, exc) from exc
            self._last_seqs.update({f"@{pair}": seq for pair, seq in self._dm_seqs.items()})
            try:
                self._moderation = load_moderation(writer)
            except sqlite3.Error as exc:
                raise _store_error(self.path, exc) from exc
            reading = open_database(self.path, read_only=True)
            self._reader = HistoryReader(reading)
            self._search = SearchReader(reading)
            self._accounts = AccountReader(reading)
        except BaseException:
            if checkpoints is not None:
                checkpoints.close()
            _release_lock(self._lock_fd)
            self._lock_fd = None
            raise
        self._writer = threading.Thread(
            target=self._write_loop, args=(writer,), name="history-writer", daemon=True
        )
        self._writer.start()
        if checkpoints is not None:
            self._checkpointer = threading.Thread(
                target=self._checkpoint_loop,
                args=(checkpoints,),
                name="history-checkpoint",
                daemon=True,
            )
            self._checkpointer.start()
        return rooms

    def create_room(self, room: str, done: CommitCallback | None = None) -> None:
        self._put(_Write(_INSERT_ROOM, (room,), done, room))

    def delete_room(self, room: str) -> None:
        # Its ops and bans go in the same transaction: a room made again under this
        # name is a new room, whose only op is its new creator.
        then = ((_DELETE_ROOM_OPS, (room,)), (_DELETE_ROOM_BANS, (room,)))
        self._put(_Write(_DELETE_ROOM, (room,), None, room, then=then))

    def append(self, message: StoredMessage, done: CommitCallback) -> None:
        params = (message.room, message.seq, message.sender, message.text, int(message.action))
        rev = message.rev or message.seq
        row = (*params, message.ts_ms, rev, message.reply_to, message.author)
        self._put(_Write(_INSERT_MESSAGE, row, done, message.room, message.seq, message.rev))

    def update(self, message: StoredMessage, done: CommitCallback) -> None:
        room, seq = message.room, message.seq
        row = (message.text, message.edited_ms, int(message.deleted), message.rev, room, seq)
        then: list[tuple[str, tuple[object, ...]]] = [(_CLEAR_REACTIONS, (room, seq))]
        for group, (emoji, nicks) in enumerate(message.reactions):
            for place, nick in enumerate(nicks):
                position = (group << REACTION_GROUP) + place
                then.append((_INSERT_REACTION, (room, seq, position, emoji, nick)))
        write = _Write(
            _UPDATE_MESSAGE, row, done, room, seq, message.rev, tuple(then), message.deleted
        )
        self._put(write)

    def change_reaction(
        self, message: StoredMessage, emoji: str, nick: str, removed: bool, done: CommitCallback
    ) -> None:
        """One row added or deleted, and the message's rev moved: O(1) per reaction."""
        room, seq = message.room, message.seq
        row = (message.text, message.edited_ms, int(message.deleted), message.rev, room, seq)
        then: tuple[tuple[str, tuple[object, ...]], ...]
        if removed:
            then = ((_REMOVE_REACTION, (room, seq, emoji, nick)),)
        else:
            then = ((_ADD_REACTION, (room, seq, room, seq, emoji, room, seq, emoji, nick)),)
        self._put(_Write(_UPDATE_MESSAGE, row, done, room, seq, message.rev, then))

    async def message(self, room: str, seq: int) -> StoredMessage | None:
        return await self._read(lambda reader: reader.message(room, seq))

    async def changed_since(self, room: str, rev: int, limit: int) -> HistoryPage:
        return await self._read(lambda reader: reader.changed_since(room, rev, limit))

    def set_topic(self, room: str, topic: str, done: CommitCallback) -> None:
        self._put(_Write(_SET_TOPIC, (topic, room), done, room))

    def sync(self, done: CommitCallback) -> None:
        self._put(_Write("", (), done))

    def _put(self, write: _Write) -> None:
        if self._closing:
            if write.done is not None:
                write.done(StoreError("the history store is closed"))
            return
        if not self._gathering:
            loop = self._loop
            assert loop is not None
            loop.call_soon(self._hand_over)
        self._gathering.append(write)

    def _hand_over(self) -> None:
        """Give the writer one loop pass's writes at once.

        Handing each write over as it is made would wake the writer on the first
        one and split a pass's messages over several commits, each of which then
        costs a broadcast pass (one write per member) of its own.
        """
        writes, self._gathering = self._gathering, []
        if writes:
            self._queue.put(writes)

    # -- search and moderation ----------------------------------------------------

    async def search(
        self,
        terms: list[Term],
        rooms: list[str] | None,
        sender: str | None,
        limit: int,
        before: SearchCursor | None,
    ) -> SearchPage:
        searcher, loop = self._search, self._loop
        if searcher is None or loop is None:
            raise StoreError("the history store is not open")
        return await loop.run_in_executor(
            self._read_pool, searcher.search, terms, rooms, sender, limit, before
        )

    async def load_moderation(self) -> ModerationRecords:
        return self._moderation

    def save_op(self, room: str, account_key: str, op: bool, done: CommitCallback) -> None:
        self._put(_Write(_SET_OP if op else _UNSET_OP, (room, account_key), done))

    def save_ban(
        self, room: str, nick_key: str, ban: BanRecord | None, done: CommitCallback
    ) -> None:
        if ban is None:
            self._put(_Write(_UNSET_BAN, (room, nick_key), done))
            return
        row = (room, nick_key, ban.nick, ban.by, ban.reason, ban.ts_ms)
        self._put(_Write(_SET_BAN, row, done))

    # -- accounts, stored DMs, markers (AccountStore) ---------------------------

    async def account(self, name: str) -> Account | None:
        return await self._read_accounts(lambda reader: reader.account(name))

    async def account_names(self) -> list[str]:
        return await self._read_accounts(lambda reader: reader.account_names())

    def create_account(self, account: Account, done: CommitCallback) -> None:
        row = (key(account.name), account.name, account.password_hash, now_ms())
        self._put(_Write(CREATE_ACCOUNT, row, done))

    async def dm_seqs(self) -> dict[str, int]:
        return dict(self._dm_seqs)  # read at open; the hub counts on from there

    def append_dm(self, dm: StoredDm, pending: bool, done: CommitCallback) -> None:
        row = (dm.pair, dm.seq, dm.sender, dm.to, key(dm.to), dm.text, dm.ts_ms, int(pending))
        self._put(_Write(INSERT_DM, row, done, f"@{dm.pair}", dm.seq))

    async def pending_dms(self, name: str) -> list[StoredDm]:
        return await self._read_accounts(lambda reader: reader.pending_dms(name))

    def dms_delivered(self, name: str, dms: list[StoredDm], done: CommitCallback) -> None:
        for dm in dms[:-1]:
            self._put(_Write(DMS_DELIVERED, (dm.pair, dm.seq), None))
        if dms:
            self._put(_Write(DMS_DELIVERED, (dms[-1].pair, dms[-1].seq), done))
        else:
            done(None)

    async def dm_history(
        self, pair: str, before: int | None, after: int | None, limit: int
    ) -> DmPage:
        return await self._read_accounts(
            lambda reader: reader.dm_history(pair, before, after, limit)
        )

    async def markers(self, name: str) -> dict[str, int]:
        return await self._read_accounts(lambda reader: reader.markers(name))

    def set_marker(self, name: str, target: str, seq: int, done: CommitCallback) -> None:
        self._put(_Write(SET_MARKER, (key(name), target, seq), done))

    async def _read_accounts(self, query: Callable[[AccountReader], T]) -> T:
        reader, loop = self._accounts, self._loop
        if reader is None or loop is None:
            raise StoreError("the history store is not open")
        return await loop.run_in_executor(self._read_pool, query, reader)

    async def latest(self, room: str, limit: int) -> HistoryPage:
        return await self._read(lambda reader: reader.latest(room, limit))

    async def before(self, room: str, seq: int, limit: int) -> HistoryPage:
        return await self._read(lambda reader: reader.before(room, seq, limit))

    async def after(self, room: str, seq: int, limit: int) -> HistoryPage:
        return await self._read(lambda reader: reader.after(room, seq, limit))

    async def _read(self, query: Callable[[HistoryReader], T]) -> T:
        reader, loop = self._reader, self._loop
        if reader is None or loop is None:
            raise StoreError("the history store is not open")
        return await loop.run_in_executor(self._read_pool, query, reader)

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        loop = asyncio.get_running_loop()
        if self._writer is not None:
            self._hand_over()
            self._queue.put(_STOP)
            await loop.run_in_executor(None, self._writer.join)
        if self._checkpointer is not None:
            self._checkpoint_stop.set()
            self._checkpoint_wanted.set()
            await loop.run_in_executor(None, self._checkpointer.join)
        if self._reader is not None:
            await loop.run_in_executor(self._read_pool, self._reader.close)
        self._read_pool.shutdown(wait=True)
        _release_lock(self._lock_fd)
        self._lock_fd = None

    # -- writer thread -------------------------------------------------------

    def _write_loop(self, connection: sqlite3.Connection) -> None:
        try:
            while True:
                try:
                    wait = self._index_wait()
                    batch = list(self._queue.get(timeout=wait))
                except queue.Empty:
                    if self._unindexed:
                        self._index_pending(connection)
                    else:
                        self._merge_step(connection)
                    continue
                stop = not batch
                while not stop:  # group commit: take everything already queued
                    try:
                        writes = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    batch.extend(writes)
                    stop = not writes
                if batch:
                    self._commit(connection, batch)
                if self._unindexed >= _INDEX_BATCH or stop:
                    self._index_pending(connection)
                if stop:
                    return
        finally:
            connection.close()

    def _index_wait(self) -> float | None:
        """How long the writer may wait for work before it indexes what is pending, or
        (once the index has been quiet for `_MERGE_IDLE`) does merge work."""
        if self._unindexed:
            return max(0.0, self._indexed_at + _INDEX_DELAY - time.monotonic())
        if self._merging:
            return 0.0  # the next step at once, unless work came meanwhile
        if self._merge_owed:
            return max(0.0, self._indexed_at + _MERGE_IDLE - time.monotonic())
        return None

    def _merge_step(self, connection: sqlite3.Connection) -> None:
        """Some of the search index's merge work, while the writer has nothing else to do.

        Under load FTS5 merges a level once it holds 16 segments (`automerge`), which
        keeps inserts cheap; when the writer is idle it merges down to FTS5's usual
        shape (under 4 segments a level), so searches read fewer segments. A step is
        its own transaction of about `MERGE_STEP` pages, so a write that comes waits
        for one step at most.
        """
        before = connection.total_changes
        try:
            connection.execute(MERGE_STEP)
        except sqlite3.Error as exc:  # the next indexing asks for merging again
            log.debug("search index merge did not finish: %s", exc)
            self._merging = self._merge_owed = False
            return
        # FTS5 changes no row when it found nothing to merge.
        self._merging = self._merge_owed = connection.total_changes - before >= 2

    def _index_pending(self, connection: sqlite3.Connection) -> None:
        """Move the messages waiting for the search index into it, in one transaction."""
        self._indexed_at = time.monotonic()
        rooms = [
            (name, last)
            for name in sorted(self._unindexed_rooms)
            if (last := self._last_seqs.get(name)) is not None
        ]
        try:
            connection.execute("BEGIN")
            connection.executemany(INDEX_ROOM[0], [(last, name) for name, last in rooms])
            connection.executemany(INDEX_ROOM[1], [(last, name, last) for name, last in rooms])
            connection.execute("COMMIT")
        except sqlite3.Error as exc:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            if not self._index_failing:
                self._index_failing = True
                log.warning("could not update the search index (retrying): %s", exc)
            return
        self._unindexed_rooms.clear()
        self._merge_owed = True  # once the index is quiet again (a flush ends any merging)
        self._merging = False
        self._unindexed = 0
        if self._index_failing:
            self._index_failing = False
            log.warning("the search index is updated again")

    def _commit(self, connection: sqlite3.Connection, batch: list[_Write]) -> None:
        last_seqs = dict(self._last_seqs)  # what the batch leaves stored, if it commits
        last_revs = dict(self._last_revs)
        results: list[tuple[CommitCallback | None, BaseException | None]] = []
        good: list[_Write] = []
        for write in batch:
            refusal = _check(write, last_seqs, last_revs)
            if refusal is None:
                good.append(write)
            results.append((write.done, refusal))
        error = self._run_transaction(connection, good)
        if error is None:
            self._last_seqs = last_seqs
            self._last_revs = last_revs
            if any(write.erases for write in good):
                with self._checkpoint_lock:
                    _checkpoint(connection)
            if self._checkpointer is not None and not self._checkpoint_wanted.is_set():
                self._checkpoint_wanted.set()
            for write in good:
                if write.sql is _INSERT_MESSAGE:
                    self._unindexed += 1
                    self._unindexed_rooms.add(write.room)
        else:
            results = [(done, refusal or error) for done, refusal in results]
        callbacks = [(done, failure) for done, failure in results if done is not None]
        if callbacks and self._loop is not None:
            self._loop.call_soon_threadsafe(self._run_callbacks, callbacks)

    # -- checkpoint thread ---------------------------------------------------

    def _checkpoint_loop(self, connection: sqlite3.Connection) -> None:
        """Checkpoint the WAL after commits, at most once per `_CHECKPOINT_INTERVAL`.

        PASSIVE: it copies what no reader still needs and never waits for anyone;
        the writer goes on committing meanwhile (WAL writers and a checkpointer do
        not block each other), and restarts the WAL once it has all been copied.
        """
        wanted, stop = self._checkpoint_wanted, self._checkpoint_stop
        try:
            while not stop.is_set():
                wanted.wait()
                wanted.clear()
                self._checkpoint_now(connection)
                stop.wait(_CHECKPOINT_INTERVAL)
            self._checkpoint_now(connection)  # the writer has finished: copy the rest
        finally:
            connection.close()

    def _checkpoint_now(self, connection: sqlite3.Connection) -> None:
        with self._checkpoint_lock:
            try:
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as exc:  # the next one tries again
                log.debug("WAL checkpoint did not finish: %s", exc)

    def _run_transaction(
        self, connection: sqlite3.Connection, writes: list[_Write]
    ) -> BaseException | None:
        """Commit `writes` in one transaction; the error that undid all of them, if any."""
        if not any(write.sql for write in writes):
            return None
        try:
            connection.execute("BEGIN")
            for sql, rows in _runs(writes):
                connection.executemany(sql, rows)
            connection.execute("COMMIT")
        except sqlite3.Error as exc:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            if not self._failing:
                self._failing = True
                log.error(
                    "history store unavailable: a commit of %d writes failed: %s", len(writes), exc
                )
            return _store_error(self.path, exc)
        if self._failing:
            self._failing = False
            log.warning("history store works again")
        return None

    def _run_callbacks(self, callbacks: list[tuple[CommitCallback, BaseException | None]]) -> None:
        for done, error in callbacks:
            try:
                done(error)
            except Exception:
                log.exception("commit callback failed")
        if self.after_commits is not None:
            self.after_commits()


def _checkpoint(connection: sqlite3.Connection) -> None:
    """Copy the WAL into the database and empty it (after a delete: the old text goes)."""
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    except sqlite3.Error as exc:  # a reader in the way: the next checkpoint does it
        log.debug("checkpoint after a delete did not finish: %s", exc)


def _check(
    write: _Write, last_seqs: dict[str, int], last_revs: dict[str, int]
) -> StoreError | None:
    """Refuse a write that would leave a gap or point at no room; else apply it to `last_seqs`
    and `last_revs`."""
    sql = write.sql
    if not sql:
        return None
    if sql is _INSERT_ROOM:
        last_seqs.setdefault(write.room, 0)
        return None
    if not write.room:  # accounts and markers: no order to keep
        return None
    if write.room.startswith("@"):  # a stored DM: its pair's next seq
        last_dm = last_seqs.get(write.room, 0)
        if write.seq != last_dm + 1:
            return StoreError(f"DM seq {write.seq} does not follow {last_dm}")
        last_seqs[write.room] = write.seq
        return None
    last = last_seqs.get(write.room)
    if last is None:
        return StoreError(f"room #{write.room} is not stored")
    last_rev = last_revs.get(write.room, 0)
    if write.rev and write.rev != last_rev + 1:
        return StoreError(f"#{write.room} rev {write.rev} does not follow {last_rev}")
    if sql is _DELETE_ROOM:
        del last_seqs[write.room]
        last_revs.pop(write.room, None)
    elif sql is _UPDATE_MESSAGE:
        if not 1 <= write.seq <= last:
            return StoreError(f"#{write.room} has no message {write.seq}")
        last_revs[write.room] = write.rev
    elif write.seq:
        if write.seq != last + 1:
            return StoreError(f"#{write.room} seq {write.seq} does not follow {last}")
        last_seqs[write.room] = write.seq
        last_revs[write.room] = write.rev or max(last_rev, write.seq)
    return None


def _runs(batch: list[_Write]) -> list[tuple[str, list[tuple[object, ...]]]]:
    """Consecutive writes of the same statement, so each run is one executemany."""
    runs: list[tuple[str, list[tuple[object, ...]]]] = []
    follows = False  # the last run ended with a write's `then` statements
    for write in batch:
        if not write.sql:
            continue
        if runs and runs[-1][0] is write.sql and not follows:
            runs[-1][1].append(write.params)
        else:
            runs.append((write.sql, [write.params]))
        follows = bool(write.then)
        for sql, params in write.then:
            runs.append((sql, [params]))
    return runs


def database_file(path: str) -> str | None:
    """The file a database path or `file:` URI names; None for an in-memory database."""
    if not path.startswith("file:"):
        return None if path in ("", ":memory:") else path
    parsed = urllib.parse.urlsplit(path)
    query = urllib.parse.parse_qs(parsed.query)
    if query.get("mode") == ["memory"] or parsed.path in ("", ":memory:"):
        return None
    return urllib.parse.unquote(parsed.path)


def _take_lock(path: str) -> int | None:
    """Hold the database file itself, so a second server on it fails at start-up.

    `flock` locks the file (its inode), so every path that reaches it sees the
    lock. It does not touch the POSIX locks SQLite takes on the same file.
    """
    file = database_file(path)
    if file is None:
        return None
    try:
        fd = os.open(file, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(f"cannot write {file} ({exc.strerror}); check the path") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        raise StoreError(f"{path} is in use by another chat-server") from exc
    return fd


def _release_lock(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)
