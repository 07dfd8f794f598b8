"""Fixtures for the cluster tests: a real redis-server, and chat-server nodes on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tests.redis_support import RedisServer
from tests.support import ServerProcess

Nodes = Callable[..., Awaitable[ServerProcess]]


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    server = RedisServer(tmp_path)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def node(redis_server: RedisServer) -> AsyncIterator[Nodes]:
    """Start `chat-server --redis` nodes on the test's Redis; all are stopped at the end."""
    started: list[ServerProcess] = []

    async def start(*args: str) -> ServerProcess:
        flags = ("--redis", redis_server.url, "--no-tls", "--no-files", "--rate", "0")
        process = await ServerProcess.start(*flags, "--hash-memory", "1024", *args)
        started.append(process)
        return process

    yield start
    for process in started:
        await process.kill()
