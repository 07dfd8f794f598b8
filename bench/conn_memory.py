"""Where the Python heap of an idle registered connection goes, by source line.

`python -m bench.conn_memory` builds the server's real objects (a `ServerContext` with the
memory store, `ClientConnection`s on transports that only count bytes, as in
`bench.say_path`), registers `--clients` of them with a JSON `hello` that asks for every
version-2 feature the server offers, and prints tracemalloc's growth per connection, the
largest source lines first. What it cannot see: the event loop's transport and socket
objects (uvloop allocates them in C) and the allocator's own overhead; scenario d of
`bench.load` measures the whole RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tracemalloc

from bench.say_path import CountingTransport
from chat_server.config import ServerConfig, supported_features
from chat_server.connection import ClientConnection
from chat_server.server import ServerContext
from chat_server.store import MemoryStore

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.conn_memory", description=__doc__)
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--lines", type=int, default=15, help="source lines to show")
    args = parser.parse_args(argv)
    loop = asyncio.new_event_loop()
    config = ServerConfig(host="127.0.0.1", port=0, db_path=":memory:", rate=0, max_per_ip=0)
    context = ServerContext(config, MemoryStore(), loop)
    features = ",".join(f'"{name}"' for name in supported_features(config))
    transports = [CountingTransport() for _ in range(args.clients)]
    connections = []
    loop.run_until_complete(asyncio.sleep(0))
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for i, transport in enumerate(transports):
        connection = ClientConnection(context)
        connection.connection_made(transport)  # type: ignore[arg-type]
        hello = f'{{"type":"hello","nick":"c{i:05d}","features":[{features}]}}\n'
        connection.data_received(hello.encode())
        connections.append(connection)
    for _ in range(3):
        loop.run_until_complete(asyncio.sleep(0))
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    loop.close()
    if not all(c.registered for c in connections):
        raise RuntimeError("a connection did not register")
    stats = after.compare_to(before, "lineno")
    n = args.clients
    total = sum(s.size_diff for s in stats)
    print(f"{n:,} registered connections: {total / n:,.0f} bytes of Python heap each")
    print(f"{'bytes':>8} {'blocks':>6}  source line (per connection)")
    for stat in stats[: args.lines]:
        frame = stat.traceback[0]
        where = frame.filename.rsplit("site-packages/", 1)[-1]
        for root in ("chat_server/", "protocol/", "bench/"):
            if root in where:
                where = root + where.rsplit(root, 1)[-1]
        print(f"{stat.size_diff / n:8.1f} {stat.count_diff / n:6.2f}  {where}:{frame.lineno}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
