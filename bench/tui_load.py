"""How fast the TUI absorbs incoming messages, and what it holds in memory after them.

Starts `chat-server` with its rate limits off as a subprocess, runs `ChatApp`
headless (`App.run_test`) joined to a room, and has a raw sender in the same process
pour N messages into that room (closed loop: at most --window in flight, so
the server never drops the TUI as a slow consumer). Prints messages/s from
the first send until the TUI has applied the last one, and the process RSS
before and after.

    python -m bench.tui_load --messages 100000
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


async def send_all(port: int, count: int, window: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readline()
    writer.write(b'{"type":"hello","nick":"sender"}\n{"type":"join","room":"load"}\n')
    in_flight = 0
    sent = 0
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
    writer.close()


async def run(messages: int, window: int, size: tuple[int, int]) -> dict[str, float]:
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
                started = time.perf_counter()
                sender = asyncio.create_task(send_all(port, messages, window))
                while True:
                    last = conversation.entries[-1].seq if conversation.entries else None
                    if last == messages:
                        break
                    if sender.done() and sender.exception():
                        raise sender.exception()  # type: ignore[misc]
                    await asyncio.sleep(0.005)
                elapsed = time.perf_counter() - started
                await sender
                await pilot.pause(0.2)
                gc.collect()
                after = rss_mib()
                lines = app.chat.log_view.line_count
        return {
            "messages": messages,
            "seconds": elapsed,
            "messages_per_s": messages / elapsed,
            "rss_before_mib": before,
            "rss_after_mib": after,
            "log_lines_kept": lines,
        }
    finally:
        server.terminate()
        await server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--window", type=int, default=256, help="messages in flight")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    for _ in range(args.repeat):
        result = asyncio.run(run(args.messages, args.window, (120, 40)))
        print(json.dumps(result))
        print(
            f"TUI absorbed {result['messages']:,} messages in {result['seconds']:.2f} s: "
            f"{result['messages_per_s']:,.0f} messages/s; RSS {result['rss_before_mib']:.1f} MiB "
            f"-> {result['rss_after_mib']:.1f} MiB; log keeps {result['log_lines_kept']:,} lines"
        )


if __name__ == "__main__":
    main()
