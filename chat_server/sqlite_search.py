"""The SQLite store's search index: FTS5, external content, filled by the writer.

`message_search` indexes `messages.text` (`content='messages'`, tokenizer
`unicode61 remove_diacritics 2`). Its rowid is `messages.search_key`, a virtual
generated column `(room_id << 32) + seq`, so one room's messages are one rowid
range in seq order. An edit (an UPDATE of the text) is found by its new text only,
and a deleted message (text set to '') by nothing. `columnsize = 0`: hits are
ordered by time, never ranked, so the index keeps no document sizes (a third less
work per indexed message). Prefix indexes for one, two and three characters make
`w*`, `de*` and `w12*` one lookup each instead of a merge of every matching term.

A room's messages are indexed in seq order up to its mark, `message_search_indexed.seq`:
every message at or below it is in the index with its current text, every one above
it is pending. A new message costs the index nothing when it is committed; the store's
writer moves each room's pending messages into the index and moves the mark, in one
transaction, now and then (`INDEX_ROOM`, every 0.5 s or 2,000 messages), because FTS5
writes a segment per commit and the store commits small groups. Triggers keep the
indexed messages in step, whoever changes them: an edit of one takes its old text out
and puts its new text in at once, a delete takes its text out; a pending message needs
nothing, its current text is what gets indexed. A search reads the index below each
room's mark and scans the messages above it (a few thousand at most), in one snapshot,
so a message is found from its commit on.

A query runs per room: the room's matching rowids newest first (below the
cursor), joined to `messages` for the `from` filter, and the rooms' hits merged
by (ts, room, seq). Only rowids are read from the index, never its content.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from .search import SearchCursor, SearchPage, Term, newest_first, scan, to_fts5
from .store import StoredMessage

__all__ = [
    "INDEX_ROOM",
    "MERGE_STEP",
    "SEARCH_MARK_MIGRATION",
    "SEARCH_MIGRATION",
    "UNINDEXED_ROOMS",
    "SearchReader",
]

_KEY_NEW = "(new.room_id << 32) + new.seq"
_KEY_OLD = "(old.room_id << 32) + old.seq"
_INDEXED_OLD = f"NOT EXISTS (SELECT 1 FROM message_search_pending WHERE key = {_KEY_OLD})"
_INDEXED_OLD_MARK = (
    "old.seq <= (SELECT seq FROM message_search_indexed WHERE room_id = old.room_id)"
)

SEARCH_MIGRATION: Final = f"""
    ALTER TABLE messages ADD COLUMN search_key INTEGER
        GENERATED ALWAYS AS ((room_id << 32) + seq) VIRTUAL;
    CREATE VIRTUAL TABLE message_search USING fts5(
        text,
        content = 'messages',
        content_rowid = 'search_key',
        tokenize = 'unicode61 remove_diacritics 2',
        columnsize = 0,
        -- Prefix indexes for 2 and 3 characters: `w12*` took 95 ms (p95) on a million
        -- messages without them, 1.2 ms with them; commits cost the same in scenario e.
        prefix = '2 3'
    );
    CREATE TABLE message_search_pending (key INTEGER PRIMARY KEY);
    CREATE TRIGGER message_search_insert AFTER INSERT ON messages BEGIN
        INSERT OR IGNORE INTO message_search_pending (key) VALUES ({_KEY_NEW});
    END;
    CREATE TRIGGER message_search_delete AFTER DELETE ON messages BEGIN
        INSERT INTO message_search (message_search, rowid, text)
            SELECT 'delete', {_KEY_OLD}, old.text WHERE {_INDEXED_OLD};
        DELETE FROM message_search_pending WHERE key = {_KEY_OLD};
    END;
    CREATE TRIGGER message_search_update AFTER UPDATE OF text ON messages BEGIN
        INSERT INTO message_search (message_search, rowid, text)
            SELECT 'delete', {_KEY_OLD}, old.text WHERE {_INDEXED_OLD};
        INSERT OR IGNORE INTO message_search_pending (key) VALUES ({_KEY_NEW});
    END;
    INSERT INTO message_search (message_search) VALUES ('rebuild');
