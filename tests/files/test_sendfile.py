"""Downloads are `os.sendfile` on both loops: exact bytes for ranges and HEAD, no thread per
chunk, and a reader that goes away or stops reading leaks nothing.

Every test runs on the stock loop and on uvloop (tests/files/conftest.py). On uvloop the
body goes out through `BlobResponse`'s own `os.sendfile` on the socket, on the stock loop
through aiohttp's `loop.sendfile`; `listener.downloads` says which was taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import socket
import struct
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

from chat_client.files import upload
from chat_server.files.sendfile import SENDFILE_BLOCK, socket_sendfile_applies
from chat_server.tls import load_or_create_certificate, server_ssl_context
from protocol import FileInfo
from tests.files.support import FilesHarness, files_harness, random_file
from tests.support import TIMEOUT

MIB = 1 << 20
T = TypeVar("T")


class CountingExecutor(ThreadPoolExecutor):
    """The loop's default executor, counting what is handed to it."""

    def __init__(self) -> None:
        super().__init__(max_workers=4)
        self.calls = 0

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        self.calls += 1
        return super().submit(fn, *args, **kwargs)


def on_uvloop() -> bool:
    return type(asyncio.get_running_loop()).__module__.startswith("uvloop")


def open_sockets() -> int:
    """Socket descriptors of this process (the server's and the test's are all here)."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/self/fd/{name}").startswith("socket:")
    return count


async def settle(condition: Callable[[], bool]) -> None:
    """Wait (up to TIMEOUT) until `condition()` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while not condition():
        assert loop.time() < deadline, "not settled in time"
        await asyncio.sleep(0.02)


async def shared_file(files: FilesHarness, tmp_path: Path, size: int) -> tuple[FileInfo, bytes]:
    source = tmp_path / "data.bin"
    data = random_file(source, size)
    return await upload(source, room="lobby", request=files.requester()), data


def url_path(shared: FileInfo) -> str:
    return "/" + shared.url.split("/", 3)[3]


