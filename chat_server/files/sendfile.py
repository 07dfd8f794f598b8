"""Downloads with `os.sendfile` on event loops that have no `loop.sendfile` (uvloop).

aiohttp's `FileResponse` sends the body with `loop.sendfile`. The stock asyncio loop
implements it with `os.sendfile`, but `uvloop.Loop` does not (it keeps
`AbstractEventLoop`'s `NotImplementedError`), and there aiohttp falls back to reading
chunks in the default executor and writing them through the transport: a thread hop
and two copies per chunk. `BlobResponse` keeps everything of `FileResponse` (status,
`Range`, `If-Range`, `HEAD`, headers) and replaces only that last step, sending the
body with `os.sendfile` on the connection's socket:

1. the response headers are written, and the transport's write buffer is drained;
2. the transport stops reading, so nothing else touches the socket meanwhile;
3. `os.sendfile` runs on a duplicate of the socket's descriptor, which is non-blocking:
   each call sends what the kernel's socket buffer takes (at most `SENDFILE_BLOCK`),
   and between calls the loop waits for writability with `loop.add_writer`. uvloop
   refuses `add_writer` on a descriptor its transport owns, not on a duplicate (epoll
   watches each descriptor on its own). No thread is used, and a reader that stops
   reading costs one idle watcher, never the loop;
4. the transport reads again, and the connection goes on (keep-alive) as usual.

A peer that goes away shows as a writable socket whose `sendfile` raises
`ConnectionResetError` or `BrokenPipeError`; that ends the response as any broken
connection does in aiohttp (the connection is closed), and the duplicate descriptor is
always closed. Left to aiohttp, unchanged: the stock loop (its own `loop.sendfile` is
already `os.sendfile`), TLS (bytes must go through the TLS layer, so aiohttp's chunked
copy), compression, and platforms without `os.sendfile`.
"""

from __future__ import annotations

import asyncio
import errno
import os
from dataclasses import dataclass
from typing import IO, Any

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

__all__ = ["SENDFILE_BLOCK", "BlobResponse", "DownloadStats", "socket_sendfile_applies"]

SENDFILE_BLOCK = 1 << 20  # at most this much per `os.sendfile` call on the loop's thread
_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSOCK}


@dataclass(slots=True)
class DownloadStats:
    """What the downloads of one listener were sent with (bodies only, not HEAD or errors)."""

    socket_sendfile: int = 0  # responses sent here with `os.sendfile` on the socket
    socket_sendfile_bytes: int = 0
    by_aiohttp: int = 0  # left to aiohttp: `loop.sendfile`, or its chunked copy (TLS)
    sending: int = 0  # bodies being sent now, either way


def socket_sendfile_applies(
    loop: asyncio.AbstractEventLoop, transport: asyncio.BaseTransport
) -> bool:
    """Whether `BlobResponse` sends on this connection itself: a plain TCP socket on a
    loop without its own `sendfile`, on a platform with `os.sendfile`."""
    if not hasattr(os, "sendfile"):
        return False
    if getattr(type(loop), "sendfile", None) is not asyncio.AbstractEventLoop.sendfile:
        return False  # the loop has its own (the stock loop's is os.sendfile already)
    if transport.get_extra_info("sslcontext") is not None:
        return False
    sock = transport.get_extra_info("socket")
    return sock is not None and hasattr(sock, "fileno") and sock.fileno() >= 0


class BlobResponse(web.FileResponse):
    """`web.FileResponse` whose body goes out with `os.sendfile` where the loop cannot.

    Args:
        path: the file.
        stats: counted into for every body sent.
        chunk_size: aiohttp's read size where it copies (TLS).
        headers: extra response headers.
    """

    def __init__(
        self,
        path: os.PathLike[str],
        stats: DownloadStats,
        *,
        chunk_size: int,
        headers: dict[str, str],
    ) -> None:
        super().__init__(path, chunk_size=chunk_size, headers=headers)
        self._stats = stats

    async def _sendfile(
        self, request: web.BaseRequest, fobj: IO[Any], offset: int, count: int
    ) -> AbstractStreamWriter:
        transport = request.transport
        if transport is None:
            raise ConnectionResetError("Connection lost")
        self._stats.sending += 1
        try:
            return await self._send_body(request, transport, fobj, offset, count)
        finally:
            self._stats.sending -= 1

    async def _send_body(
        self,
        request: web.BaseRequest,
        transport: asyncio.Transport,
        fobj: IO[Any],
        offset: int,
        count: int,
    ) -> AbstractStreamWriter:
        loop = asyncio.get_running_loop()
        if self.compression or not socket_sendfile_applies(loop, transport):
            self._stats.by_aiohttp += 1
            return await super()._sendfile(request, fobj, offset, count)
        writer = await web.StreamResponse.prepare(self, request)  # sends the headers
        assert writer is not None
        await _drained(transport, writer)
        try:
            sent = await _send(loop, transport, fobj.fileno(), offset, count)
        except _Unsupported:
            self._stats.by_aiohttp += 1
            return await self._sendfile_fallback(writer, fobj, offset, count)
        self._stats.socket_sendfile += 1
        self._stats.socket_sendfile_bytes += sent
        await web.StreamResponse.write_eof(self)
        return writer


class _Unsupported(Exception):
    """`os.sendfile` refused this socket or file before sending anything."""


async def _drained(transport: asyncio.Transport, writer: AbstractStreamWriter) -> None:
    """Wait until the transport has handed everything it buffered to the kernel; raises
    `ConnectionResetError` when the connection is gone."""
    if transport.is_closing():
        raise ConnectionResetError("Connection lost")
    if transport.get_write_buffer_size() == 0:
        return
    low, high = transport.get_write_buffer_limits()
    transport.set_write_buffer_limits(high=0)  # paused until empty; drain waits for that
    try:
        await writer.drain()
    finally:
        transport.set_write_buffer_limits(high=high, low=low)
    if transport.is_closing() or transport.get_write_buffer_size() != 0:
        raise ConnectionResetError("Connection lost")


async def _send(
    loop: asyncio.AbstractEventLoop,
    transport: asyncio.Transport,
    file: int,
    offset: int,
    count: int,
) -> int:
    """Send `count` bytes of `file` from `offset` on the transport's socket; the bytes sent."""
    sock = transport.get_extra_info("socket")
    fd = os.dup(sock.fileno())  # uvloop refuses add_writer on its transport's own descriptor
    resume = transport.is_reading()
    transport.pause_reading()
    sent = 0
    try:
        while sent < count:
            try:
                done = os.sendfile(fd, file, offset + sent, min(count - sent, SENDFILE_BLOCK))
            except BlockingIOError:
                await _writable(loop, fd)
                continue
            except OSError as error:
                if sent == 0 and error.errno in _UNSUPPORTED:
                    raise _Unsupported from error
                raise
            if done == 0:  # the file ended before its length: the response cannot be whole
                raise ConnectionAbortedError("the file ended before the announced length")
            sent += done
            if sent < count:
                await _writable(loop, fd)  # also lets the loop run between blocks
    finally:
        os.close(fd)
        if resume and not transport.is_closing():
            transport.resume_reading()
    return sent


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    waiter: asyncio.Future[None] = loop.create_future()
    loop.add_writer(fd, _wake, waiter)
    try:
        await waiter
    finally:
        loop.remove_writer(fd)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
