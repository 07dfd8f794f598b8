"""The library reads a `room` reply far longer than 64 KiB from a real server ("Large rooms")."""

from __future__ import annotations

import asyncio

from chat_client import ChatClient, ClientSettings
from tests.conftest import StartServer
from tests.support import LineClient, registered

FAST = ClientSettings(backoff_initial=0.05, backoff_max=0.2, connect_timeout=2.0)
MEMBERS = 200
AWAY = "\U0001f600" * 100  # the longest away text, 400 bytes in UTF-8


async def test_a_room_reply_over_64_kib_arrives_whole(start_server: StartServer) -> None:
    server = await start_server(presence_limit=50, max_per_ip=0)
    gate = asyncio.Semaphore(50)

    async def member(i: int) -> LineClient:
        async with gate:
            client = await registered(server.port, f"member{i:03d}".ljust(32, "x"), "big")
            away = await client.request({"type": "away", "text": AWAY})
            assert away["type"] == "ack", away
            return client

    members = await asyncio.gather(*(member(i) for i in range(MEMBERS)))
    try:
        async with ChatClient("127.0.0.1", server.port, "reader", settings=FAST) as reader:
            info = await reader.join("big")
            assert len(info.members) == MEMBERS + 1 and info.members[-1] == "reader"
            assert info.away is not None and len(info.away) == MEMBERS
            assert set(info.away.values()) == {AWAY}
            size = sum(len(n) + 3 for n in info.members) + len(AWAY.encode()) * MEMBERS
            assert size > 64 * 1024  # the line was longer than a default StreamReader takes
    finally:
        await asyncio.gather(*(m.close() for m in members))
