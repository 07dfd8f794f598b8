"""What it costs the SQLite store when everyone reacts to one message.

Fills one message with `--reactions` reactions by distinct nicks, one change at a
time as the server makes them, and times the store until the last is committed:
with `change_reaction` (one row per change, what the server does) and, with
`--whole`, with `update` (every reaction of the message rewritten per change, what
it did before schema 7). Then it checks that the message reads back with all of them.

    python -m bench.popular_message --reactions 3000 --whole
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from chat_server.sqlite_store import SqliteStore
from chat_server.store import StoredMessage


async def react_all(path: Path, reactions: int, whole: bool) -> tuple[float, float]:
    """Wall and CPU seconds for `reactions` reactions to one message, all committed."""
    store = SqliteStore(str(path))
    await store.open()
    loop = asyncio.get_running_loop()
    try:
        created: asyncio.Future[BaseException | None] = loop.create_future()
        store.create_room("lobby", created.set_result)
        message = StoredMessage("lobby", 1, "alice", "news", False, 1_700_000_000_000, rev=1)
        appended: asyncio.Future[BaseException | None] = loop.create_future()
        store.append(message, appended.set_result)
        assert await created is None and await appended is None
        started, cpu = time.perf_counter(), time.process_time()
        done: list[asyncio.Future[BaseException | None]] = []
        for n in range(reactions):
            nick = f"user{n}"
            changed = message.react("👍", nick, False, message.rev + 1)
            assert changed is not None
            message = changed
            future: asyncio.Future[BaseException | None] = loop.create_future()
            done.append(future)
            if whole:
                store.update(message, future.set_result)
            else:
                store.change_reaction(message, "👍", nick, False, future.set_result)
        errors = [e for e in await asyncio.gather(*done) if e is not None]
        elapsed = time.perf_counter() - started, time.process_time() - cpu
        if errors:
            raise RuntimeError(f"{len(errors)} changes failed: {errors[0]}")
        stored = await store.message("lobby", 1)
        if stored is None or stored.reactions != message.reactions:
            raise RuntimeError("the message did not read back with every reaction")
        return elapsed
    finally:
        await store.close()


async def run(reactions: int, whole: bool) -> None:
    ways = [("one row per change", False)] + ([("whole rewrite", True)] if whole else [])
    for name, rewrite in ways:
        with tempfile.TemporaryDirectory() as directory:
            wall, cpu = await react_all(Path(directory) / "c.db", reactions, rewrite)
        print(
            f"{reactions:,} reactions to one message, {name}: {wall:.2f} s wall, "
            f"{cpu:.2f} s CPU, {wall / reactions * 1e6:.0f} us per reaction"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reactions", type=int, default=3000)
    parser.add_argument("--whole", action="store_true", help="also time the whole rewrite")
    args = parser.parse_args()
    asyncio.run(run(args.reactions, args.whole))


if __name__ == "__main__":
    main()
