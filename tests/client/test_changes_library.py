"""The library's replies, edits, deletes and reactions, and resuming with `changed_since`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chat_client import ChatClient, ClientSettings, Connected, MessageUpdated, MessageView
from chat_server.server import ChatServer
from protocol import ChatMessage, MessageDeleted, MessageEdited, ReactionChanged
from tests.conftest import StartServer
from tests.support import TIMEOUT, LineClient, open_client

FAST = ClientSettings(backoff_initial=0.05, backoff_max=0.2, connect_timeout=2.0)
FEATURES = ["reply", "edit", "react", "typing"]


class Cutter:
    """A loopback TCP relay to the server that the test can cut and keep shut."""

    def __init__(self, port: int) -> None:
        self._target = port
        self.open = True
        self._pairs: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
        self._pairs.append((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        """Drop every relayed connection and refuse new ones until `restore`."""
        self.open = False
        for down, up in self._pairs:
            down.transport.abort()
            up.transport.abort()
        self._pairs.clear()

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@contextlib.asynccontextmanager
async def cutter(server: ChatServer) -> AsyncIterator[Cutter]:
    relay = Cutter(server.port)
    await relay.start()
    try:
        yield relay
    finally:
        await relay.close()


async def bob_in(port: int) -> LineClient:
    bob = await open_client(port)
    await bob.request({"type": "hello", "nick": "bob", "features": FEATURES})
    await bob.request({"type": "join", "room": "lobby"})
    return bob


def state(message: ChatMessage | dict[str, Any]) -> tuple[object, ...]:
    """What a view must agree on: seq, text, edited, deleted, reactions, rev, reply_to."""
    m = message.model_dump(by_alias=True) if isinstance(message, ChatMessage) else message
    return (
        m["seq"],
        m["text"],
        m.get("edited"),
        bool(m.get("deleted")),
        m.get("reactions") or {},
        m["rev"],
        m.get("reply_to"),
    )


async def drain_until(
    client: ChatClient,
    view: MessageView,
    done: Any,
    seen: list[object] | None = None,
    timeout: float = TIMEOUT,
) -> list[object]:
    seen = [] if seen is None else seen

    async def run() -> None:
        async for event in client.events():
            seen.append(event)
            view.apply(event)
            if done(event, view):
                return

    await asyncio.wait_for(run(), timeout)
    return seen


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_a_client_that_missed_changes_has_the_server_state_after_resuming(
    start_server: StartServer, store: str, tmp_path: Path
) -> None:
    db = ":memory:" if store == "memory" else str(tmp_path / "chat.db")
    server = await start_server(db_path=db)
    bob = await bob_in(server.port)
    async with cutter(server) as relay:
        alice = ChatClient("127.0.0.1", relay.port, "alice", settings=FAST, features=FEATURES)
        try:
            await resume_after_missed_changes(alice, relay, bob)
        finally:
            await alice.close()
    await bob.close()


async def resume_after_missed_changes(alice: ChatClient, relay: Cutter, bob: LineClient) -> None:
    await alice.connect()
    view = MessageView()
    await alice.join("lobby")
    for n in range(1, 9):
        await bob.request({"type": "say", "room": "lobby", "text": f"m{n}"})
    mine = await alice.say("lobby", "alice's own")
    answer = await alice.reply("lobby", 1, "re: m1")
    await alice.react("lobby", 2, "👀")
    await alice.edit("lobby", mine, "alice's own, fixed")
    await drain_until(alice, view, lambda e, v: isinstance(e, MessageEdited))
    assert view.messages("lobby")[answer - 1].reply_to == 1

    relay.cut()
    for seq, text in ((1, "m1 v2"), (3, "m3 v2"), (1, "m1 v3")):  # 3 edits
        assert (await bob.request({"type": "edit", "room": "lobby", "seq": seq, "text": text}))[
            "type"
        ] == "ack"
    for seq in (4, 5):  # 2 deletes
        await bob.request({"type": "delete", "room": "lobby", "seq": seq})
    reactions = [  # 5 reaction changes
        (6, "👍", False),
        (6, "🎉", False),
        (7, "👍", False),
        (6, "👍", True),
        (2, "👍", False),
    ]
    for seq, emoji, remove in reactions:
        react = {"type": "react", "room": "lobby", "seq": seq, "emoji": emoji}
        assert (await bob.request({**react, "remove": remove}))["type"] == "ack"
    await bob.request({"type": "say", "room": "lobby", "text": "while away"})
    relay.open = True

    connected = asyncio.Event()

    def resumed(event: object, _view: MessageView) -> bool:
        if isinstance(event, Connected):
            connected.set()
        return isinstance(event, ChatMessage) and event.text == "after"

    # once alice is back, one live change and one live message
    events: list[object] = []

    watcher = asyncio.create_task(drain_until(alice, view, resumed, events))
    await asyncio.wait_for(connected.wait(), TIMEOUT)
    await bob.request({"type": "react", "room": "lobby", "seq": 3, "emoji": "✅"})
    await bob.request({"type": "say", "room": "lobby", "text": "after"})
    await watcher

    page = await bob.request({"type": "history", "room": "lobby", "limit": 500})
    assert [state(m) for m in view.messages("lobby")] == [state(m) for m in page["messages"]]
    updated = [e.message.seq for e in events if isinstance(e, MessageUpdated)]
    assert sorted(updated) == [1, 2, 3, 4, 5, 6, 7]  # each changed old message, once
    assert len(updated) == len(set(updated))
    new = [e.seq for e in events if isinstance(e, ChatMessage)]
    assert new == [11, 12]  # the one sent while away, then the live one: no repeats
    live = [e for e in events if isinstance(e, MessageEdited | MessageDeleted | ReactionChanged)]
    # The ✅ made after the reconnect is a live event, or already in the resumed state of
    # seq 3 when the server read it after its commit: never both.
    three = next(e.message for e in events if isinstance(e, MessageUpdated) and e.message.seq == 3)
    rev_of_3 = page["messages"][2]["rev"]
    if live:
        assert [(e.seq, e.rev) for e in live] == [(3, rev_of_3)] and (three.rev or 0) < rev_of_3
    else:
        assert three.rev == rev_of_3 and "✅" in (three.reactions or {})
