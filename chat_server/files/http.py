"""The files listener: HTTP(S) for uploads and downloads, with aiohttp.

Routes (tokens are `secrets` capabilities; nothing else names a file)::

    PUT  /u/<upload token>           the bytes, from 0 or (Content-Range) from the offset
    GET  /f/<download token>/<name>  the file (Range and HEAD too); <name> is for curl -O

Why aiohttp: a well-kept asyncio HTTP server that streams request bodies with flow
control (reading pauses while the handler is busy, so memory stays flat), serves files
with `loop.sendfile` (`FileResponse`), parses `Range`, and takes an `ssl.SSLContext` for
HTTPS; it runs on the chat server's own event loop, so no second process or thread.
Downloads are `BlobResponse` (sendfile.py): `FileResponse` with `os.sendfile` on the
socket also under uvloop, whose loop has no `sendfile`.

Every error is a plain-text status with one line of body. A token that opens nothing is
a 404 `not found`, the same body as for a path that never existed, so nobody learns
whether a file exists. Access logging is off: URLs carry capabilities.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import ssl
import unicodedata
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from aiohttp import web
from aiohttp.http import HttpProcessingError

from protocol import ErrorCode

from ..store import StoreError
from .sendfile import BlobResponse, DownloadStats
from .service import FileError, FileService, TooManyBytes, UploadCorrupt
from .uploads import UploadTicket

__all__ = ["FilesListener", "build_app", "content_disposition"]

log = logging.getLogger("chat_server.files")

READ_BUFFER = 1 << 18  # bytes aiohttp buffers per connection before it pauses reading
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)", re.ASCII)
_SERVICE: web.AppKey[FileService] = web.AppKey("service", FileService)
_DOWNLOADS: web.AppKey[DownloadStats] = web.AppKey("downloads", DownloadStats)
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def plain(status: int, line: str) -> web.Response:
    """An error answer: the status and one line of plain text."""
    return web.Response(status=status, text=line + "\n", content_type="text/plain")


def _not_found() -> web.Response:
    return plain(404, "not found")


class _Refused(Exception):
    def __init__(self, response: web.Response) -> None:
        super().__init__(response.text)
        self.response = response


def content_disposition(name: str) -> str:
    """`attachment` with an ASCII fallback name and the exact UTF-8 one (RFC 6266)."""
    fallback = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    fallback = re.sub(r"[^A-Za-z0-9._ ()+,-]", "_", fallback).strip() or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


# --- uploads -----------------------------------------------------------------------------


def _upload_start(request: web.Request, ticket: UploadTicket) -> int:
    """Where this PUT's body begins in the file; raises `_Refused` for a bad header."""
    header = request.headers.get("Content-Range")
    if header is None:
        start = 0
    else:
        match = _CONTENT_RANGE.fullmatch(header.strip())
        if match is None:
            raise _Refused(plain(400, "Content-Range must be bytes START-END/SIZE"))
        start, end, total = (int(group) for group in match.groups())
        if total != ticket.size or end != ticket.size - 1 or start > end:
            raise _Refused(plain(400, f"Content-Range must run to the end: bytes N-{end}/{total}"))
        if start > ticket.received:
            raise _Refused(plain(409, f"only {ticket.received} bytes are held; resume there"))
    length = request.content_length
    if length is not None and length != ticket.size - start:
        raise _Refused(plain(400, f"the body must hold bytes {start}-{ticket.size - 1}"))
    return start


async def _put(request: web.Request) -> web.StreamResponse:
    service = request.app[_SERVICE]
    ticket = service.upload_by_token(request.match_info["token"])
    if ticket is None:
        return _not_found()
    if ticket.busy:
        return plain(409, "this upload is being sent by another request")
    try:
        start = _upload_start(request, ticket)
        await service.receive(ticket, start, request.content.iter_any())
    except _Refused as refused:
        return refused.response
    except TooManyBytes:
        return plain(400, f"more bytes than the announced size ({ticket.size})")
    except (ConnectionError, HttpProcessingError):
        return plain(400, f"the body broke off; {ticket.received} bytes are held")
    if ticket.received < ticket.size:
        return plain(400, f"the body ended early; {ticket.received} bytes are held")
    try:
        record = await service.finish(ticket)
    except UploadCorrupt:
        return plain(422, "the SHA-256 does not match; the upload was dropped")
    except FileError as error:
        status = 503 if error.code == ErrorCode.UNAVAILABLE else 409
        return plain(status, f"the file could not be shared: {error.message}")
    return web.Response(
        status=201,
        body=service.wire(record).model_dump_json(exclude_none=True).encode() + b"\n",
        content_type="application/json",
    )


