"""Sending and fetching shared files over the server's files port (feature `files`).

`upload(path, room=... | to=..., request=...)` hashes the file, asks the chat server for an
upload URL (`request` sends the `upload` line and returns the `upload_ready` reply: a
`ChatClient` method, or anything else that speaks the protocol), and PUTs the bytes from
the offset the server already holds. A dropped connection is retried from the server's new
offset; after a restart, uploading the same file again resumes the same way.

`download(file, dest)` fetches into a `.part` file beside `dest`, resuming with `Range` from what is
already there, checks the SHA-256 and only then moves the file to `dest`; a mismatch keeps
nothing. `free_path` picks a destination that overwrites nothing (`name (1).ext`).

Errors::

    FileTransferError        the transfer failed (the message says why, in plain words)
      ├── FileCorrupt        the bytes do not have the announced SHA-256; nothing was kept
      └── UploadRefused      the server refused the `upload` request; `code` says why
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import ssl
import unicodedata
from collections.abc import AsyncGenerator, Awaitable, Callable
from pathlib import Path
from typing import BinaryIO

import aiohttp

from protocol import ErrorCode, FileInfo, Upload, UploadReady

__all__ = [
    "FileCorrupt",
    "FileTransferError",
    "Progress",
    "RequestUpload",
    "UploadRefused",
    "download",
    "free_path",
    "part_path",
    "safe_file_name",
    "sha256_file",
    "upload",
]

BLOCK = 1 << 20
RETRIES = 5
RETRY_DELAY = 0.2  # seconds, doubled after each failed attempt

Progress = Callable[[int, int], None]
"""Called with (bytes done, total bytes) as a transfer goes on."""
RequestUpload = Callable[[Upload], Awaitable[UploadReady]]
"""Sends an `upload` request and returns its `upload_ready` (raising `UploadRefused`)."""
SslArg = ssl.SSLContext | aiohttp.Fingerprint | bool | None

_RETRYABLE = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError)


class FileTransferError(Exception):
    """An upload or download failed."""


class FileCorrupt(FileTransferError):
    """The SHA-256 of the bytes is not the announced one; nothing was kept."""


class UploadRefused(FileTransferError):
    """The server refused the `upload` request (`file_too_large`, `limit_reached`, ...)."""

    def __init__(self, code: ErrorCode | str, message: str) -> None:
        super().__init__(message)
        self.code = code


class _Retry(Exception):
    """The server is not ready for this attempt (e.g. it has not yet seen the last one end)."""


async def sha256_file(path: Path, length: int | None = None) -> hashlib._Hash:
    """The SHA-256 state after the first `length` bytes of `path` (all of it by default)."""

    def run() -> hashlib._Hash:
        hasher = hashlib.sha256()
        remaining = length
        with open(path, "rb") as source:
            while remaining is None or remaining > 0:
                chunk = source.read(BLOCK if remaining is None else min(BLOCK, remaining))
                if not chunk:
                    break
                hasher.update(chunk)
                if remaining is not None:
                    remaining -= len(chunk)
        return hasher

    return await asyncio.to_thread(run)


# --- upload ------------------------------------------------------------------------------


async def upload(
    path: Path,
    *,
    request: RequestUpload,
    room: str | None = None,
    to: str | None = None,
    name: str | None = None,
    progress: Progress | None = None,
    ssl: SslArg = None,
    retries: int = RETRIES,
) -> FileInfo:
    """Share the file at `path` in `room` or with `to`; returns the shared `file` object.

    Args:
        path: the file to send.
        request: sends the `upload` line and returns the `upload_ready` reply.
        room: the room to share it in (or `to`, a nick, for a private message).
        name: the name people see (default: the file's own name).
        progress: called with (bytes the server holds, size) as the upload goes on.
        ssl: for an HTTPS files port: an `ssl.SSLContext`, or an `aiohttp.Fingerprint`
            pinning the server's certificate.
        retries: how often a broken connection is retried before giving up.

    Raises:
        UploadRefused: the server refused the upload request.
        FileCorrupt: the server found the bytes did not match (the file changed?).
        FileTransferError: the transfer failed for good.
    """
    size = (await asyncio.to_thread(path.stat)).st_size
    digest = (await sha256_file(path)).hexdigest()
    announce = Upload(room=room, to=to, name=name or path.name, size=size, sha256=digest)
    delay = RETRY_DELAY
    async with aiohttp.ClientSession() as session:
        for attempt in range(retries + 1):
            ready = await request(announce)
            try:
                return await _put(session, ready, path, size, progress, ssl)
            except (*_RETRYABLE, _Retry) as exc:
                if attempt == retries:
                    raise FileTransferError(f"upload of {path.name} failed: {exc}") from None
            await asyncio.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


async def _put(
    session: aiohttp.ClientSession,
    ready: UploadReady,
    path: Path,
    size: int,
    progress: Progress | None,
    ssl: SslArg,
) -> FileInfo:
    offset = ready.offset
    headers = {"Content-Length": str(size - offset), "Content-Type": "application/octet-stream"}
    if offset > 0:
        headers["Content-Range"] = f"bytes {offset}-{size - 1}/{size}"
    if progress is not None:
        progress(offset, size)
    source = await asyncio.to_thread(open, path, "rb")
    body = _read_from(source, path.name, offset, size, progress)
    try:
        async with session.put(ready.url, data=body, headers=headers, ssl=_ssl(ssl)) as response:
            text = await response.text()
    finally:
        # The server may answer before taking the whole body: stop reading, close the file.
        with contextlib.suppress(RuntimeError):
            await body.aclose()
        await asyncio.to_thread(source.close)
    return _put_outcome(response.status, text, path)


def _put_outcome(status: int, text: str, path: Path) -> FileInfo:
    if status == 201:
        return FileInfo.model_validate_json(text)
    if status == 422:
        raise FileCorrupt(f"the server found {path.name} corrupt: {text.strip()}")
    if status == 409 or (status == 400 and "held" in text):
        raise _Retry(text.strip())  # busy, or the body broke off on the way: resume
    if status == 404:
        raise FileTransferError("the upload link is no longer valid; upload again")
    raise FileTransferError(f"upload refused ({status}): {text.strip()}")


async def _read_from(
    source: BinaryIO, name: str, offset: int, size: int, progress: Progress | None
) -> AsyncGenerator[bytes]:
    """The bytes of `source` from `offset`, a block at a time; the next block is read from
    disk (in a thread) while the current one is being sent."""
    await asyncio.to_thread(source.seek, offset)
    sent = offset
    ahead = asyncio.ensure_future(asyncio.to_thread(source.read, min(BLOCK, size - sent)))
    try:
        while sent < size:
            chunk = await ahead
            if not chunk:
                raise FileTransferError(f"{name} got shorter while it was being sent")
            after = sent + len(chunk)
            if after < size:
                ahead = asyncio.ensure_future(
                    asyncio.to_thread(source.read, min(BLOCK, size - after))
                )
            yield chunk
            sent = after
            if progress is not None:
                progress(sent, size)
    finally:
        await asyncio.wait([ahead])  # never close the file under a read
        if not ahead.cancelled():
            ahead.exception()  # looked at, so an unsent block's error is not reported twice


def _ssl(value: SslArg) -> ssl.SSLContext | aiohttp.Fingerprint | bool:
    return True if value is None else value


# --- download ----------------------------------------------------------------------------


async def download(
    file: FileInfo,
    dest: Path,
    *,
    progress: Progress | None = None,
    ssl: SslArg = None,
    retries: int = RETRIES,
) -> Path:
    """Fetch a shared file to `dest` (which must not exist); returns `dest`.

    Bytes go to `part_path(dest, file)` first; an existing one (an earlier, interrupted
    try at the same file) is resumed with `Range`. The SHA-256 is checked before the file
    is moved to `dest`.

    Raises:
        FileCorrupt: the bytes do not match `file.sha256`; the partial file is deleted.
        FileTransferError: the link is gone (expired or deleted), `dest` exists, or the
            transfer failed for good.
    """
    if await asyncio.to_thread(dest.exists):
        raise FileTransferError(f"{dest} exists already")
    part = part_path(dest, file)
    delay = RETRY_DELAY
    async with aiohttp.ClientSession() as session:
        for attempt in range(retries + 1):
            try:
                hasher = await _fetch(session, file, part, progress, ssl)
                break
            except _RETRYABLE as exc:
                if attempt == retries:
                    raise FileTransferError(f"download of {file.name} failed: {exc}") from None
            await asyncio.sleep(delay)
            delay *= 2
    if hasher.hexdigest() != file.sha256:
        await asyncio.to_thread(part.unlink, True)
        raise FileCorrupt(f"{file.name} arrived damaged (SHA-256 mismatch); nothing was kept")
    if await asyncio.to_thread(dest.exists):
        raise FileTransferError(f"{dest} appeared while downloading; the file is in {part}")
    await asyncio.to_thread(os.replace, part, dest)
    return dest


async def _fetch(
    session: aiohttp.ClientSession,
    file: FileInfo,
    part: Path,
    progress: Progress | None,
    ssl: SslArg,
) -> hashlib._Hash:
    """Bring `part` up to the whole file; returns the SHA-256 state of all its bytes."""
    held = await asyncio.to_thread(_size_of, part)
    if held > file.size:
        held = 0
    if held == file.size:
        return await sha256_file(part)
    headers = {"Range": f"bytes={held}-"} if held else {}
    async with session.get(file.url, headers=headers, ssl=_ssl(ssl)) as response:
        if response.status == 404:
            await asyncio.to_thread(part.unlink, True)
            raise FileTransferError(f"{file.name} is no longer on the server")
        if response.status == 200:
            held = 0  # the server sends it all (no range support, or the range was ignored)
        elif response.status != 206:
            raise FileTransferError(f"download refused ({response.status})")
        hasher = await sha256_file(part, held) if held else hashlib.sha256()
        sink = await asyncio.to_thread(_open_part, part, held)
        # Chunks gather into blocks of BLOCK bytes; one block is hashed and written in a
        # thread while the next one arrives, so the loop never waits on the disk.
        block: list[bytes] = []
        block_size = 0
        in_flight: asyncio.Future[None] | None = None
        done = held
        try:
            async for chunk in response.content.iter_any():
                block.append(chunk)
                block_size += len(chunk)
                if block_size >= BLOCK:
                    if in_flight is not None:
                        await in_flight
                    in_flight = asyncio.ensure_future(
                        asyncio.to_thread(_write, sink, hasher, block)
                    )
                    done += block_size
                    block, block_size = [], 0
                    if progress is not None:
                        progress(done, file.size)
        finally:
            if in_flight is not None:
                await in_flight
            if block:
                await asyncio.to_thread(_write, sink, hasher, block)
                done += block_size
                if progress is not None:
                    progress(done, file.size)
            await asyncio.to_thread(sink.close)
    if done != file.size:
        raise aiohttp.ClientPayloadError(f"got {done} of {file.size} bytes")
    return hasher


def _size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def part_path(dest: Path, file: FileInfo) -> Path:
    """Where the bytes of `file` wait until checked; named by content, so only the same
    file ever resumes it."""
    return dest.with_name(f"{dest.name}.{file.sha256[:16]}.part")


def _open_part(part: Path, held: int) -> BinaryIO:
    # Mode 0o644 at most: a downloaded file is never executable.
    fd = os.open(part, os.O_WRONLY | os.O_CREAT, 0o644)
    sink = os.fdopen(fd, "wb")
    sink.truncate(held)
    sink.seek(held)
    return sink


def _write(sink: BinaryIO, hasher: hashlib._Hash, chunks: list[bytes]) -> None:
    for chunk in chunks:
        hasher.update(chunk)
        sink.write(chunk)


# --- where to put it ---------------------------------------------------------------------

_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f/\\:*?\"<>|]")
_RESERVED = re.compile(r"(CON|PRN|AUX|NUL|COM\d|LPT\d)(\..*)?", re.IGNORECASE)


def safe_file_name(name: str) -> str:
    """A name that is safe as one path component on any system, close to `name`."""
    cleaned = _UNSAFE.sub("_", unicodedata.normalize("NFC", name)).strip().lstrip(".")
    cleaned = cleaned.rstrip(". ")
    if not cleaned or _RESERVED.fullmatch(cleaned):
        cleaned = f"download {cleaned}".strip()
    encoded = cleaned.encode()
    while len(encoded) > 200:  # leave room for " (n)" and ".part" under 255 bytes
        cleaned = cleaned[:-1]
        encoded = cleaned.encode()
    return cleaned


def free_path(directory: Path, name: str) -> Path:
    """`directory/name` made safe, or `name (1).ext`, `name (2).ext`... if taken."""
    safe = safe_file_name(name)
    stem, dot, suffix = safe.rpartition(".")
    if not stem:
        stem, dot, suffix = safe, "", ""
    candidate = directory / safe
    number = 1
    while candidate.exists():
        candidate = directory / f"{stem} ({number}){dot}{suffix}"
        number += 1
    return candidate
