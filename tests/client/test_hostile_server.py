"""The TUI against a small server of the test's own that breaks the rules on purpose."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from textual.pilot import Pilot

from chat_client.tui.app import ChatApp
from chat_client.tui.screens import ConnectScreen
from chat_client.tui.widgets import MemberList
from tests.support import TIMEOUT

from .tui_support import SIZE, joined, log_text, make_app, type_line, until

Json = dict[str, Any]
TS = "2026-11-23T10:00:00.000Z"
Reply = Callable[[Json], list[Json]]


def line(message: Json) -> bytes:
    return json.dumps(message).encode() + b"\n"


def standard(members: list[str], backlog: list[Json] | None = None) -> Reply:
    """Answers like a server would, with the members and backlog given."""

    def reply(request: Json) -> list[Json]:
        kind, rid = request.get("type"), request.get("id")
        if kind == "join":
            room = request["room"]
            return [
                {"type": "room", "room": room, "topic": "", "members": members, "re": rid},
                {"type": "history", "room": room, "messages": backlog or [], "more": False},
                {"type": "joined", "room": room, "nick": "alice", "ts": TS},
            ]
        if kind == "ping":
            return [{"type": "pong", "token": request.get("token"), "re": rid}]
        return [{"type": "ack", "re": rid}] if rid else []

    return reply


@asynccontextmanager
async def fake_server(
    reply: Reply, pushed: list[bytes] | None = None, before_welcome: bytes = b""
) -> AsyncIterator[int]:
    """Serve one client: hello, welcome, then `reply` to each request and push `pushed`."""

    handlers: list[asyncio.Task[None]] = []
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.append(task)
        writers.append(writer)
        try:
            await converse(reader, writer)
        except (ConnectionError, json.JSONDecodeError):
            pass
        finally:
            writer.close()

    async def converse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(line({"type": "hello", "server": "fake", "protocol": 1}))
        register = json.loads(await reader.readline())
        writer.write(before_welcome)
        welcome = {"type": "welcome", "nick": register["nick"], "rooms": [], "re": register["id"]}
        writer.write(line(welcome))
        joined_once = False
        while request_line := await reader.readline():
            request = json.loads(request_line)
            for answer in reply(request):
                writer.write(line(answer))
            if request.get("type") == "join" and not joined_once:
                joined_once = True
                for data in pushed or []:
                    writer.write(data)
            await writer.drain()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, limit=1 << 22)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in writers:
            writer.transport.abort()
        await asyncio.wait_for(asyncio.gather(*handlers, return_exceptions=True), TIMEOUT)
        await server.wait_closed()


class Stalls:
    """The longest time the event loop went without running a 10 ms ticker."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            self.longest = max(self.longest, now - last)
            last = now

    def stop(self) -> float:
        self._task.cancel()
        return self.longest


def screen_bytes(app: ChatApp) -> str:
    """Everything the terminal would be sent for the current screen."""
    console = app.console
    update = app.screen._compositor.render_update(full=True)
    rendered: str = update.render_segments(console)  # type: ignore[union-attr]
    return rendered


async def test_16_network_strings_never_reach_the_terminal_raw() -> None:
    evil = "\x1b]0;pwned\x07\x1b[31m"
    pushed = [
        line({"type": "message", "room": "lobby", "seq": 1, "from": evil, "text": "hi", "ts": TS}),
        line({"type": "dm", "from": evil, "to": "alice", "text": "psst", "ts": TS}),
        line({"type": "topic", "room": "lobby", "topic": evil, "by": evil, "ts": TS}),
    ]
    async with fake_server(standard(["alice", evil]), pushed) as port:
        app = make_app(port, "alice", "lobby")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, joined(app, "lobby"), "the join")
            await until(pilot, lambda: "hi" in log_text(app), "the message")
            await pilot.pause(0.1)
            shown = log_text(app)
            assert "\u241b]0;pwned\u2407" in shown and "\x1b" not in shown
            for key in list(app.presenter.conversations.by_key):
                app.chat.switch_to(key)
                await pilot.pause(0.05)
                stream = screen_bytes(app)
                assert "\x1b]0;" not in stream and "\x07" not in stream


