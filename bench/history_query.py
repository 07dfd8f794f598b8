"""History queries on a big SQLite store, and how fast the store commits.

Writes --messages messages (default 1,000,000) into one room of a fresh
database through `SqliteStore` (the writer thread and group commit the server
uses; reported as messages committed per second), plus a little traffic in a
few other rooms. Then times, as medians of --repeat runs, the queries the
server makes: the latest page (join, `history`), a `before` page from the
middle (scrolling back), an `after` page near the end (`join since` replay),
and opening the store again (start-up).

    python -m bench.history_query --messages 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from chat_server.sqlite_store import SqliteStore
from chat_server.store import StoredMessage

BATCH = 20_000  # messages queued before waiting for their commits


def countdown(done: asyncio.Future[None], remaining: int) -> Callable[[BaseException | None], None]:
    """A commit callback that resolves `done` after `remaining` calls (or the first error)."""

    def committed(error: BaseException | None) -> None:
        nonlocal remaining
        if error is not None and not done.done():
            done.set_exception(error)
        remaining -= 1
        if remaining == 0 and not done.done():
            done.set_result(None)

    return committed


async def fill(store: SqliteStore, room: str, count: int, first_seq: int = 1) -> float:
    """Append `count` messages; return messages committed per second."""
    loop = asyncio.get_running_loop()
    store.create_room(room)
    text = "a typical chat line of about sixty characters, give or take"
    started = time.perf_counter()
    seq = first_seq
    end = first_seq + count
    while seq < end:
        batch_end = min(end, seq + BATCH)
        done: asyncio.Future[None] = loop.create_future()
        committed = countdown(done, batch_end - seq)
        for n in range(seq, batch_end):
            store.append(
                StoredMessage(room, n, "bench", text, False, 1_764_000_000_000 + n), committed
            )
        await done
        seq = batch_end
    return count / (time.perf_counter() - started)


async def timed(repeat: int, query: Callable[[], Awaitable[object]]) -> float:
    """Median milliseconds of `query`."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await query()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


async def run(messages: int, repeat: int, fsync: bool) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = str(Path(directory) / "history.sqlite3")
        store = SqliteStore(path, fsync=fsync)
        await store.open()
        rate = await fill(store, "big", messages)
        for other in ("dev", "ops", "random"):
            await fill(store, other, 1000)
        mode = "fsync on every commit" if fsync else "fsync at checkpoints"
        print(
            f"committed {messages:,} messages at {rate:,.0f} messages/s (group commit, WAL, {mode})"
        )
        middle, near_end = messages // 2, messages - 400
        results = {
            "latest 50 (join, history)": await timed(repeat, lambda: store.latest("big", 50)),
            f"before {middle:,}, 50 (scroll back)": await timed(
                repeat, lambda: store.before("big", middle, 50)
            ),
            f"after {near_end:,}, 500 (join since)": await timed(
                repeat, lambda: store.after("big", near_end, 500)
            ),
            "after 0, 500 (replay from the start)": await timed(
                repeat, lambda: store.after("big", 0, 500)
            ),
        }
        await store.close()
        size_mib = await asyncio.to_thread(os.path.getsize, path) / 2**20

        async def reopen() -> None:
            again = SqliteStore(path)
            rooms = await again.open()
            assert rooms["big"].last_seq == messages
            await again.close()

        results["open the store (start-up)"] = await timed(repeat, reopen)
        print(f"database: {size_mib:,.0f} MiB; medians of {repeat} runs:")
        for name, ms in results.items():
            print(f"  {name:<40} {ms:8.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--fsync", action="store_true", help="as `chat-server --fsync`")
    args = parser.parse_args()
    asyncio.run(run(args.messages, args.repeat, args.fsync))


if __name__ == "__main__":
    main()
