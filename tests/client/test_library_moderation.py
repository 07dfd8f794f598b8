"""ChatClient's search and moderation calls against a real server on loopback."""

from __future__ import annotations

import asyncio

import pytest

from chat_client import ChatClient, ClientEvent, ClientSettings, RequestError
from chat_server.server import ChatServer
from protocol import Banned, ErrorCode, Kicked, ModeChanged
from tests.support import TIMEOUT

FAST = ClientSettings(backoff_initial=0.05, backoff_max=0.2, connect_timeout=2.0)
FEATURES = ("accounts", "search", "moderation")


async def next_event(client: ChatClient, kind: type, timeout: float = TIMEOUT) -> ClientEvent:
    async def find() -> ClientEvent:
        async for event in client.events():
            if isinstance(event, kind):
                return event
        raise AssertionError("event stream ended")

    return await asyncio.wait_for(find(), timeout)


async def test_search_pages_with_the_cursor(server: ChatServer) -> None:
    async with ChatClient("127.0.0.1", server.port, "alice", settings=FAST) as alice:
        await alice.join("lobby")
        for n in range(5):
            await alice.say("lobby", f"report number {n}")
            await asyncio.sleep(0.002)
        first = await alice.search("report", limit=3)
        assert [m.text for m in first.results] == [f"report number {n}" for n in (4, 3, 2)]
        assert first.more and first.cursor is not None
        rest = await alice.search("report", limit=3, before=first.cursor)
        assert [m.text for m in rest.results] == ["report number 1", "report number 0"]
        assert not rest.more
        with pytest.raises(RequestError) as refused:
            await alice.search("x", with_="bob")
        assert refused.value.code is ErrorCode.NOT_ALLOWED


async def test_op_kick_ban_unban_bans_and_their_events(server: ChatServer) -> None:
    alice = ChatClient("127.0.0.1", server.port, "alice", settings=FAST, features=FEATURES)
    bob = ChatClient("127.0.0.1", server.port, "bob", settings=FAST, features=FEATURES)
    async with alice, bob:
        await alice.register("correct horse")
        await bob.register("correct horse")
        info = await alice.join("lobby")
        assert info.ops == ["alice"]
        await bob.join("lobby")
        with pytest.raises(RequestError) as refused:
            await bob.kick("lobby", "alice")
        assert refused.value.code is ErrorCode.NOT_ALLOWED
        await alice.op("lobby", "bob")
        mode = await next_event(bob, ModeChanged)
        assert isinstance(mode, ModeChanged) and (mode.nick, mode.op) == ("bob", True)
        await alice.deop("lobby", "bob")
        await alice.kick("lobby", "bob", "cool off")
        kicked = await next_event(bob, Kicked)
        assert isinstance(kicked, Kicked) and kicked.reason == "cool off"
        await bob.join("lobby")
        await alice.ban("lobby", "bob", "again")
        banned = await next_event(bob, Banned)
        assert isinstance(banned, Banned) and not banned.removed
        assert [ban.nick for ban in await alice.bans("lobby")] == ["bob"]
        with pytest.raises(RequestError) as rejoin:
            await bob.join("lobby")
        assert rejoin.value.code is ErrorCode.BANNED
        await alice.unban("lobby", "bob")
        assert await alice.bans("lobby") == []
        await bob.join("lobby")
