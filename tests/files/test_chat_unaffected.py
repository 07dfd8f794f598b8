"""A transfer on the files port never holds up chat on the same event loop."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from chat_client.files import download, upload
from tests.conftest import StartServer
from tests.files.support import files_harness, random_file
from tests.support import TIMEOUT, registered

MIB = 1 << 20


async def ping_times(port: int, count: int) -> list[float]:
    client = await registered(port, "pinger")
    loop = asyncio.get_running_loop()
    times = []
    try:
        for n in range(count):
            started = loop.time()
            reply = await client.request({"type": "ping", "token": str(n)})
            assert reply["type"] == "pong"
            times.append(loop.time() - started)
    finally:
        await client.close()
    return times


def stalled_reader(port: int, path: str) -> socket.socket:
    """A client that asks for a file and then never reads."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock


@pytest.mark.slow
async def test_slow_readers_and_a_running_download_leave_chat_quick(
    tmp_path: Path, start_server: StartServer
) -> None:
    chat = await start_server()
    source = tmp_path / "big.bin"
    random_file(source, 32 * MIB)
    async with files_harness(tmp_path / "server") as files:
        shared = await upload(source, room="lobby", request=files.requester())
        path = "/" + shared.url.split("/", 3)[3]
        stalled = [stalled_reader(files.listener.port, path) for _ in range(3)]
        try:
            (tmp_path / "down").mkdir()
            fetching = asyncio.create_task(download(shared, tmp_path / "down" / "big.bin"))
            times = await ping_times(chat.port, 40)
            await asyncio.wait_for(fetching, TIMEOUT * 4)
        finally:
            for sock in stalled:
                sock.close()
    times.sort()
    # Chat answers in milliseconds; a blocked loop would show as a long pause.
    assert times[len(times) // 2] < 0.05, times
    assert times[-1] < 0.5, times