async def read_response(
    reader: asyncio.StreamReader, head: bool = False
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length body, read to its exact end."""
    lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = 0 if head else int(headers["content-length"])
    return status, headers, await reader.readexactly(length)


async def test_the_socket_path_is_for_plain_tcp_on_a_loop_without_sendfile() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        applies = socket_sendfile_applies(asyncio.get_running_loop(), writer.transport)
    finally:
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
    assert applies == on_uvloop()  # the stock loop's own sendfile is os.sendfile already


async def test_a_plain_download_is_sendfile_with_no_thread_per_chunk(tmp_path: Path) -> None:
    size = 8 * MIB + 12345
    async with files_harness(tmp_path / "server") as files:
        shared, data = await shared_file(files, tmp_path, size)
        executor = CountingExecutor()
        asyncio.get_running_loop().set_default_executor(executor)
        async with aiohttp.ClientSession() as session:
            before = executor.calls
            async with session.get(shared.url) as response:
                assert response.status == 200
                assert await response.read() == data
            used = executor.calls - before
        downloads = files.listener.downloads
        if on_uvloop():
            assert (downloads.socket_sendfile, downloads.by_aiohttp) == (1, 0)
            assert downloads.socket_sendfile_bytes == size
        else:
            assert (downloads.socket_sendfile, downloads.by_aiohttp) == (0, 1)
        # Opening and closing the file; aiohttp's copy would add one read per 256 KiB (33).
        assert used <= 3, used


async def test_ranges_head_and_keep_alive_are_exact(tmp_path: Path) -> None:
    size = 3 * SENDFILE_BLOCK + 777
    async with files_harness(tmp_path / "server") as files:
        shared, data = await shared_file(files, tmp_path, size)
        path = url_path(shared)
        cases: list[tuple[str, str | None, int, bytes, str | None]] = [
            ("GET", None, 200, data, None),
            ("GET", "bytes=0-0", 206, data[:1], f"bytes 0-0/{size}"),
            ("GET", f"bytes={SENDFILE_BLOCK - 5}-{2 * SENDFILE_BLOCK + 4}",
             206, data[SENDFILE_BLOCK - 5 : 2 * SENDFILE_BLOCK + 5],
             f"bytes {SENDFILE_BLOCK - 5}-{2 * SENDFILE_BLOCK + 4}/{size}"),
            ("GET", "bytes=-7", 206, data[-7:], f"bytes {size - 7}-{size - 1}/{size}"),
            ("GET", f"bytes={size - 10}-{size + 50}", 206, data[-10:],
             f"bytes {size - 10}-{size - 1}/{size}"),
            ("GET", "bytes=2000000-", 206, data[2000000:], f"bytes 2000000-{size - 1}/{size}"),
            ("HEAD", None, 200, b"", None),
            ("HEAD", "bytes=5-9", 206, b"", f"bytes 5-9/{size}"),
            ("GET", f"bytes={size}-", 416, b"range not satisfiable\n", f"bytes */{size}"),
            ("GET", "bytes=10-19", 206, data[10:20], f"bytes 10-19/{size}"),
        ]  # fmt: skip
        reader, writer = await asyncio.open_connection("127.0.0.1", files.listener.port)
        # Pipelined on one connection: each answer must end exactly where the next begins.
        for method, wanted, *_ in cases:
            extra = f"Range: {wanted}\r\n" if wanted else ""
            writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode())
        try:
            for method, wanted, status, body, content_range in cases:
                got_status, headers, got = await asyncio.wait_for(
                    read_response(reader, head=method == "HEAD"), TIMEOUT
                )
                assert (got_status, len(got)) == (status, len(body)), (method, wanted)
                assert got == body, (method, wanted)
                assert headers.get("content-range") == content_range, (method, wanted)
                if method == "HEAD":
                    assert int(headers["content-length"]) == (5 if wanted else size)
                else:
                    assert int(headers["content-length"]) == len(body)
            writer.write_eof()
            assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""  # nothing more came
        finally:
            writer.close()
        downloads = files.listener.downloads
        bodies = sum(1 for method, _, status, *_ in cases if method == "GET" and status != 416)
        if on_uvloop():
            assert downloads.socket_sendfile == bodies
            assert downloads.socket_sendfile_bytes == sum(
                len(body)
                for method, _, status, body, _ in cases
                if method == "GET" and status != 416
            )
        else:
            assert downloads.by_aiohttp == bodies


@pytest.mark.parametrize("how", ["abort", "close", "shutdown"])
async def test_a_reader_that_goes_away_mid_download_leaks_nothing(tmp_path: Path, how: str) -> None:
    loop = asyncio.get_running_loop()
    problems: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: problems.append(context))
    async with files_harness(tmp_path / "server") as files:
        shared, data = await shared_file(files, tmp_path, 32 * MIB)
        await asyncio.sleep(0.1)  # let the upload's file closes finish
        sockets = open_sockets()
        sock = socket.create_connection(("127.0.0.1", files.listener.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 10)
        sock.setblocking(False)
        reader, writer = await asyncio.open_connection(sock=sock)
        writer.write(f"GET {url_path(shared)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await reader.readexactly(2 * MIB)
        await settle(lambda: files.listener.downloads.sending == 1)
        if how == "abort":  # RST
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        elif how == "close":  # unread bytes: the kernel answers the next ones with RST
            writer.close()
        else:
            sock.shutdown(socket.SHUT_RDWR)
            writer.close()
        await settle(lambda: files.listener.downloads.sending == 0)
        await settle(lambda: open_sockets() <= sockets)
        downloads = files.listener.downloads
        assert downloads.socket_sendfile == 0  # it never finished
        assert downloads.socket_sendfile + downloads.by_aiohttp <= 1
        # The listener goes on serving, on the same loop.
        async with aiohttp.ClientSession() as session:
            async with session.get(shared.url, headers={"Range": "bytes=-100"}) as response:
                assert await response.read() == data[-100:]
    assert not problems, problems


async def test_a_stalled_reader_holds_no_thread_and_shutdown_ends_it(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    executor = CountingExecutor()
    loop.set_default_executor(executor)
    stalled: list[socket.socket] = []
    sockets_before = open_sockets()
    try:
        async with files_harness(tmp_path / "server") as files:
            shared, data = await shared_file(files, tmp_path, 32 * MIB)
            await asyncio.sleep(0.1)
            for _ in range(3):
                sock = socket.create_connection(("127.0.0.1", files.listener.port))
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.sendall(f"GET {url_path(shared)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                stalled.append(sock)
            await settle(lambda: files.listener.downloads.sending == 3)
            await asyncio.sleep(0.2)
            calls = executor.calls
            await asyncio.sleep(0.5)
            # While nobody reads, nothing runs: no thread waits on a socket, no chunk is read.
            assert executor.calls == calls
            async with aiohttp.ClientSession() as session:
                async with session.get(shared.url, headers={"Range": "bytes=0-99"}) as response:
                    assert await response.read() == data[:100]
            started = loop.time()
        # Closing the listener ended the stalled responses (within its shutdown timeout).
        assert loop.time() - started < 3.0
        assert files.listener.downloads.sending == 0
        if on_uvloop():  # only the range request finished
            assert files.listener.downloads.socket_sendfile == 1
    finally:
        for sock in stalled:
            sock.close()
    await settle(lambda: open_sockets() <= sockets_before)


async def test_https_downloads_keep_aiohttps_copy(tmp_path: Path) -> None:
    certificate = load_or_create_certificate(tmp_path / "tls")
    context = server_ssl_context(certificate)
    async with files_harness(tmp_path / "server", ssl_context=context) as files:
        source = tmp_path / "data.bin"
        data = random_file(source, 3 * MIB + 5)
        ticket = files.ticket("data.bin", data)
        fingerprint = aiohttp.Fingerprint(bytes.fromhex(certificate.fingerprint.replace(":", "")))
        async with aiohttp.ClientSession() as session:
            async with session.put(
                files.service.upload_url(ticket), data=io.BytesIO(data), ssl=fingerprint
            ) as put:
                assert put.status == 201, await put.text()
                url = FileInfo.model_validate_json(await put.read()).url
            assert url.startswith("https://")
            async with session.get(url, ssl=fingerprint) as whole:
                assert await whole.read() == data
            async with session.get(url, ssl=fingerprint, headers={"Range": "bytes=100-"}) as part:
                assert part.status == 206
                assert await part.read() == data[100:]
        downloads = files.listener.downloads
        assert (downloads.socket_sendfile, downloads.by_aiohttp) == (0, 2)