# --- downloads ---------------------------------------------------------------------------


def _check_range(request: web.Request, size: int) -> None:
    """Refuse, with a one-line body, the ranges `FileResponse` would answer with an empty 416."""
    if "Range" not in request.headers:
        return
    try:
        wanted = request.http_range
    except ValueError:
        wanted = None
    if wanted is None or (wanted.start is not None and wanted.start >= size):
        response = plain(416, "range not satisfiable")
        response.headers["Content-Range"] = f"bytes */{size}"
        raise _Refused(response)


async def _get(request: web.Request) -> web.StreamResponse:
    service = request.app[_SERVICE]
    try:
        record = await service.download(request.match_info["token"])
    except StoreError:
        return plain(503, "the files index is unavailable; try again")
    if record is None:
        return _not_found()
    path = service.blobs.blob_path(record.sha256)
    if not await asyncio.to_thread(path.is_file):
        return _not_found()  # a shared directory that lost it (or another node's not there)
    try:
        _check_range(request, record.size)
    except _Refused as refused:
        return refused.response
    return BlobResponse(
        path,
        request.app[_DOWNLOADS],
        chunk_size=READ_BUFFER,
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Disposition": content_disposition(record.name),
            "Cache-Control": "private, no-cache",
        },
    )


# --- the app -----------------------------------------------------------------------------


@web.middleware
async def _plain_errors(request: web.Request, handler: _Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return plain(exc.status, exc.reason.lower())
    except (ConnectionError, asyncio.CancelledError):
        raise
    except Exception:
        log.exception("files: %s failed", request.method)  # never the path: it is a capability
        return plain(500, "internal error")


class _QuietParserErrors(logging.Filter):
    """aiohttp logs every malformed request with a traceback (and its request line, which
    may hold a token); what reaches it here is only that, so it goes to debug."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            record.levelno, record.levelname, record.exc_info = logging.DEBUG, "DEBUG", None
            record.msg, record.args = "files: a malformed HTTP request was refused", ()
        return log.isEnabledFor(record.levelno)


_server_log = logging.getLogger("chat_server.files.http")
_server_log.addFilter(_QuietParserErrors())


async def _safety_headers(request: web.Request, response: web.StreamResponse) -> None:
    # Never let a browser render or sniff an uploaded file, nor leak a capability URL.
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"


def build_app(service: FileService, downloads: DownloadStats | None = None) -> web.Application:
    """The aiohttp application serving `service`, counting into `downloads`."""
    app = web.Application(middlewares=[_plain_errors])
    app[_SERVICE] = service
    app[_DOWNLOADS] = DownloadStats() if downloads is None else downloads
    app.router.add_put("/u/{token}", _put)
    app.router.add_get("/f/{token}", _get)
    app.router.add_get("/f/{token}/{name}", _get)
    app.on_response_prepare.append(_safety_headers)
    return app


def _own_address(host: str | None) -> str | None:
    """`host` when it is one address of this machine (not every interface, not a name)."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return None
    return None if address.is_unspecified else str(address)


class FilesListener:
    """Runs the files app on `host:port` (port 0: a free one) on the running loop.

    Args:
        service: the file service to serve.
        host: address to listen on; None for every interface.
        port: TCP port; 0 picks a free one (read it back from `port`).
        ssl_context: serve HTTPS with it (the chat server's certificate) when given.
    """

    def __init__(
        self,
        service: FileService,
        host: str | None,
        port: int,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.service = service
        self._host = host
        self._port = port
        self._ssl = ssl_context
        self._runner: web.AppRunner | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.port = port
        self.downloads = DownloadStats()  # how download bodies were sent

    @property
    def scheme(self) -> str:
        return "https" if self._ssl is not None else "http"

    async def start(self) -> None:
        """Listen; raises OSError when the port is taken."""
        runner = web.AppRunner(
            build_app(self.service, self.downloads),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=1.0,
            read_bufsize=READ_BUFFER,
            logger=_server_log,
        )
        await self.service.open()
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port, ssl_context=self._ssl)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = site.port
        self.service.scheme, self.service.port = self.scheme, self.port
        self.service.listen_host = _own_address(self._host)
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="files-sweep")

    def addresses(self) -> list[tuple[str, int]]:
        assert self._runner is not None
        return [(str(address[0]), int(address[1])) for address in self._runner.addresses]

    async def close(self) -> None:
        """Stop listening, end open transfers, close the index."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.service.close()

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.service.config.sweep_interval)
            self.service.sweep()
