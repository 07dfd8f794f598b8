"""Server CPU per `say` message, with the sockets taken out.

The fan-out benchmark measures the whole system, and the kernel's share of it (one
`send` per member per loop pass) is the same for every Python server. This one times
only the server's own Python work on the hot path: real `ClientConnection` objects in
one room, each with a transport that just counts bytes, fed `say` lines the way
`data_received` gets them, one loop pass at a time. Each pass: every sender hands in
its lines, then the loop runs once (commit callbacks with the memory store, the
flush). The result is microseconds of CPU per message and per pass, medians of
`--repeat` timed runs.

Run it with `python -m bench.say_path` (see `--help`).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from chat_server.config import ServerConfig
from chat_server.connection import ClientConnection
from chat_server.server import ServerContext
from chat_server.store import MemoryStore

__all__ = ["main"]


class CountingTransport:
    """Stands in for a socket: accepts every write at once and counts the bytes."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 0) if name == "peername" else default

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _say_lines(sender: int, count: int) -> bytes:
    return b"".join(
        b'{"type":"say","room":"lobby","text":"message %d from sender %d, some words",'
        b'"id":"%d-%d"}\n' % (k, sender, sender, k)
        for k in range(count)
    )


def run(
    members: int,
    senders: int,
    per_pass: int,
    passes: int,
    repeat: int,
    clock: Callable[[], float] = time.perf_counter,
) -> list[float]:
    """Seconds (of `clock`) for `passes` loop passes, once per repeat."""
    loop = asyncio.new_event_loop()
    config = ServerConfig(host="127.0.0.1", port=0, db_path=":memory:", rate=0, max_per_ip=0)
    context = ServerContext(config, MemoryStore(), loop)
    transports = [CountingTransport() for _ in range(members)]
    connections = []
    for i, transport in enumerate(transports):
        connection = ClientConnection(context)
        connection.connection_made(transport)  # type: ignore[arg-type]
        connection.data_received(
            b'{"type":"hello","nick":"user%d"}\n{"type":"join","room":"lobby"}\n' % i
        )
        connections.append(connection)
    lines = [_say_lines(s, per_pass) for s in range(senders)]

    def one_pass() -> None:
        for sender in range(senders):
            connections[sender].data_received(lines[sender])
        loop.run_until_complete(asyncio.sleep(0))

    warm_up = max(10, passes // 10)
    try:
        for _ in range(warm_up):  # warm up, and settle the joins
            one_pass()
        timings = []
        for _ in range(repeat):
            start = clock()
            for _ in range(passes):
                one_pass()
            timings.append(clock() - start)
    finally:
        loop.close()
    if any(t.written == 0 for t in transports):
        raise RuntimeError("a member received nothing: the benchmark is not measuring fan-out")
    room = context.hub.rooms.get("lobby")
    expected = (warm_up + passes * repeat) * senders * per_pass
    if room is None or room.delivered_seq != expected:
        # A refused line (flood control, byte limits) costs far less than a delivered one:
        # every line must become a message, or the figure is not the say path's.
        got = room.delivered_seq if room is not None else 0
        raise RuntimeError(f"{got} of {expected} lines became messages: some were refused")
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.say_path", description=__doc__)
    parser.add_argument("--members", type=int, default=100, help="connections in the room")
    parser.add_argument("--senders", type=int, default=10, help="members that send")
    parser.add_argument("--per-pass", type=int, default=3, help="lines per sender per pass")
    parser.add_argument("--passes", type=int, default=3000, help="loop passes per timed run")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs; the median is shown")
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="time with the thread's CPU clock instead of the wall clock (steadier when "
        "other work shares the cores)",
    )
    args = parser.parse_args(argv)
    clock = time.thread_time if args.cpu else time.perf_counter
    timings = run(args.members, args.senders, args.per_pass, args.passes, args.repeat, clock)
    seconds = statistics.median(timings)
    messages = args.passes * args.senders * args.per_pass
    print(
        f"{args.members} members, {args.senders * args.per_pass} messages per pass: "
        f"{seconds / messages * 1e6:.2f} us per message, "
        f"{seconds / args.passes * 1e6:.1f} us per pass (median of {args.repeat}"
        f"{', CPU time' if args.cpu else ''})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
