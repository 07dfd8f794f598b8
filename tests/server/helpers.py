"""Helpers shared by the server tests."""

from __future__ import annotations

import asyncio

from tests.support import TIMEOUT, Json, LineClient

__all__ = ["Clients", "join", "prove_alive", "request_and_see"]


class Clients:
    """Opens JSON line clients to a server and remembers them, so none is left open."""

    def __init__(self) -> None:
        self._open: list[LineClient] = []

    async def connect(self, port: int) -> LineClient:
        """A bare TCP connection; nothing is read yet (not even the server's hello)."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
        client = LineClient(reader, writer)
        self._open.append(client)
        return client

    async def track_streams(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> LineClient:
        """A client over streams the test opened itself (say, from another source address)."""
        return self.track(LineClient(reader, writer))

    def track(self, client: LineClient) -> LineClient:
        """Close `client` with the others at the end of the test."""
        self._open.append(client)
        return client

    async def open(self, port: int) -> LineClient:
        """Connect and read the server's hello."""
        client = await self.connect(port)
        hello = await client.recv()
        assert hello["type"] == "hello", hello
        return client

    async def registered(self, port: int, nick: str, *rooms: str) -> LineClient:
        """Connect, register `nick` and join `rooms`, consuming the replies."""
        client = await self.open(port)
        welcome = await client.request({"type": "hello", "nick": nick})
        assert welcome["type"] == "welcome", welcome
        for room in rooms:
            await join(client, room, nick)
        return client

    async def close_all(self) -> None:
        opened, self._open = self._open, []
        await asyncio.gather(*(client.close() for client in opened))


async def join(client: LineClient, room: str, nick: str) -> Json:
    """Join `room` as `nick`; return the `room` reply once the own `joined` has arrived."""
    reply = await client.request({"type": "join", "room": room})
    assert reply["type"] == "room", reply
    await client.expect("joined", room=reply["room"], nick=nick)
    return reply


async def prove_alive(client: LineClient, other: LineClient, room: str, text: str) -> None:
    """`client` can still talk in `room` and `other` (also in it) hears it, and vice versa."""
    ack = await client.request({"type": "say", "room": room, "text": text})
    assert ack["type"] == "ack", ack
    heard = await other.expect("message", room=room, text=text)
    assert heard["seq"] == ack["seq"]
    pong = await other.request({"type": "ping", "token": text[:64]})
    assert pong == {"type": "pong", "token": text[:64], "re": pong["re"]}


async def request_and_see(
    client: LineClient, message: Json, *broadcasts: str, timeout: float = TIMEOUT
) -> tuple[Json, dict[str, Json]]:
    """Send `message` with an id; return its direct reply and the first of each broadcast type.

    The order between a reply and the broadcasts it causes is not part of the contract, so
    this reads until it has all of them, whatever their order.
    """
    request_id = message.setdefault("id", f"r{id(message)}")
    await client.send(message)
    reply: Json | None = None
    seen: dict[str, Json] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while reply is None or len(seen) < len(broadcasts):
        got = await client.recv(max(0.0, deadline - loop.time()))
        if got.get("re") == request_id:
            reply = got
        elif got["type"] in broadcasts and got["type"] not in seen:
            seen[got["type"]] = got
    return reply, seen