async def test_17_a_nick_listed_twice_does_not_crash_the_member_list() -> None:
    async with fake_server(standard(["bob", "alice", "bob", "BOB"])) as port:
        app = make_app(port, "alice", "lobby")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, joined(app, "lobby"), "the join")
            await pilot.pause(0.1)
            assert app.is_running
            assert app.chat.query_one("#members", MemberList).option_count == 2


async def test_18_garbled_handshake_lines_do_not_crash_the_app() -> None:
    garbage = b'{"type":"welcome","nick":1}\n' + b"x" * 70_000 + b"\n"
    async with fake_server(standard([]), before_welcome=garbage) as port:
        app = make_app(port, "alice", "lobby")
        async with app.run_test(size=SIZE) as pilot:
            # An unreadable line before `welcome` ends the handshake with a reason the
            # person can read on the connect screen (issue: never a crash, never a hang).
            await until(pilot, lambda: isinstance(app.screen, ConnectScreen), "the connect screen")
            await pilot.pause(0.05)
            problem = str(app.screen.query_one("#problem").render())
            assert "does not speak the chat protocol" in problem, problem
            assert app.is_running


async def test_18_a_failure_while_connecting_never_kills_the_app() -> None:
    async def slam(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"not json at all\n")
        writer.close()

    server = await asyncio.start_server(slam, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        app = make_app(port, "alice", "lobby")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, ConnectScreen), "the connect screen")
            await pilot.pause(0.05)
            problem = str(app.screen.query_one("#problem").render())
            assert f"cannot reach 127.0.0.1:{port}" in problem
            assert app.is_running
    finally:
        server.close()


async def _measure(pilot: Pilot[None], done: Callable[[], bool], what: str) -> float:
    """The longest loop pause while waiting for `done`, as a share of the whole wait."""
    stalls = Stalls()
    started = time.perf_counter()
    try:
        await until(pilot, done, what, timeout=6 * TIMEOUT)
    finally:
        longest = stalls.stop()
    return longest / (time.perf_counter() - started)


async def test_19_a_huge_replay_is_drawn_in_slices() -> None:
    backlog = [
        {"type": "message", "room": "lobby", "seq": n, "from": "bob", "text": f"m{n}", "ts": TS}
        for n in range(1, 20_001)
    ]
    async with fake_server(standard(["alice", "bob"], backlog)) as port:
        app = make_app(port, "alice", "lobby")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.client is not None, "the connection")
            longest = await _measure(pilot, lambda: "m20000" in log_text(app), "the last one")
            lobby = app.presenter.conversations.get("#lobby")
            assert len(lobby.entries) <= 5000 and lobby.unread == 0
            # Drawing is sliced: the UI answers all along (before, the whole replay was
            # one stall: ~13 s for 100,000 messages). A share, so machine load cancels out.
            assert longest < 0.5, longest


async def test_19_a_57000_room_listing_shows_a_bounded_answer() -> None:
    rooms = [{"room": f"r{n:05}", "topic": "", "members": n % 7} for n in range(57_000)]

    def reply(request: Json) -> list[Json]:
        if request.get("type") == "rooms":
            return [{"type": "room_list", "rooms": rooms, "re": request["id"]}]
        return standard(["alice"])(request)

    async with fake_server(reply) as port:
        app = make_app(port, "alice", "lobby")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, joined(app, "lobby"), "the join")
            before = len(log_text(app).splitlines())
            await type_line(pilot, "/rooms")
            await until(pilot, lambda: "more: /rooms" in log_text(app), "the list", 6 * TIMEOUT)
            lines = log_text(app).splitlines()
            assert len(lines) - before <= 33  # with a day separator
            assert "57,000 rooms, busiest first:" in log_text(app)
            assert "56,970 more" in lines[-1]
            await type_line(pilot, "/rooms r5699")
            await until(pilot, lambda: "10 rooms starting with 'r5699'" in log_text(app), "filter")