"""

# Version 6: the index is kept by a per-room mark instead of a queue. Every message of a
# room up to `message_search_indexed.seq` is in the index with its current text; the
# ones above it are pending (the writer indexes them now and then, `INDEX_ROOM`, and a
# search scans them). So a new message costs no trigger and no queue row at all; the
# triggers only keep indexed messages in step when their text changes or they go.
# (Measured on the store's SQL alone: the queue's trigger insert and delete were about
# a third of what the index cost a message.) The FTS table is made again with a one-character
# prefix index too, so `w*` reads one prefix entry instead of merging every term.
# `automerge` 16 (FTS5's default is 4): the index merges a level once it holds 16
# segments instead of 4, so each message is rewritten by merges about half as often
# (log16 against log4 of the segments); a query looks at a few more segments, until
# the idle writer merges them (`MERGE_STEP`). `crisismerge` 64 (default 16): at 16 a
# level's merge was always a crisis merge, all of it in one flush (59 ms against 20 ms
# for the longest flush of 300,000 messages), instead of FTS5's incremental merge
# spread over the flushes that follow. See docs/PERFORMANCE.md, "Schema 6".
SEARCH_MARK_MIGRATION: Final = f"""
    DROP TRIGGER message_search_insert;
    DROP TRIGGER message_search_delete;
    DROP TRIGGER message_search_update;
    DROP TABLE message_search_pending;
    DROP TABLE message_search;
    CREATE VIRTUAL TABLE message_search USING fts5(
        text,
        content = 'messages',
        content_rowid = 'search_key',
        tokenize = 'unicode61 remove_diacritics 2',
        columnsize = 0,
        prefix = '1 2 3'
    );
    CREATE TABLE message_search_indexed (
        room_id INTEGER PRIMARY KEY,
        seq INTEGER NOT NULL
    );
    CREATE TRIGGER message_search_room_made AFTER INSERT ON rooms BEGIN
        INSERT OR REPLACE INTO message_search_indexed (room_id, seq) VALUES (new.id, 0);
    END;
    CREATE TRIGGER message_search_room_gone AFTER DELETE ON rooms BEGIN
        DELETE FROM message_search_indexed WHERE room_id = old.id;
    END;
    CREATE TRIGGER message_search_delete AFTER DELETE ON messages
    WHEN {_INDEXED_OLD_MARK} BEGIN
        INSERT INTO message_search (message_search, rowid, text)
            VALUES ('delete', {_KEY_OLD}, old.text);
    END;
    CREATE TRIGGER message_search_update AFTER UPDATE OF text ON messages
    WHEN {_INDEXED_OLD_MARK} BEGIN
        INSERT INTO message_search (message_search, rowid, text)
            VALUES ('delete', {_KEY_OLD}, old.text);
        INSERT INTO message_search (rowid, text) VALUES ({_KEY_NEW}, new.text);
    END;
    INSERT INTO message_search_indexed (room_id, seq)
        SELECT id, COALESCE((SELECT MAX(seq) FROM messages WHERE room_id = rooms.id), 0)
        FROM rooms;
    INSERT INTO message_search (message_search) VALUES ('rebuild');
    INSERT INTO message_search (message_search, rank) VALUES ('automerge', 16);
    INSERT INTO message_search (message_search, rank) VALUES ('crisismerge', 64);
