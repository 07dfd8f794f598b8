"""How fast the TUI absorbs incoming messages, and what it holds in memory after them.

Starts `chat-server` with its rate limits off as a subprocess, runs `ChatApp`
headless (`App.run_test`) joined to a room, and has a raw sender in the same process
pour N messages into that room (closed loop: at most --window in flight, so
the server never drops the TUI as a slow consumer). Prints messages/s from
the first send until the TUI has applied the last one, and the process RSS
before and after.

With `--changes K` the sender also edits one of its recent messages and reacts
to another after every K-th message (alternately adding and taking back a
reaction), so edits and reactions are mixed into the flood. The log redraws
only the entry that changed (`MessageLog.update_entry`): the bench times every
such call and, for comparison, one full rewrap of the log as it stands at the
end (what redrawing the whole log on each change would cost).

    python -m bench.tui_load --messages 100000
    python -m bench.tui_load --messages 100000 --changes 10
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from chat_client import ClientSettings
from chat_client.tui.app import ChatApp, StartOptions
from chat_client.tui.entries import Entry
from chat_client.tui.widgets import MessageLog


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def start_server() -> tuple[asyncio.subprocess.Process, int]:
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "chat_server",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--db",
        ":memory:",
        "--rate",
        "0",
        "--byte-rate",
        "0",
        "--address-byte-rate",
        "0",
        "--no-files",
        "--no-tls",
        "--no-announce",
        stderr=asyncio.subprocess.PIPE,
    )
    assert server.stderr is not None
    while True:
        line = (await server.stderr.readline()).decode()
        if not line:
            raise RuntimeError("the server did not start")
        found = re.search(r"listening on \S+:(\d+)", line)
        if found:
            return server, int(found.group(1))


EMOJI = ("👍", "🎉", "❤", "👀")
SEQ = re.compile(rb'"seq":(\d+)')


def change_lines(seq: int, number: int, added: list[tuple[int, str]]) -> bytes:
    """An edit of message seq-1, then a reaction: every other time one to seq-3, else
    taking back the oldest reaction still there (`added` keeps them)."""
    edit = {"type": "edit", "room": "load", "seq": seq - 1, "text": f"edited {number}"}
    if number % 2 == 0 or not added:
        target, emoji = seq - 3, EMOJI[number % len(EMOJI)]
        added.append((target, emoji))
        removed = False
    else:
        target, emoji = added.pop(0)
        removed = True
    react = {"type": "react", "room": "load", "seq": target, "emoji": emoji, "remove": removed}
    return (json.dumps(edit) + "\n" + json.dumps(react) + "\n").encode()


async def send_all(port: int, count: int, window: int, changes: int) -> int:
    """Say `count` messages (and changes after every `changes`-th); return the changes sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readline()
    hello = b'{"type":"hello","nick":"sender","features":["edit","react"]}\n'
    writer.write(hello + b'{"type":"join","room":"load"}\n')
    in_flight = 0
    sent = 0
    changed = 0
    added: list[tuple[int, str]] = []
    text = "x" * 60
    while sent < count or in_flight:
        while sent < count and in_flight < window:
            sent += 1
            in_flight += 1
            writer.write(b'{"type":"say","room":"load","text":"%d %s"}\n' % (sent, text.encode()))
        line = await reader.readline()
        if not line:
            raise RuntimeError("the server closed the sender")
        if line.startswith(b'{"type":"message"') and b'"from":"sender"' in line:
            in_flight -= 1
            found = SEQ.search(line)
            seq = int(found.group(1)) if found else 0
            # Changes only before the last messages, so they all arrive before the last one.
            if changes and seq > 4 and seq % changes == 0 and seq < count - window - 10:
                writer.write(change_lines(seq, changed, added))
                changed += 1
    writer.close()
    return changed


class Timed:
    """Wraps `MessageLog.update_entry` on one instance: how many calls and how long."""

    def __init__(self, log: MessageLog) -> None:
        self.calls = 0
        self.seconds = 0.0
        self._inner = log.update_entry
        log.update_entry = self  # type: ignore[method-assign]

    def __call__(self, entry: Entry) -> bool:
        started = time.perf_counter()
        try:
            return self._inner(entry)
        finally:
            self.seconds += time.perf_counter() - started
            self.calls += 1


async def run(
    messages: int, window: int, size: tuple[int, int], changes: int = 0
) -> dict[str, float]:
    server, port = await start_server()
    try:
        with tempfile.TemporaryDirectory() as config_dir:
            os.environ["CHAT_CLIENT_CONFIG"] = str(Path(config_dir) / "client.json")
            options = StartOptions(
                host="127.0.0.1",
                port=port,
                nick="reader",
                rooms=("load",),
                remember=False,
                settings=ClientSettings(ping_interval=3600),
            )
            app = ChatApp(options)
            async with app.run_test(size=size) as pilot:
                while not (app.client and "load" in app.client.rooms):
                    await pilot.pause(0.01)
                gc.collect()
                before = rss_mib()
                conversation = app.presenter.conversations.get("#load")
                timed = Timed(app.chat.log_view)
                started = time.perf_counter()
                sender = asyncio.create_task(send_all(port, messages, window, changes))
                while True:
                    last = conversation.newest_seq  # a notice line (a reconnect) may follow
                    if last == messages:
                        break
                    if sender.done() and sender.exception():
                        raise sender.exception()  # type: ignore[misc]
                    await asyncio.sleep(0.005)
                elapsed = time.perf_counter() - started
                changed = await sender
                await pilot.pause(0.2)
                gc.collect()
                after = rss_mib()
                log = app.chat.log_view
                lines = log.line_count
                edited = sum(1 for e in conversation.entries if e.edited)
                reacted = sum(1 for e in conversation.entries if e.reactions)
                full = time.perf_counter()
                log._rewrap()  # what one whole-log redraw costs, for comparison
                full = time.perf_counter() - full
                entries = len(log.entries)
        per_update = timed.seconds / timed.calls if timed.calls else 0.0
        return {
            "messages": messages,
            "changes_sent": changed * 2,
            "seconds": elapsed,
            "messages_per_s": messages / elapsed,
            "rss_before_mib": before,
            "rss_after_mib": after,
            "log_lines_kept": lines,
            "entry_redraws": timed.calls,
            "entry_redraw_us": per_update * 1e6,
            "edited_in_memory": edited,
            "reacted_in_memory": reacted,
            "full_rewrap_ms": full * 1e3,
            "full_rewrap_entries": entries,
        }
    finally:
        server.terminate()
        await server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--window", type=int, default=256, help="messages in flight")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--changes",
        type=int,
        default=0,
        metavar="K",
        help="after every K-th message also an edit and a reaction (0: none)",
    )
    args = parser.parse_args()
    for _ in range(args.repeat):
        result = asyncio.run(run(args.messages, args.window, (120, 40), args.changes))
        print(json.dumps(result))
        print(
            f"TUI absorbed {result['messages']:,} messages in {result['seconds']:.2f} s: "
            f"{result['messages_per_s']:,.0f} messages/s; RSS {result['rss_before_mib']:.1f} MiB "
            f"-> {result['rss_after_mib']:.1f} MiB; log keeps {result['log_lines_kept']:,} lines"
        )
        if args.changes:
            print(
                f"with {result['changes_sent']:,} edits and reactions mixed in: "
                f"{result['entry_redraws']:,} single-entry redraws, "
                f"{result['entry_redraw_us']:.1f} us each; one whole-log rewrap of "
                f"{result['full_rewrap_entries']:,} entries takes {result['full_rewrap_ms']:.1f} ms"
            )


if __name__ == "__main__":
    main()
