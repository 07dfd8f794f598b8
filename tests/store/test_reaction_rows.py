"""Reactions stored one row per change: the stored order is the order kept in memory.

`SqliteStore.change_reaction` writes or deletes one row where `update` rewrote every
reaction of the message. Whatever the sequence of adds and removes, the reactions read
back (also after a restart, and after a full `update` such as an edit) must equal
what `StoredMessage.react` made in memory, emoji order and nick order included.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from chat_server.sqlite_store import MIGRATIONS, SqliteStore
from chat_server.store import MemoryStore, Store, StoredMessage
from tests.store.test_account_store import done_of
from tests.store.test_message_changes import message

Change = tuple[str, str, bool]  # (emoji, nick, removed)

changes = st.lists(
    st.tuples(st.sampled_from(["👍", "🎉", "ok", "❤"]), st.sampled_from("abcde"), st.booleans()),
    max_size=40,
)


async def _apply(store: Store, steps: list[Change]) -> StoredMessage:
    """Apply `steps` to message 1 in memory and in `store`; the state in memory."""
    await store.open()
    assert await done_of(store.create_room, "lobby") is None
    current = message(1, 1)
    assert await done_of(store.append, current) is None
    for emoji, nick, removed in steps:
        changed = current.react(emoji, nick, removed, current.rev + 1)
        if changed is None:
            continue
        assert await done_of(store.change_reaction, changed, emoji, nick, removed) is None
        current = changed
    return current


async def _stored(store: Store) -> StoredMessage:
    found = await store.message("lobby", 1)
    assert found is not None
    return found


@settings(max_examples=60, deadline=None)
@given(steps=changes)
def test_the_stored_reactions_equal_the_ones_in_memory(steps: list[Change]) -> None:
    async def check(path: Path) -> None:
        store = SqliteStore(str(path))
        try:
            expected = await _apply(store, steps)
            assert (await _stored(store)).reactions == expected.reactions
        finally:
            await store.close()
        again = SqliteStore(str(path))  # read back from the file alone
        await again.open()
        try:
            assert (await _stored(again)).reactions == expected.reactions
            # A full update (an edit) rewrites the rows; later single changes still fit.
            edited = expected.edit("edited", expected.rev + 1, 1_800_000_000_000)
            assert await done_of(again.update, edited) is None
            latest = edited.react("🎉", "z", False, edited.rev + 1)
            assert latest is not None
            assert await done_of(again.change_reaction, latest, "🎉", "z", False) is None
            assert (await _stored(again)).reactions == latest.reactions
        finally:
            await again.close()

    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(check(Path(directory) / "c.db"))


@settings(max_examples=20, deadline=None)
@given(steps=changes)
def test_the_memory_store_keeps_the_same(steps: list[Change]) -> None:
    async def check() -> None:
        store = MemoryStore()
        expected = await _apply(store, steps)
        assert (await _stored(store)).reactions == expected.reactions

    asyncio.run(check())


async def test_a_group_keeps_its_place_when_its_first_nick_leaves(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "c.db"))
    try:
        steps: list[Change] = [("👍", "a", False), ("🎉", "b", False), ("👍", "c", False)]
        steps += [("👍", "a", True)]  # 👍 keeps c, and stays before 🎉
        expected = await _apply(store, steps)
        assert expected.reactions == (("👍", ("c",)), ("🎉", ("b",)))
        assert (await _stored(store)).reactions == expected.reactions
    finally:
        await store.close()


async def test_a_version_6_database_keeps_its_reactions_in_order(tmp_path: Path) -> None:
    path = tmp_path / "v6.db"
    connection = sqlite3.connect(path)
    for script in MIGRATIONS[:6]:
        connection.executescript(script)
    connection.execute("PRAGMA user_version = 6")
    connection.execute("INSERT INTO rooms (name) VALUES ('lobby')")
    connection.execute(
        "INSERT INTO messages (room_id, seq, sender, text, action, ts_ms, rev, author) "
        "VALUES (1, 1, 'alice', 'hi', 0, 1700000000000, 4, 'account:alice')"
    )
    # Version 6 numbered a message's reactions 0, 1, 2... grouped by emoji.
    rows = [(0, "👍", "bob"), (1, "👍", "carol"), (2, "🎉", "dave"), (3, "ok", "erin")]
    connection.executemany(
        "INSERT INTO reactions (room_id, seq, position, emoji, nick) VALUES (1, 1, ?, ?, ?)",
        rows,
    )
    connection.commit()
    connection.close()
    store = SqliteStore(str(path))
    await store.open()
    try:
        old = await _stored(store)
        assert old.reactions == (("👍", ("bob", "carol")), ("🎉", ("dave",)), ("ok", ("erin",)))
        changed = old.react("🎉", "frank", False, 5)  # into a group in the middle
        assert changed is not None
        assert await done_of(store.change_reaction, changed, "🎉", "frank", False) is None
        changed = changed.react("👍", "bob", True, 6)
        assert changed is not None
        assert await done_of(store.change_reaction, changed, "👍", "bob", True) is None
        assert (
            (await _stored(store)).reactions
            == changed.reactions
            == (
                ("👍", ("carol",)),
                ("🎉", ("dave", "frank")),
                ("ok", ("erin",)),
            )
        )
    finally:
        await store.close()
