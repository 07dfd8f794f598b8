"""How long a `ChatClient` holds the event loop while one huge `history` page arrives.

A scripted server on 127.0.0.1 port 0 answers the client's `join` with a single
`history` line of N short messages (N=150,000 is a 20 MB line). A ticker task
wakes every 10 ms; its longest gap is the longest time the loop was blocked. A
reader task drains `client.events()` at the same time. Prints the time from the
join until the reader has the last message, the longest stall, and whether the
reader saw `Lagged`.

    python -m bench.client_page --messages 150000
"""

from __future__ import annotations

import argparse
import asyncio
import json

from chat_client import ChatClient, ClientSettings, Lagged
from protocol import ChatMessage, encode_chat_message

TS = "2026-11-23T15:04:05.123Z"
HELLO = b'{"type":"hello","server":"bench","protocol":1,"motd":"","password_required":false}\n'


def page_body(count: int) -> bytes:
    return b",".join(
        encode_chat_message("lobby", seq, "bob", f"message number {seq}", False, TS)[:-1]
        for seq in range(1, count + 1)
    )


async def serve_page(body: bytes) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(HELLO)
        hello = json.loads(await reader.readline())
        welcome = {"type": "welcome", "nick": hello["nick"], "rooms": [], "re": hello["id"]}
        writer.write(json.dumps(welcome).encode() + b"\n")
        join = json.loads(await reader.readline())
        room = {"type": "room", "room": "lobby", "topic": "", "members": [], "re": join["id"]}
        writer.write(json.dumps(room).encode() + b"\n")
        writer.write(b'{"type":"history","room":"lobby","more":false,"messages":[')
        writer.write(body + b"]}\n")
        await writer.drain()
        while line := await reader.readline():
            if b'"quit"' in line:
                writer.write(b'{"type":"bye","reason":"quit"}\n')
                break
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def measure(count: int) -> None:
    body = page_body(count)
    server = await serve_page(body)
    port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    gaps: list[float] = []
    lagged = 0

    async def tick() -> None:
        last = loop.time()
        while True:
            await asyncio.sleep(0.01)
            now = loop.time()
            gaps.append(now - last)
            last = now

    async with ChatClient("127.0.0.1", port, "bench", settings=ClientSettings()) as client:

        async def read() -> None:
            nonlocal lagged
            async for event in client.events():
                if isinstance(event, Lagged):
                    lagged += event.dropped
                elif isinstance(event, ChatMessage) and event.seq == count:
                    return

        ticker = asyncio.create_task(tick())
        started = loop.time()
        reader = asyncio.create_task(read())
        await client.join("lobby")
        await reader
        took = loop.time() - started
        await asyncio.sleep(0.05)  # let the ticker see the last stall before it stops
        ticker.cancel()
    server.close()
    await server.wait_closed()
    print(
        f"{count:,} messages in one {len(body) / 1e6:.1f} MB history line: delivered in "
        f"{took:.2f} s; longest loop stall {max(gaps) * 1000:.0f} ms; lagged {lagged}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=150_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    for _ in range(args.repeat):
        asyncio.run(measure(args.messages))


if __name__ == "__main__":
    main()
