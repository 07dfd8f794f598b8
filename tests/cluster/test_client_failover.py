"""The client library given every node of a chat: a node killed under it costs no line."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from chat_client import ChatClient, ClientSettings, Connected
from chat_client.__main__ import parse_args, start_options
from chat_client.tui.app import ChatApp, StartOptions
from protocol import ChatMessage
from tests.client.tui_support import SIZE, joined, log_text, log_view, until
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


async def test_the_tui_given_two_nodes_on_its_command_line_moves_to_the_living_one(
    node: Nodes,
) -> None:
    """`chat-client h:PA,h:PB`: node A killed mid-stream, the log still has every line once."""
    a, b = await node(), await node()
    args = parse_args([f"127.0.0.1:{a.port},127.0.0.1:{b.port}", "--nick", "reader", "--room", "x"])
    options = start_options(args)
    assert isinstance(options, StartOptions), options
    assert (options.host, options.port) == ("127.0.0.1", a.port)
    assert options.alternates == (("127.0.0.1", b.port),)
    app = ChatApp(replace(options, settings=FAST))
    writer = await registered(b.port, "writer", "x")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "x"), "reader in #x on node A")
        assert app.client is not None and app.client.port == a.port
        for i in range(1, 21):
            await writer.send({"type": "say", "room": "x", "text": f"line {i}"})
        await until(pilot, lambda: "line 20" in log_text(app), "the first 20 lines")
        a.process.kill()  # SIGKILL: the TUI must find node B by itself
        for i in range(21, 41):
            await writer.send({"type": "say", "room": "x", "text": f"line {i}"})
        await until(
            pilot,
            lambda: "line 40" in log_text(app),
            "the lines sent while node A was dying",
            timeout=4 * TIMEOUT,
        )
        assert app.client is not None and app.client.port == b.port
        lines = log_view(app).plain_lines
        texts = [line.split(" writer ", 1)[1] for line in lines if " writer line " in line]
        assert texts == [f"line {i}" for i in range(1, 41)]  # no gap, no duplicate
        assert sum("is taken" in line for line in lines) <= 1  # the dead node's claim, once
    await writer.close()
    await a.wait()
