"""The library's accounts (version 2): register, log in, markers, away, stored DMs across drops."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TypeVar

import pytest

from chat_client import ChatClient, Connected, RequestError
from chat_client.dm_tracking import DmTracker
from chat_server.server import ChatServer
from protocol import AwayChanged, DirectMessage, ErrorCode, ReadMarker
from tests.client.test_library import FAST, next_event
from tests.support import TIMEOUT, make_config

PASSWORD = "correct horse"
FEATURES = ("accounts", "read", "away")


E = TypeVar("E")


async def next_of(chat: ChatClient, kind: type[E]) -> E:
    """The next event of `kind` (others are skipped)."""
    event = await next_event(chat, kind)
    assert isinstance(event, kind)
    return event


def client(port: int, nick: str, password: str | None = PASSWORD) -> ChatClient:
    return ChatClient(
        "127.0.0.1", port, nick, settings=FAST, features=FEATURES, account_password=password
    )


async def make_account(port: int, nick: str) -> None:
    async with ChatClient("127.0.0.1", port, nick, settings=FAST) as guest:
        await guest.register(PASSWORD)


def test_dm_tracker_delivers_each_seq_once() -> None:
    tracker = DmTracker()
    assert [tracker.deliver("Bob", seq) for seq in (1, 3, 1, 2, 3, 4)] == [
        True,
        True,
        False,
        True,
        False,
        True,
    ]
    assert (tracker.since("bob"), tracker.conversations) == (4, ["bob"])


async def test_register_then_log_in_and_wrong_password_is_final(server: ChatServer) -> None:
    await make_account(server.port, "alice")
    async with client(server.port, "alice") as alice:
        assert alice.session.welcome is not None and alice.session.welcome.account
        assert "correct horse" not in repr(alice) + repr(alice.session)
    wrong = client(server.port, "alice", "not the one")
    with pytest.raises(RequestError) as caught:
        await asyncio.wait_for(wrong.connect(), TIMEOUT)
    assert caught.value.code is ErrorCode.AUTH_FAILED
    await wrong.close()


async def test_markers_away_and_offline_dms(server: ChatServer) -> None:
    await make_account(server.port, "alice")
    await make_account(server.port, "bob")
    async with client(server.port, "alice") as alice:
        for n in range(3):
            await alice.dm("bob", f"offline {n}")
        await alice.join("lobby")
        async with client(server.port, "bob") as bob:
            got = [await next_of(bob, DirectMessage) for _ in range(3)]
            assert [(m.text, m.seq) for m in got] == [(f"offline {n}", n + 1) for n in range(3)]
            page = await bob.dm_history("alice", after=1)
            assert [m.seq for m in page.messages] == [2, 3]
            async with client(server.port, "bob") as bob2:
                await bob.mark_read(3, with_="alice")
                marker = await next_of(bob2, ReadMarker)
                assert (marker.with_, marker.seq) == ("alice", 3)
            await bob.join("lobby")
            await bob.away("lunch")
            away = await next_of(alice, AwayChanged)
            assert (away.nick, away.text) == ("bob", "lunch")


async def test_reconnect_resumes_dm_conversations_without_loss_or_duplicates(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "h.db")
    server = ChatServer(make_config(db_path=db))
    await server.start()
    port = server.port
    await make_account(port, "alice")
    await make_account(port, "bob")
    bob = client(port, "bob")
    await bob.connect()
    alice = client(port, "alice")
    await alice.connect()
    try:
        await alice.dm("bob", "before")
        assert (await next_of(bob, DirectMessage)).text == "before"
        await alice.close()
        await server.close()  # bob drops; alice writes while he is away
        server = ChatServer(make_config(db_path=db, port=port))
        await server.start()
        async with client(port, "alice") as again:
            for n in range(3):
                await again.dm("bob", f"while away {n}")
        texts: list[tuple[str, int | None]] = []
        while len(texts) < 3:
            event = await next_event(bob, object)
            if isinstance(event, DirectMessage):
                texts.append((event.text, event.seq))
            else:
                assert not isinstance(event, Connected) or event.nick == "bob"
        assert texts == [(f"while away {n}", n + 2) for n in range(3)]
        await asyncio.sleep(0.2)
        assert [e for e in bob.events_nowait() if isinstance(e, DirectMessage)] == []
    finally:
        await bob.close()
        await server.close()