"""

# Indexes one room's pending messages (parameters: room name, its last seq; twice) and
# moves its mark. A room without a mark (its search triggers dropped) is left alone.
_ROOM_OF = "(SELECT id FROM rooms WHERE name = ?)"
INDEX_ROOM: Final = (
    "INSERT INTO message_search (rowid, text) SELECT m.search_key, m.text"
    " FROM message_search_indexed i JOIN messages m"
    " ON m.room_id = i.room_id AND m.seq > i.seq AND m.seq <= ?"
    f" WHERE i.room_id = {_ROOM_OF}",
    f"UPDATE message_search_indexed SET seq = ? WHERE room_id = {_ROOM_OF} AND seq < ?",
)
# Merge work on the index, about this many pages (4 KiB each), where a level holds 4
# segments or more (FTS5's `usermerge`); what an idle writer runs (about 10 ms a step).
MERGE_STEP: Final = "INSERT INTO message_search (message_search, rank) VALUES ('merge', 100)"
# The rooms with messages above their mark (at start-up: what the last run left pending).
UNINDEXED_ROOMS: Final = (
    "SELECT r.name FROM rooms r JOIN message_search_indexed i ON i.room_id = r.id"
    " WHERE i.seq < COALESCE((SELECT MAX(seq) FROM messages WHERE room_id = r.id), 0)"
)
_PENDING = "SELECT seq, sender, text, action, ts_ms FROM messages WHERE room_id = ? AND seq > ?"

_ROOM_BITS: Final = 32

_HITS = (
    "SELECT m.seq, m.sender, m.text, m.action, m.ts_ms FROM message_search s"
    " JOIN messages m ON m.room_id = ? AND m.seq = s.rowid - ?"
    " WHERE message_search MATCH ? AND s.rowid >= ? AND s.rowid < ?{sender}"
    " ORDER BY s.rowid DESC LIMIT ?"
)
_HITS_ANY = _HITS.format(sender="")
_HITS_FROM = _HITS.format(sender=" AND m.sender = ? COLLATE NOCASE")


class SearchReader:
    """Search queries on the store's read connection (used from its read thread only)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def search(
        self,
        terms: list[Term],
        rooms: list[str] | None,
        sender: str | None,
        limit: int,
        before: SearchCursor | None,
    ) -> SearchPage:
        if not terms:
            return SearchPage([], more=False)
        connection = self._connection
        connection.execute("BEGIN")  # one snapshot: the index and what is pending for it
        try:
            return self._search(terms, rooms, sender, limit, before)
        finally:
            connection.execute("COMMIT")

    def _search(
        self,
        terms: list[Term],
        rooms: list[str] | None,
        sender: str | None,
        limit: int,
        before: SearchCursor | None,
    ) -> SearchPage:
        expression = to_fts5(terms)
        hits: list[StoredMessage] = []
        pending: list[StoredMessage] = []
        for name, room_id, last_seq, mark in self._rooms(rooms):
            bound = self._bound(name, room_id, last_seq, before)
            if bound <= 1:
                continue
            base = room_id << _ROOM_BITS
            if mark > 0:
                params: tuple[object, ...] = (room_id, base, expression, base, base + bound)
                sql = _HITS_ANY
                if sender is not None:
                    sql, params = _HITS_FROM, (*params, sender)
                rows = self._connection.execute(sql, (*params, limit + 1)).fetchall()
                hits.extend(
                    StoredMessage(name, seq, author, text, bool(action), ts_ms)
                    for seq, author, text, action, ts_ms in rows
                )
            if last_seq > mark:
                pending.extend(
                    StoredMessage(name, seq, author, text, bool(action), ts_ms)
                    for seq, author, text, action, ts_ms in self._connection.execute(
                        _PENDING, (room_id, mark)
                    )
                )
        hits.extend(scan(pending, terms, sender, limit + 1, before).messages)
        ordered = newest_first(hits)
        return SearchPage(ordered[:limit], more=len(ordered) > limit)

    def _rooms(self, names: list[str] | None) -> list[tuple[str, int, int, int]]:
        """The rooms searched: name, id, last seq, and how far the index holds them."""
        sql = (
            "SELECT name, id, (SELECT MAX(seq) FROM messages WHERE room_id = rooms.id),"
            " (SELECT seq FROM message_search_indexed WHERE room_id = rooms.id) FROM rooms"
        )
        if names is None:
            rows = self._connection.execute(sql).fetchall()
        else:
            marks = ",".join("?" * len(names))
            rows = self._connection.execute(f"{sql} WHERE name IN ({marks})", names).fetchall()
        return [
            (name, int(room_id), int(last or 0), int(mark or 0))
            for name, room_id, last, mark in rows
        ]

    def _bound(self, name: str, room_id: int, last_seq: int, before: SearchCursor | None) -> int:
        """The first seq of the room at or after the cursor (the page takes seqs below it).

        A room's messages are in ts order by seq (the server stamps them as it numbers
        them), so this is a binary search on the primary key.
        """
        if before is None:
            return last_seq + 1
        if name == before.room:
            return min(before.seq, last_seq + 1)
        low, high = 1, last_seq + 1  # the answer is in [low, high]
        while low < high:
            middle = (low + high) // 2
            row = self._connection.execute(
                "SELECT ts_ms FROM messages WHERE room_id = ? AND seq = ?", (room_id, middle)
            ).fetchone()
            ts_ms = int(row[0]) if row is not None else before.ts_ms + 1
            if SearchCursor(ts_ms, name, middle) < before:
                low = middle + 1
            else:
                high = middle
        return low
