"""Server CPU per `say` message, with the sockets taken out.

The fan-out benchmark measures the whole system, and the kernel's share of it (one
`send` per member per loop pass) is the same for every Python server. This one times
only the server's own Python work on the hot path: real `ClientConnection` objects in
one room, each with a transport that just counts bytes, fed `say` lines the way
`data_received` gets them, one loop pass at a time. Each pass: every sender hands in
its lines, then the loop runs once (commit callbacks with the memory store, the
flush). The result is microseconds of CPU per message and per pass, medians of
`--repeat` timed runs.

Each pass's lines are made before the clock starts (every text and id new), and the
clock runs only while the server works on them.

With `--uses typing,reply,react` the members ask for the version-2 features and the
senders use them as `bench.load --features` does: `typing` before every message, a
reply (to the room's latest message) every 4th, a reaction every 10th. The figure is
still per `say`: what the features add to the cost of one message.

Run it with `python -m bench.say_path` (see `--help`).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any, Final

from chat_server.config import ServerConfig
from chat_server.connection import ClientConnection
from chat_server.server import ServerContext
from chat_server.store import MemoryStore

__all__ = ["main"]


class CountingTransport:
    """Stands in for a socket: accepts every write at once and counts the bytes."""

    def __init__(self) -> None:
        self.written = 0
        self.errors = 0
        self.watch = False  # look for error lines (costs a scan of every write: untimed only)

    def write(self, data: bytes) -> None:
        self.written += len(data)
        if self.watch and b'"type":"error"' in data:
            self.errors += 1

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


USES: Final = ("typing", "reply", "react")
REPLY_EVERY: Final = 4  # as bench.load_clients
REACT_EVERY: Final = 10
_TYPING: Final = b'{"type":"typing","room":"lobby","state":"active"}\n'


def _featured_lines(
    sender: int, first: int, count: int, latest: int, uses: frozenset[str]
) -> bytes:
    """`count` lines of `sender` from message `first` on, using `uses`; `latest`: a seq.

    Every text and id is new: pydantic-core caches short JSON strings, and lines
    repeated pass after pass made the say path look about 20 % cheaper than it is.
    """
    out = []
    for k in range(first, first + count):
        if "typing" in uses:
            out.append(_TYPING)
        text = b"message %d from sender %d, some words" % (k, sender)
        if "reply" in uses and k % REPLY_EVERY == 0 and latest:
            out.append(
                b'{"type":"say","room":"lobby","text":"%s","reply_to":%d,"id":"%d-%d"}\n'
                % (text, latest, sender, k)
            )
        else:
            out.append(
                b'{"type":"say","room":"lobby","text":"%s","id":"%d-%d"}\n' % (text, sender, k)
            )
        if "react" in uses and k % REACT_EVERY == 0 and latest:
            out.append(b'{"type":"react","room":"lobby","seq":%d,"emoji":"+1"}\n' % latest)
    return b"".join(out)


def watch(transports: list[CountingTransport], on: bool) -> None:
    for transport in transports:
        transport.watch = on


def run(
    members: int,
    senders: int,
    per_pass: int,
    passes: int,
    repeat: int,
    clock: Callable[[], float] = time.perf_counter,
    uses: frozenset[str] = frozenset(),
) -> list[float]:
    """Seconds (of `clock`) for `passes` loop passes, once per repeat."""
    loop = asyncio.new_event_loop()
    config = ServerConfig(host="127.0.0.1", port=0, db_path=":memory:", rate=0, max_per_ip=0)
    context = ServerContext(config, MemoryStore(), loop)
    transports = [CountingTransport() for _ in range(members)]
    connections = []
    features = b',"features":["typing","reply","edit","react"]' if uses else b""
    for i, transport in enumerate(transports):
        connection = ClientConnection(context)
        connection.connection_made(transport)  # type: ignore[arg-type]
        connection.data_received(
            b'{"type":"hello","nick":"user%d"%s}\n{"type":"join","room":"lobby"}\n' % (i, features)
        )
        connections.append(connection)
    sent = 0
    reactions = [0]

    def one_pass() -> float:
        """One pass of every sender's lines; the seconds the server worked on them."""
        nonlocal sent
        room = context.hub.rooms.get("lobby")
        latest = room.delivered_seq if room is not None else 0
        made = [_featured_lines(s, sent, per_pass, latest, uses) for s in range(senders)]
        if "react" in uses and latest:
            reactions[0] += senders * sum(
                1 for k in range(sent, sent + per_pass) if k % REACT_EVERY == 0
            )
        sent += per_pass
        start = clock()
        for sender in range(senders):
            connections[sender].data_received(made[sender])
        loop.run_until_complete(asyncio.sleep(0))
        return clock() - start

    warm_up = max(10, passes // 10)
    try:
        watch(transports, True)  # every kind of line is refused or not from the start
        for _ in range(warm_up):  # warm up, and settle the joins
            one_pass()
        watch(transports, False)
        timings = [sum(one_pass() for _ in range(passes)) for _ in range(repeat)]
        watch(transports, True)
        for _ in range(warm_up):
            one_pass()
    finally:
        loop.close()
    if any(t.written == 0 for t in transports):
        raise RuntimeError("a member received nothing: the benchmark is not measuring fan-out")
    room = context.hub.rooms.get("lobby")
    expected = (2 * warm_up + passes * repeat) * senders * per_pass
    if room is None or room.delivered_seq != expected:
        # A refused line (flood control, byte limits) costs far less than a delivered one:
        # every line must become a message, or the figure is not the say path's.
        got = room.delivered_seq if room is not None else 0
        raise RuntimeError(f"{got} of {expected} lines became messages: some were refused")
    if uses:
        if errors := sum(t.errors for t in transports):
            raise RuntimeError(f"{errors} writes held an error: a feature line was refused")
        if room.delivered_rev != expected + reactions[0]:
            raise RuntimeError(f"rev {room.delivered_rev}: not every reaction became a change")
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
    parser.add_argument(
        "--uses",
        default="",
        help=f"version-2 features the senders use, out of {','.join(USES)} (or 'all')",
    )
    args = parser.parse_args(argv)
    named = {u.strip() for u in args.uses.split(",") if u.strip()}
    uses = frozenset(USES) if named == {"all"} else frozenset(named)
    if bad := sorted(uses - set(USES)):
        parser.error(f"unknown --uses {bad}: choose from {', '.join(USES)}")
    clock = time.thread_time if args.cpu else time.perf_counter
    timings = run(args.members, args.senders, args.per_pass, args.passes, args.repeat, clock, uses)
    seconds = statistics.median(timings)
    messages = args.passes * args.senders * args.per_pass
    print(
        f"{args.members} members, {args.senders * args.per_pass} messages per pass: "
        f"{seconds / messages * 1e6:.2f} us per message, "
        f"{seconds / args.passes * 1e6:.1f} us per pass (median of {args.repeat}"
        f"{', CPU time' if args.cpu else ''}"
        f"{', using ' + ','.join(sorted(uses)) if uses else ''})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
