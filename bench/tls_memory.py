"""What a TLS connection costs the server in memory, next to a plain one.

Starts `chat-server` as a subprocess on loopback (free ports, no history, no
announcement), opens N registered connections of one kind from this process,
and reads the server's resident memory (VmRSS) before and after. Run:

    .venv/bin/python -m bench.tls_memory --clients 1000
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
from pathlib import Path

from chat_client.tls import client_ssl_context

__all__ = ["main"]


def _rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert found, status
    return int(found.group(1))


async def _open(port: int, tls: bool, nick: str) -> asyncio.StreamWriter:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=client_ssl_context() if tls else None
    )
    await reader.readline()
    writer.write(b'{"type":"hello","nick":"%s","id":"h"}\n' % nick.encode())
    await reader.readline()
    return writer


async def measure(clients: int) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "chat_server", "--host", "127.0.0.1", "--port", "0", "--tls-port", "0"),
            *("--db", ":memory:", "--no-announce", "--rate", "0", "--data-dir", data_dir),
            *("--max-per-ip", "0"),
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stderr is not None
        ports: dict[str, int] = {}
        while len(ports) < 2:
            line = (await process.stderr.readline()).decode()
            found = re.search(r"listening on \S+:(\d+) \((plain|tls)\)", line)
            if found:
                ports[found.group(2)] = int(found.group(1))
        drain = asyncio.create_task(_drain(process.stderr))
        try:
            await asyncio.sleep(0.5)
            base = _rss_kib(process.pid)
            print(f"server RSS at rest: {base / 1024:.1f} MiB")
            for kind in ("plain", "tls"):
                before = _rss_kib(process.pid)
                writers = [
                    await _open(ports[kind], kind == "tls", f"{kind}{i}") for i in range(clients)
                ]
                await asyncio.sleep(0.5)
                after = _rss_kib(process.pid)
                per = (after - before) * 1024 / clients
                grown = (after - before) / 1024
                print(f"{clients} {kind} clients: +{grown:.1f} MiB, {per:,.0f} B each")
                for writer in writers:
                    writer.close()
                await asyncio.sleep(1.0)
        finally:
            process.terminate()
            await process.wait()
            drain.cancel()


async def _drain(stream: asyncio.StreamReader) -> None:
    while line := await stream.readline():
        if b"WARNING" in line or b"ERROR" in line or b"tls" in line:
            sys.stderr.write(line.decode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    asyncio.run(measure(parser.parse_args().clients))


if __name__ == "__main__":
    main()
