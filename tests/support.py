"""Test helpers: a real server on loopback port 0 and a line client that speaks JSON.

All waits scale with CHAT_TEST_UNIT (default 1.0) so a slow machine can stretch them.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from chat_server.config import ServerConfig
from chat_server.server import ChatServer

UNIT = float(os.environ.get("CHAT_TEST_UNIT", "1.0"))
# Every server process a test starts: no fixed TLS port, never announced on the LAN.
SAFE_SERVER_FLAGS = ("--tls-port", "0", "--no-announce")
TIMEOUT = 5.0 * UNIT

Json = dict[str, Any]


def make_config(**overrides: Any) -> ServerConfig:
    """Loopback, port 0, no disk, flood control off unless a test turns it on."""
    base = ServerConfig(
        host="127.0.0.1",
        port=0,
        db_path=":memory:",
        rate=0,
        byte_rate=0,
        address_byte_rate=0,
        shutdown_grace=1.0,
        hash_memory_kib=1024,  # a cheap argon2id: tests hash many passwords on a busy machine
    )
    return replace(base, **overrides)


class LineClient:
    """A raw TCP client: send dicts or bytes, receive parsed JSON lines."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.seen: list[Json] = []

    async def send(self, message: Json) -> None:
        await self.send_raw(json.dumps(message).encode() + b"\n")

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def recv_line(self, timeout: float = TIMEOUT) -> bytes:
        line = await asyncio.wait_for(self.reader.readline(), timeout)
        if not line:
            raise ConnectionError("server closed the connection")
        return line

    async def recv(self, timeout: float = TIMEOUT) -> Json:
        message: Json = json.loads(await self.recv_line(timeout))
        self.seen.append(message)
        return message

    async def expect(self, type_: str, timeout: float = TIMEOUT, **fields: Any) -> Json:
        """Read until a message of `type_` with `fields` arrives (others are kept in `seen`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            message = await self.recv(max(0.0, deadline - loop.time()))
            if message.get("type") == type_ and all(message.get(k) == v for k, v in fields.items()):
                return message

    async def request(self, message: Json, timeout: float = TIMEOUT) -> Json:
        """Send a message with an `id` and return the direct reply carrying it as `re`."""
        request_id = message.setdefault("id", f"r{id(message)}")
        await self.send(message)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            reply = await self.recv(max(0.0, deadline - loop.time()))
            if reply.get("re") == request_id:
                return reply

    async def quiet(self, duration: float = 0.2 * UNIT) -> list[Json]:
        """Everything that arrives within `duration`."""
        got: list[Json] = []
        try:
            while True:
                got.append(await self.recv(duration))
        except TimeoutError:
            return got

    async def quit(self) -> None:
        """Send `quit` and read to the end: the server has freed the nick when this returns.

        A bare `close` does not wait for the server to notice, so a test that
        registers the same nick again right after it can race the old session.
        """
        await self.send({"type": "quit"})
        try:
            while await asyncio.wait_for(self.reader.readline(), TIMEOUT):
                pass
        except (ConnectionError, OSError):
            pass
        await self.close()

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


async def open_client(port: int, host: str = "127.0.0.1") -> LineClient:
    """Connect and read the server's hello."""
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 22)
    client = LineClient(reader, writer)
    hello = await client.recv()
    assert hello["type"] == "hello", hello
    return client


async def registered(port: int, nick: str, *rooms: str) -> LineClient:
    """Connect, register `nick`, and join `rooms` (history and joined consumed)."""
    client = await open_client(port)
    welcome = await client.request({"type": "hello", "nick": nick})
    assert welcome["type"] == "welcome", welcome
    for room in rooms:
        reply = await client.request({"type": "join", "room": room})
        assert reply["type"] == "room", reply
        await client.expect("joined", nick=nick, room=room)
    return client


ServerFactory = Callable[..., Any]


@asynccontextmanager
async def running_server(**overrides: Any) -> AsyncIterator[ChatServer]:
    async with ChatServer(make_config(**overrides)) as server:
        yield server


def hermetic_env(home: str) -> dict[str, str]:
    """The environment for a `chat-server` subprocess, with HOME and XDG_* under `home`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env["HOME"] = home
    for name in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        env[name] = os.path.join(home, name.lower())
    return env


def _scratch_home() -> str:
    home = tempfile.mkdtemp(prefix="lanchat-test-home-")
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    return home


class ServerProcess:
    """`python -m chat_server` as a real subprocess on a free loopback port."""

    def __init__(self, process: asyncio.subprocess.Process, port: int, log: list[str]) -> None:
        self.process = process
        self.port = port
        self.log = log
        self._drain_task: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, *args: str, home: str | None = None) -> ServerProcess:
        """Start on free loopback ports, never announced (a test may add its own flags);
        HOME and XDG_* point at `home` (default: a fresh temp dir)."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "chat_server",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--files-port",
            "0",
            *_safe(args),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=hermetic_env(home or _scratch_home()),
        )
        log: list[str] = []
        assert process.stderr is not None
        while True:
            line = (await asyncio.wait_for(process.stderr.readline(), 4 * TIMEOUT)).decode()
            if not line:
                await process.wait()
                raise RuntimeError("server exited before listening:\n" + "".join(log))
            log.append(line)
            found = re.search(r"listening on \S+:(\d+)", line)
            if found:
                server = cls(process, int(found.group(1)), log)
                server._drain_task = asyncio.create_task(server._drain())
                return server

    async def _drain(self) -> None:
        assert self.process.stderr is not None
        async for line in self.process.stderr:
            self.log.append(line.decode())

    async def wait(self, timeout: float = 4 * TIMEOUT) -> int:
        code = await asyncio.wait_for(self.process.wait(), timeout)
        if self._drain_task is not None:
            await self._drain_task
        return code

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.wait()


def _safe(args: tuple[str, ...]) -> tuple[str, ...]:
    """SAFE_SERVER_FLAGS then `args`; a test that names its announce interfaces keeps them."""
    if args[:1] in (("history",), ("accounts",)) or "--help" in args:
        return args
    flags: tuple[str, ...] = SAFE_SERVER_FLAGS
    if any(arg.startswith("--announce-interfaces") for arg in args):
        flags = tuple(flag for flag in flags if flag != "--no-announce")
    return (*flags, *args)


async def run_command(
    *args: str, timeout: float = 4 * TIMEOUT, home: str | None = None, stdin: bytes | None = None
) -> tuple[int, str, str]:
    """Run `python -m chat_server ARGS...`; return exit code, stdout and stderr.

    HOME and XDG_* point at `home` (default: a fresh temp dir), never the real ones.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "chat_server",
        *_safe(args),
        stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=hermetic_env(home or _scratch_home()),
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
