"""History queries on a big SQLite store, and how fast the store commits.

Writes --messages messages (default 1,000,000) into one room of a fresh
database through `SqliteStore` (the writer thread and group commit the server
uses; reported as messages committed per second), plus a little traffic in a
few other rooms. Then times, as medians of --repeat runs, the queries the
server makes: the latest page (join, `history`), a `before` page from the
middle (scrolling back), an `after` page near the end (`join since` replay),
and opening the store again (start-up).

With --search the messages are varied chat lines (a fixed-seed generator over a
Zipf-like vocabulary of 5,000 words, plus a few senders), and the search queries
are timed instead, as p50 and p95 of --repeat runs each: a common word, a rare
word, two words, a phrase, a prefix, with `room` and `from` filters, and the
second page through a cursor. --idle waits that many seconds after the fill before the
queries (the writer merges the index while it is idle).

With --index-cost the store alone is timed the way scenario e of bench/load.py drives
it: messages shaped like the load generator's (`s=<sender> n=<counter> t=<ns> xxx…`,
64 characters) appended in groups of 20, each group awaited before the next, on a
store with the search index and on one whose index was turned off
(`chat-sqlite-noindex`), in turn, --repeat times; reported as CPU time per message
(medians) of the whole process and of the store's writer thread alone (where the
index's work runs), which is what the index takes from the server.

    python -m bench.history_query --messages 1000000
    python -m bench.history_query --search --messages 1000000 --repeat 200 --idle 20
    python -m bench.history_query --index-cost --messages 100000 --repeat 5
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from chat_server.search import SearchPage, parse_query
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


def chat_lines(seed: int = 7) -> Callable[[int], tuple[str, str]]:
    """A fixed-seed generator of (sender, text): 4-14 words from a Zipf-like vocabulary."""
    rng = random.Random(seed)
    vocabulary = [f"w{n}" for n in range(5_000)]
    vocabulary[:8] = ["the", "deploy", "lunch", "meeting", "café", "review", "build", "friday"]
    weights = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(vocabulary))))
    senders = [f"user{n}" for n in range(50)]

    def line(_n: int) -> tuple[str, str]:
        words = rng.choices(vocabulary, cum_weights=weights, k=rng.randint(4, 14))
        return rng.choice(senders), " ".join(words)

    return line


async def fill(
    store: SqliteStore,
    room: str,
    count: int,
    first_seq: int = 1,
    lines: Callable[[int], tuple[str, str]] | None = None,
) -> float:
    """Append `count` messages; return messages committed per second."""
    loop = asyncio.get_running_loop()
    store.create_room(room)
    text = "a typical chat line of about sixty characters, give or take"
    sender = "bench"
    started = time.perf_counter()
    seq = first_seq
    end = first_seq + count
    while seq < end:
        batch_end = min(end, seq + BATCH)
        done: asyncio.Future[None] = loop.create_future()
        committed = countdown(done, batch_end - seq)
        for n in range(seq, batch_end):
            if lines is not None:
                sender, text = lines(n)
            store.append(
                StoredMessage(room, n, sender, text, False, 1_764_000_000_000 + n), committed
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


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


async def run_search(messages: int, repeat: int, directory: str | None, idle: float) -> None:
    with tempfile.TemporaryDirectory(dir=directory) as folder:
        path = str(Path(folder) / "search.sqlite3")
        store = SqliteStore(path)
        await store.open()
        lines = chat_lines()
        rate = await fill(store, "big", messages, lines=lines)
        for other in ("dev", "ops", "random"):
            await fill(store, other, 10_000, lines=lines)
        size_mib = await asyncio.to_thread(os.path.getsize, path) / 2**20
        print(
            f"committed {messages:,} varied messages (FTS5 index filled by the writer) at "
            f"{rate:,.0f} messages/s; database {size_mib:,.0f} MiB"
        )
        if idle:
            print(f"idle for {idle:g} s (the writer merges the index meanwhile)")
            await asyncio.sleep(idle)
        index = store  # the SQLite store is its own search index (FTS5)

        def query(
            text: str, rooms: list[str] | None = None, sender: str | None = None
        ) -> Callable[[], Awaitable[SearchPage]]:
            return lambda: index.search(parse_query(text), rooms, sender, 20, None)

        first = await index.search(parse_query("deploy"), None, None, 20, None)
        cursor = first.cursor

        async def second_page() -> SearchPage:
            return await index.search(parse_query("deploy"), None, None, 20, cursor)

        cases: dict[str, Callable[[], Awaitable[SearchPage]]] = {
            "common word (deploy)": query("deploy"),
            "rare word (w4321)": query("w4321"),
            "two words (lunch friday)": query("lunch friday"),
            'phrase ("the deploy")': query('"the deploy"'),
            "prefix (w12*)": query("w12*"),
            "two-character prefix (de*)": query("de*"),
            "one-character prefix (w*)": query("w*"),
            "accent-free (cafe)": query("cafe"),
            "room filter (deploy in #big)": query("deploy", rooms=["big"]),
            "from filter (deploy from user7)": query("deploy", sender="user7"),
            'hostile (NEAR( OR " col:)': query('NEAR( OR " col:'),
            "second page by cursor (deploy)": second_page,
        }
        print(f"search, 20 hits a page: p50 / p95 of {repeat} runs")
        for name, case in cases.items():
            samples = []
            hits = 0
            for _ in range(repeat):
                started = time.perf_counter()
                page = await case()
                samples.append((time.perf_counter() - started) * 1000)
                hits = len(page.messages)
            p50, p95 = percentiles(samples)
            print(f"  {name:<36} {p50:8.3f} ms {p95:8.3f} ms  ({hits} hits)")
        await store.close()


class TimedStore(SqliteStore):
    """A store that tells how much CPU time its writer thread used, once it is closed."""

    writer_cpu = 0.0

    def _write_loop(self, connection: sqlite3.Connection) -> None:
        try:
            super()._write_loop(connection)
        finally:
            self.writer_cpu = time.thread_time()


async def append_groups(store: SqliteStore, room: str, count: int, group: int) -> float:
    """Append `count` load-like messages in awaited groups; CPU seconds the process spent."""
    loop = asyncio.get_running_loop()
    created: asyncio.Future[BaseException | None] = loop.create_future()
    store.create_room(room, created.set_result)
    assert await created is None
    counters = [0] * group
    started = time.process_time()
    for first in range(1, count + 1, group):
        done: asyncio.Future[None] = loop.create_future()
        last = min(count, first + group - 1)
        committed = countdown(done, last - first + 1)
        for seq in range(first, last + 1):
            sender = seq % group
            counters[sender] += 1
            head = f"s={sender} n={counters[sender]} t={time.monotonic_ns()} "
            text = head + "x" * max(1, 64 - len(head) - 16)
            message = StoredMessage(
                room, seq, f"user{sender}", text, False, 1_764_000_000_000 + seq
            )
            store.append(message, committed)
        await done
    await store.close()  # indexes what is still pending
    return time.process_time() - started


async def run_index_cost(messages: int, repeat: int, directory: str | None) -> None:
    from bench.load_targets import _without_search_index

    names = ("with the index", "index off")
    process: dict[str, list[float]] = {name: [] for name in names}
    writer: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(repeat):
        for name in names:
            with tempfile.TemporaryDirectory(dir=directory) as folder:
                path = str(Path(folder) / "cost.sqlite3")
                if name == "index off":
                    _without_search_index(path)
                store = TimedStore(path)
                await store.open()
                cpu = await append_groups(store, "load", messages, 20)
                process[name].append(cpu / messages * 1e6)
                writer[name].append(store.writer_cpu / messages * 1e6)
    print(f"{messages:,} load-like messages in groups of 20; CPU per message, {repeat} runs:")
    for label, samples in (("process", process), ("writer thread", writer)):
        for name, values in samples.items():
            runs = " ".join(f"{value:.1f}" for value in values)
            median = statistics.median(values)
            print(f"  {label:<14} {name:<15} median {median:6.2f} µs  ({runs})")
        with_index = statistics.median(samples["with the index"])
        without = statistics.median(samples["index off"])
        print(f"  {label:<14} the index costs {with_index - without:.2f} µs a message")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--fsync", action="store_true", help="as `chat-server --fsync`")
    parser.add_argument("--search", action="store_true", help="time search queries instead")
    parser.add_argument("--dir", help="where the database goes (default: $TMPDIR)")
    parser.add_argument(
        "--idle", type=float, default=0.0, help="--search: seconds to wait before timing queries"
    )
    parser.add_argument(
        "--index-cost", action="store_true", help="CPU a message costs with and without the index"
    )
    args = parser.parse_args()
    if args.index_cost:
        asyncio.run(run_index_cost(args.messages, args.repeat, args.dir))
    elif args.search:
        asyncio.run(run_search(args.messages, args.repeat, args.dir, args.idle))
    else:
        asyncio.run(run(args.messages, args.repeat, args.fsync))


if __name__ == "__main__":
    main()
