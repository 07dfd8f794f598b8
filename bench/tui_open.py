"""How fast the TUI opens a room whose store holds a million messages, and pages back.

Fills a SQLite history file with N messages in one room (with the store's own writer,
as `bench.history_query` does), starts `chat-server --db FILE` on it as a subprocess,
then runs `ChatApp` headless (`App.run_test`) joined to that room and times:

- start: from the app's start until the screen shows the room's latest message
  (Textual's start-up, connect, hello, join, the join's history page, the paint);
- open: in a running app (connected, in another room), from Enter on `/join big`
  until the screen shows the room's latest message;
- each older page: from asking for it (what scrolling to the top does) until its
  entries are in the log, for `--pages` pages in a row.

"Shows" is the first frame the app's compositor renders (`App._display`) after the
log has painted its newest page, which is what reaches the terminal. The Enter of
`/join` goes straight to the driver, as Pilot's `press` sends it, but without
Pilot's wait for the process to go idle (20 ms steps of its own), so the figure is
the app's time, not the test harness's.

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

from rich.console import RenderableType
from textual import events
from textual.screen import Screen

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


class TimedApp(ChatApp):
    """`ChatApp` noting when a frame first shows the message `awaited` in the log.

    `_display` is where Textual hands each rendered frame to the driver (private API:
    a bench may lean on it, the product does not).
    """

    awaited = 0  # the seq to wait for (0: nothing)
    shown_at: float | None = None

    def _display(self, screen: Screen[object], renderable: RenderableType | None) -> None:
        super()._display(screen, renderable)
        if self.shown_at is None and self.awaited and renderable is not None:
            log_view = self.chat.log_view
            entries = log_view.entries
            # The log scrolls to its end after a refresh when it cannot at once: a frame
            # counts only once the page it rendered is the newest one.
            at_end = log_view.scroll_offset.y >= log_view.max_scroll_y
            if entries and entries[-1].seq == self.awaited and at_end:
                self.shown_at = time.perf_counter()


def app_for(port: int, room: str) -> TimedApp:
    options = StartOptions(
        host="127.0.0.1",
        port=port,
        nick=f"reader{os.getpid()}",
        rooms=(room,),
        remember=False,
        settings=ClientSettings(ping_interval=3600),
    )
    return TimedApp(options)


async def shown(app: TimedApp, messages: int) -> float:
    """Wait for the frame that shows message `messages`; when it was rendered."""
    app.awaited = messages
    await until(lambda: app.shown_at is not None, "a frame with the latest message")
    assert app.shown_at is not None
    return app.shown_at


async def start_once(port: int, messages: int) -> float:
    app = app_for(port, ROOM)
    app.awaited = messages
    started = time.perf_counter()
    async with app.run_test(size=(120, 40)) as pilot:
        elapsed = await shown(app, messages) - started
        await pilot.pause(0.05)
    return elapsed


async def open_once(port: int, messages: int, pages: int) -> tuple[float, list[float]]:
    app = app_for(port, "lobby")
    async with app.run_test(size=(120, 40)) as pilot:
        await until(lambda: app.client and "lobby" in app.client.rooms, "joining #lobby")
        await pilot.press(*f"/join {ROOM}")
        await pilot.pause(0.05)
        assert app._driver is not None
        enter = events.Key("enter", "\r")
        enter.set_sender(app)
        started = time.perf_counter()
        app._driver.send_message(enter)
        opened = await shown(app, messages) - started
        conversation = app.presenter.conversations.get("#" + ROOM)
        page_times = []
        for _ in range(pages):
            oldest = conversation.oldest_seq

            def older(oldest: int | None = oldest) -> bool:
                return conversation.oldest_seq != oldest

            asked = time.perf_counter()
            app.chat.log_view.post_message(MessageLog.NearTop())
            await until(older, "an older page")
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
