"""A real `redis-server` for the cluster tests: a free loopback port, a temp dir, its PID.

Started with the persistence the cluster requires (`appendonly yes`, `appendfsync
always`), no RDB snapshots, bound to 127.0.0.1 only. `restart` stops it by its PID
(SIGTERM, so it finishes writing its append-only file) and starts it again on the
same port and directory; `kill` stops it with SIGKILL, as a crash would.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
from pathlib import Path

import redis.asyncio as aioredis

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process this test owns."""

    def __init__(self, directory: Path, *, appendfsync: str = "always") -> None:
        self.directory = directory
        self.port = free_port()
        self.appendfsync = appendfsync
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            REDIS_SERVER,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--daemonize", "no",
            "--logfile", str(self.directory / "redis.log"),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        client = aioredis.Redis(host="127.0.0.1", port=self.port)
        try:
            for _ in range(200):
                try:
                    if await client.ping():
                        return
                except (OSError, aioredis.ConnectionError):
                    await asyncio.sleep(0.05)
            raise RuntimeError(f"redis-server did not answer on port {self.port}")
        finally:
            await client.aclose()

    async def stop(self, sig: int = signal.SIGTERM) -> None:
        process = self.process
        if process is None:
            return
        self.process = None
        if process.returncode is None:
            process.send_signal(sig)
        await asyncio.wait_for(process.wait(), 10)

    async def kill(self) -> None:
        await self.stop(signal.SIGKILL)

    async def restart(self) -> None:
        await self.stop()
        await self.start()


async def running_redis(directory: Path) -> RedisServer:
    """A started RedisServer in `directory` (the caller stops it)."""
    server = RedisServer(directory)
    await server.start()
    return server


async def flushed(url: str) -> None:
    """Empty the database at `url` (one test's leftovers never reach the next)."""
    client = aioredis.Redis.from_url(url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()
