"""The ceiling for the fan-out benchmark: the least a Python broadcast server can do.

One room holding every connection. Complete lines are read and, without any parsing or
validation, the same bytes go to every member, the sender too. Output is coalesced: all
lines read during one event-loop pass are joined once and each member gets one
`transport.write` per pass. On connect a member gets one greeting line, so a client knows
it is in the room. Nothing else: no names, no history, no flow control.

Run it with `python -m bench.ceiling --host 127.0.0.1 --port 0`; it prints
`listening on HOST:PORT` and serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable
from typing import Final, cast

__all__ = ["Room", "main"]

GREETING: Final = b'{"type":"hello","server":"ceiling"}\n'


class Room:
    """Every member, and the lines read during the current loop pass."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.members: set[Member] = set()
        self.pending: list[bytes] = []

    def publish(self, lines: bytes) -> None:
        if not self.pending:
            self.loop.call_soon(self.flush)
        self.pending.append(lines)

    def flush(self) -> None:
        data = b"".join(self.pending)
        self.pending.clear()
        for member in self.members:
            member.transport.write(data)


class Member(asyncio.Protocol):
    def __init__(self, room: Room) -> None:
        self.room = room
        self.buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(GREETING)
        self.room.members.add(self)

    def data_received(self, data: bytes) -> None:
        if self.buf:
            data = self.buf + data
        end = data.rfind(b"\n") + 1
        if end == len(data):
            self.buf = b""
        else:
            self.buf = data[end:]
            data = data[:end]
        if end:
            self.room.publish(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.room.members.discard(self)


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    room = Room(loop)
    server = await loop.create_server(lambda: Member(room), host, port, backlog=4096)
    bound = server.sockets[0].getsockname()
    print(f"listening on {bound[0]}:{bound[1]}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    for member in list(room.members):
        member.transport.abort()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - the benchmark wants uvloop
        pass
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
