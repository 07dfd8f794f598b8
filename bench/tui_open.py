"""How fast the TUI opens a room whose store holds a million messages, and pages back.

Fills a SQLite history file with N messages in one room (with the store's own writer,
as `bench.history_query` does), starts `chat-server --db FILE` on it as a subprocess,
then runs `ChatApp` headless (`App.run_test`) joined to that room and times:

- start: from the app's start until the log shows the room's latest message
  (Textual's start-up, connect, hello, join, the join's history page, the render);
- open: in a running app (connected, in another room), from Enter on `/join big`
  until the log shows the room's latest message;
- each older page: from asking for it (what scrolling to the top does) until its
  entries are in the log, for `--pages` pages in a row.

    python -m bench.tui_open --messages 1000000 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.history_query import fill
from chat_client import ClientSettings
from chat_client.tui.app import ChatApp, StartOptions
from chat_client.tui.widgets.message_log import MessageLog
from chat_server.sqlite_store import SqliteStore

ROOM = "big"


async def until(condition: Callable[[], object], what: str, limit: float = 30.0) -> None:
    """Poll `condition` every millisecond (the app's state has no event to wait on)."""
    deadline = time.perf_counter() + limit
    while True:
        if condition():
            return
        if time.perf_counter() > deadline:
            raise TimeoutError(f"waited {limit:.0f} s for {what}")
        await asyncio.sleep(0.001)


async def build(path: Path, messages: int) -> float:
    store = SqliteStore(str(path))
    await store.open()
    rate = await fill(store, ROOM, messages)
    await store.close()
    return rate


def files_size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("history.sqlite3*"))


async def start_server(db: Path) -> tuple[asyncio.subprocess.Process, int]:
    server = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "chat_server", "--host", "127.0.0.1", "--port", "0"),
        *("--db", str(db), "--no-files", "--no-tls", "--no-announce"),
        # Flood control off: 20 pages asked for back to back are more requests per
        # second than a person's allowance (the TUI would say "rate_limited").
        *("--rate", "0", "--byte-rate", "0", "--address-byte-rate", "0"),
        stderr=asyncio.subprocess.PIPE,
    )
    assert server.stderr is not None
    while True:
        line = (await server.stderr.readline()).decode()
        if not line:
            raise RuntimeError("the server did not start")
        found = re.search(r"listening on \S+:(\d+) \(plain\)", line)
        if found:
            return server, int(found.group(1))


def app_for(port: int, room: str) -> ChatApp:
    options = StartOptions(
        host="127.0.0.1",
        port=port,
        nick=f"reader{os.getpid()}",
        rooms=(room,),
        remember=False,
        settings=ClientSettings(ping_interval=3600),
    )
    return ChatApp(options)


async def shown(app: ChatApp, messages: int) -> None:
    conversation = app.presenter.conversations.get("#" + ROOM)
    await until(
        lambda: conversation.entries and conversation.entries[-1].seq == messages,
        "the latest message in the conversation",
    )
    log_view = app.chat.log_view
    await until(
        lambda: log_view.entries and log_view.entries[-1].seq == messages,
        "the latest message in the log",
    )


async def start_once(port: int, messages: int) -> float:
    app = app_for(port, ROOM)
    started = time.perf_counter()
    async with app.run_test(size=(120, 40)) as pilot:
        await shown(app, messages)
        elapsed = time.perf_counter() - started
        await pilot.pause(0.05)
    return elapsed


async def open_once(port: int, messages: int, pages: int) -> tuple[float, list[float]]:
    app = app_for(port, "lobby")
    async with app.run_test(size=(120, 40)) as pilot:
        await until(lambda: app.client and "lobby" in app.client.rooms, "joining #lobby")
        await pilot.press(*f"/join {ROOM}")
        await pilot.pause(0.05)
        started = time.perf_counter()
        await pilot.press("enter")
        await shown(app, messages)
        opened = time.perf_counter() - started
        conversation = app.presenter.conversations.get("#" + ROOM)
        page_times = []
        for _ in range(pages):
            oldest = conversation.oldest_seq
            asked = time.perf_counter()
            app.chat.log_view.post_message(MessageLog.NearTop())
            await until(lambda oldest=oldest: conversation.oldest_seq != oldest, "an older page")
            page_times.append(time.perf_counter() - asked)
        await pilot.pause(0.05)
    return opened, page_times


async def run(messages: int, repeat: int, pages: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        db = Path(directory) / "history.sqlite3"
        os.environ["CHAT_CLIENT_CONFIG"] = str(Path(directory) / "client.json")
        rate = await build(db, messages)
        size = await asyncio.to_thread(files_size, Path(directory))
        print(f"stored {messages:,} messages in #{ROOM} ({size / 2**20:,.0f} MiB, {rate:,.0f}/s)")
        server, port = await start_server(db)
        try:
            starts, opens, older = [], [], []
            for n in range(repeat):
                starts.append(await start_once(port, messages))
                opened, page_times = await open_once(port, messages, pages)
                opens.append(opened)
                older.extend(page_times)
                print(
                    f"run {n + 1}: started in {starts[-1] * 1000:.1f} ms, "
                    f"opened in {opened * 1000:.1f} ms; {pages} older pages, "
                    f"median {statistics.median(page_times) * 1000:.1f} ms, "
                    f"max {max(page_times) * 1000:.1f} ms"
                )
        finally:
            server.terminate()
            await server.wait()
    print(
        f"median start {statistics.median(starts) * 1000:.1f} ms, "
        f"open {statistics.median(opens) * 1000:.1f} ms over {repeat} runs; "
        f"older page median {statistics.median(older) * 1000:.1f} ms, "
        f"max {max(older) * 1000:.1f} ms over {len(older)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pages", type=int, default=20, help="older pages per run")
    args = parser.parse_args()
    asyncio.run(run(args.messages, args.repeat, args.pages))


if __name__ == "__main__":
    main()
