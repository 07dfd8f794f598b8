"""What one idle registered connection costs the server in memory, by kind.

For each kind, a fresh `chat-server` subprocess on loopback (free ports, SQLite
history in a temp dir, not announced), N connections of that kind opened from
this process, and the server's resident memory (VmRSS) read before and after.
A fresh server per kind, so no kind reuses memory another one freed. Kinds:

- `plain`: `hello` with a nick, no features (scenario d's clients);
- `features`: `hello` asking for every version-2 feature the server offers;
- `account`: logged in to an account (the accounts are made first, then the
  server is restarted on the same data, so the logins start from a fresh process);
- `tls`: like `plain`, over TLS 1.3.

Run:

    .venv/bin/python -m bench.idle_memory --clients 5000 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import ssl
import statistics
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from chat_client.tls import client_ssl_context

__all__ = ["main"]

KINDS = ("plain", "features", "account", "tls")
PASSWORD = "idle-memory-pw"
OPEN_AT_ONCE = 50  # connections opened concurrently (the server's backlog is not the test)


def _rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert found, status
    return int(found.group(1))


class Server:
    """A `chat-server` subprocess and its plain and TLS ports."""

    def __init__(self, process: asyncio.subprocess.Process, ports: dict[str, int]) -> None:
        self.process = process
        self.ports = ports
        assert process.stderr is not None
        self._drain = asyncio.create_task(_drain(process.stderr))

    @classmethod
    async def start(cls, data_dir: str, hash_memory: int = 1024) -> Server:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "chat_server", "--host", "127.0.0.1", "--port", "0", "--tls-port", "0"),
            *("--db", str(Path(data_dir) / "h.db"), "--data-dir", data_dir),
            *("--no-announce", "--no-files", "--rate", "0", "--max-per-ip", "0"),
            *("--hash-memory", str(hash_memory)),
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stderr is not None
        ports: dict[str, int] = {}
        while len(ports) < 2:
            line = (await process.stderr.readline()).decode()
            if not line:
                raise RuntimeError("chat-server exited before it listened")
            found = re.search(r"listening on \S+:(\d+) \((plain|tls)\)", line)
            if found:
                ports[found.group(2)] = int(found.group(1))
        return cls(process, ports)

    def rss_kib(self) -> int:
        return _rss_kib(self.process.pid)

    async def stop(self) -> None:
        self.process.terminate()
        await self.process.wait()
        self._drain.cancel()


async def _drain(stream: asyncio.StreamReader) -> None:
    while line := await stream.readline():
        if b"WARNING" in line or b"ERROR" in line:
            sys.stderr.write(line.decode())


async def _reply(reader: asyncio.StreamReader, request_id: str) -> dict[str, object]:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("the server closed the connection")
        message = json.loads(line)
        if message.get("re") == request_id:
            assert isinstance(message, dict)
            return message


async def _open(
    port: int, hello: dict[str, object], context: ssl.SSLContext | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    await reader.readline()  # the server's greeting
    writer.write(json.dumps({**hello, "type": "hello", "id": "h"}).encode() + b"\n")
    welcome = await _reply(reader, "h")
    assert welcome["type"] == "welcome", welcome
    return reader, writer


Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _open_many(
    count: int, opener: Callable[[str], Awaitable[Stream]], kind: str
) -> list[Stream]:
    opened: list[Stream] = []
    for start in range(0, count, OPEN_AT_ONCE):
        batch = range(start, min(count, start + OPEN_AT_ONCE))
        opened += await asyncio.gather(*(opener(f"{kind[:2]}{i:05d}") for i in batch))
    return opened


async def _offered(server: Server) -> list[str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.ports["plain"])
    greeting = json.loads(await reader.readline())
    writer.close()
    return [str(name) for name in greeting.get("features", [])]


async def _register_accounts(server: Server, count: int) -> None:
    async def make(nick: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await _open(server.ports["plain"], {"nick": nick}, None)
        writer.write(json.dumps({"type": "register", "password": PASSWORD, "id": "r"}).encode())
        writer.write(b"\n")
        ack = await _reply(reader, "r")
        assert ack["type"] == "ack", ack
        return reader, writer

    for _, writer in await _open_many(count, make, "account"):
        writer.close()


async def measure(kind: str, clients: int, settle: float, hash_memory: int) -> tuple[int, int]:
    """(RSS before, RSS after) in KiB for `clients` idle connections of `kind`."""
    with tempfile.TemporaryDirectory(prefix="idle-memory-") as data_dir:
        server = await Server.start(data_dir, hash_memory)
        try:
            features = await _offered(server)
            if kind == "account":  # made on one server, logged in to a fresh one
                await _register_accounts(server, clients)
                await server.stop()
                server = await Server.start(data_dir, hash_memory)
            await asyncio.sleep(settle)
            before = server.rss_kib()
            context = client_ssl_context() if kind == "tls" else None
            port = server.ports["tls" if kind == "tls" else "plain"]

            async def one(nick: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
                hello: dict[str, object] = {"nick": nick}
                if kind == "features":
                    hello["features"] = features
                if kind == "account":
                    hello["account_password"] = PASSWORD
                return await _open(port, hello, context)

            opened = await _open_many(clients, one, kind)
            await asyncio.sleep(settle)
            after = server.rss_kib()
            for _, writer in opened:
                writer.close()
            return before, after
        finally:
            await server.stop()


async def run(kinds: list[str], clients: int, repeat: int, settle: float, hash_memory: int) -> None:
    print(f"{clients} idle connections per kind, {repeat} runs, a fresh server each")
    for kind in kinds:
        per_connection: list[float] = []
        for _ in range(repeat):
            before, after = await measure(kind, clients, settle, hash_memory)
            per = (after - before) / clients
            per_connection.append(per)
            print(
                f"  {kind:9} RSS {before / 1024:6.1f} -> {after / 1024:6.1f} MiB: "
                f"{per:5.2f} KiB per connection"
            )
        print(f"{kind:9} median {statistics.median(per_connection):.2f} KiB per connection")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=5000, help="connections per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per kind; medians printed")
    parser.add_argument(
        "--kinds", default=",".join(KINDS), help=f"comma-separated, of: {', '.join(KINDS)}"
    )
    parser.add_argument("--settle", type=float, default=1.0, help="seconds before each read")
    parser.add_argument(
        "--hash-memory",
        type=int,
        default=1024,
        metavar="KIB",
        help="the server's argon2 memory per hash (default 1024 KiB, so thousands of "
        "logins take seconds; chat-server's own default is 65536)",
    )
    args = parser.parse_args()
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        parser.error(f"unknown kinds: {', '.join(unknown)}")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the server inherits it
    asyncio.run(run(kinds, args.clients, args.repeat, args.settle, args.hash_memory))


if __name__ == "__main__":
    main()
