"""The client library given every node of a chat: a node killed under it costs no line."""

from __future__ import annotations

import asyncio

from chat_client import ChatClient, ClientSettings, Connected
from protocol import ChatMessage
from tests.support import TIMEOUT, registered

from .conftest import Nodes

FAST = ClientSettings(backoff_initial=0.05, backoff_max=0.2, connect_timeout=2.0)


async def test_chat_client_moves_to_another_node_and_resumes(node: Nodes) -> None:
    a, b = await node(), await node()
    writer = await registered(b.port, "writer", "x")
    client = ChatClient(
        "127.0.0.1", a.port, "reader", settings=FAST, alternates=[("127.0.0.1", b.port)]
    )
    await client.connect()
    await client.join("x")
    total = 150
    got: list[int] = []
    ports: list[int] = []
    done = asyncio.Event()

    async def read() -> None:
        async for event in client.events():
            if isinstance(event, Connected):
                ports.append(client.port)
            if isinstance(event, ChatMessage) and event.room == "x":
                got.append(event.seq)
                if event.seq == 40 and a.process.returncode is None:
                    a.process.kill()  # SIGKILL mid-stream
                if event.seq == total:
                    done.set()

    reading = asyncio.create_task(read())
    for i in range(total):
        await writer.send({"type": "say", "room": "x", "text": f"m{i + 1}"})
        if i % 10 == 9:
            await asyncio.sleep(0.02)
    await asyncio.wait_for(done.wait(), 4 * TIMEOUT)
    assert got == list(range(1, total + 1))  # no gap, no duplicate, in order
    assert client.port == b.port  # it moved to the living node
    reading.cancel()
    await client.close()
    await writer.close()
    await a.wait()
