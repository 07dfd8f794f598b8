"""File sharing without HTTP: announcing uploads, taking their bytes, checking, keeping.

`FileService` is what both the chat side (`upload` requests, deleting a message) and the
HTTP side (PUT and GET) call. It owns the upload tickets, the index of shared files and
the blob directory, and keeps the quota: before a new blob is stored, the oldest live
files are expired until it fits (their records stay, marked `expired`).

Memory stays flat whatever the file size: bytes are written in blocks of `WRITE_BLOCK`,
one block in flight to the disk thread while the next is read, and hashed as they are
written, so finishing a file never re-reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

from protocol import ErrorCode, FileInfo, now_ms

from ..store import StoreError
from .blobs import BlobStore, PartialFile
from .config import FilesConfig
from .index import Change, FileIndex, FileRecord, MemoryFileIndex, SqliteFileIndex
from .uploads import ByteRate, UploadAsk, UploadRegistry, UploadTicket

__all__ = [
    "WRITE_BLOCK",
    "FileError",
    "FileService",
    "TooManyBytes",
    "UploadCorrupt",
]

log = logging.getLogger("chat_server.files")

WRITE_BLOCK = 2 << 20
INDEX_FILE = "files.sqlite3"
DOOM_WAIT = 35.0  # seconds an upload waits for another node to unlink its blob (its TTL)

# Called once a checked file is stored: announce it; returns the room seq it got, if any.
OnShared = Callable[[UploadTicket, FileRecord], Awaitable[int | None]]
OnCorrupt = Callable[[UploadTicket], None]


class FileError(Exception):
    """An `upload` request refused with a wire error code."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class UploadCorrupt(Exception):
    """The bytes received do not have the announced SHA-256; the upload was dropped."""


class TooManyBytes(Exception):
    """The body went on past the announced size; what fit was kept."""


class FileService:
    """Uploads, downloads, quota and deletes of shared files.

    Args:
        config: limits and the directory to keep files in.
        index: where the records live (`open_index` picks one).
        clock: monotonic seconds (tests pass a fake one).
        shared: the directory is shared with other nodes of the chat (`--redis`): it is
            locked shared rather than exclusive, and only old partial uploads are cleared.

    Call `open` before the first upload (the files listener does).
    """

    def __init__(
        self,
        config: FilesConfig,
        index: FileIndex,
        clock: Callable[[], float] = time.monotonic,
        shared: bool = False,
    ) -> None:
        if config.directory is None:
            raise ValueError("FilesConfig.directory must be set for a FileService")
        self.config = config
        self.index = index
        self.shared = shared
        self.blobs = BlobStore(config.directory, shared=shared)
        self.uploads = UploadRegistry(config.upload_ttl, config.uploads_per_client)
        self.on_shared: OnShared | None = None
        self.on_corrupt: OnCorrupt | None = None
        self._clock = clock
        self._rates: dict[str, ByteRate] = {}
        # How URLs start; the listener sets them once it knows its port (and TLS).
        self.scheme = "http"
        self.port = config.port
        self.listen_host: str | None = None  # the listener's own address, when it has one
        self._background: set[asyncio.Task[None]] = set()
        self._opened = False

    async def open(self) -> None:
        """Read the index, and bring it and the directory in line (once)."""
        if self._opened:
            return
        self._opened = True
        await self.index.open()
        await self._reconcile()

    @staticmethod
    def open_index(config: FilesConfig, persistent: bool) -> FileIndex:
        """An SQLite index in the files directory, or a memory one (nothing kept)."""
        if not persistent or config.directory is None:
            return MemoryFileIndex()
        config.directory.mkdir(parents=True, exist_ok=True)
        return SqliteFileIndex(config.directory / INDEX_FILE)

    async def close(self) -> None:
        for task in list(self._background):
            await task
        await self.index.close()
        self.blobs.close()

    def base_url(self, host: str) -> str:
        """`scheme://host:port` of the files listener, as reached at `host`."""
        shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
        return f"{self.scheme}://{shown}:{self.port}"

    def upload_url(self, ticket: UploadTicket) -> str:
        """Where the bytes of `ticket` are PUT: a one-time capability."""
        return f"{self.base_url(ticket.host)}/u/{ticket.token}"

    def url_host(self, host: str) -> str:
        """The host for URLs of a file shared at `host`: `--files-host`, else the
        listener's own address when it listens on one, else `host` (the address the
        sharer reached its server at; on one host, every node's too)."""
        return self.config.public_host or self.listen_host or host

    def wire(self, record: FileRecord) -> FileInfo:
        """The `file` object for `record`, with its download URL on this server."""
        return record.to_wire(self.base_url(self.url_host(record.host)))

    def localize(self, info: FileInfo) -> FileInfo:
        """`info` with its URL on this server (the same token; another node made it)."""
        parts = urlsplit(info.url)
        url = self.base_url(self.url_host(parts.hostname or "127.0.0.1")) + parts.path
        return info if url == info.url else info.model_copy(update={"url": url})

    @property
    def max_file(self) -> int:
        return min(self.config.max_file, self.config.quota)

    # --- announcing ----------------------------------------------------------------------

    def request_upload(self, ask: UploadAsk) -> UploadTicket:
        """The ticket for this upload: the same one again when resuming, else a new one.

        The caller has already checked that `ask.sender` may share into its room / with
        its recipient.

        Raises:
            FileError: `file_too_large`, or `limit_reached` (too many uploads at once).
        """
        if ask.size > self.max_file:
            raise FileError(
                ErrorCode.FILE_TOO_LARGE, f"a file may have at most {self.max_file} bytes"
            )
        now = self._clock()
        same = self.uploads.find_same(ask, now)
        if same is not None:
            self.uploads.touch(same, now)
            return same
        if self.uploads.full(ask.owner, now):
            raise FileError(
                ErrorCode.LIMIT_REACHED,
                f"at most {self.uploads.per_owner} uploads at once; finish one first",
            )
        ticket = UploadTicket.for_ask(
            ask,
            file_id=secrets.token_hex(8),
            token=secrets.token_urlsafe(24),
            expires=now + self.uploads.ttl,
        )
        self.uploads.add(ticket)
        return ticket

    def upload_by_token(self, token: str) -> UploadTicket | None:
        return self.uploads.by_token(token, self._clock())

    # --- resuming through another node (accounts, a shared directory) -------------------

    async def resume_elsewhere(self, ask: UploadAsk) -> None:
        """Take over this upload if another node (or an earlier run) announced it: the
        next `request_upload` then finds it here, with the bytes held in `partial/`."""
        now = self._clock()
        if not self.shared or self.uploads.find_same(ask, now):
            return
        key = upload_key(*ask.same)
        try:
            found = await self.index.find_upload(key)
        except StoreError as error:
            log.warning("files: cannot look for an upload to resume: %s", error)
            return
        if found is None or self.uploads.by_token(found["token"], now) is not None:
            return
        path = self.blobs.partial_path(found["id"])
        held = await asyncio.to_thread(_held_bytes, path)
        ticket = UploadTicket.for_ask(
            ask,
            file_id=found["id"],
            token=found["token"],
            expires=now + self.uploads.ttl,
            # At most all but the last byte: the client then sends at least one, and the
            # PUT that brings the last byte is the one that finishes the upload.
            received=min(held, ask.size - 1),
            portable=True,
        )
        self.uploads.add(ticket)

    async def keep_resumable(self, ticket: UploadTicket) -> None:
        """Tell every node of an account's upload (its time renewed), and keep its bytes."""
        if not self.shared:
            return
        ticket.portable = True
        path = self.blobs.partial_path(ticket.id)
        await asyncio.to_thread(_touch, path)  # the sweep of old partials goes by mtime
        key = upload_key(*ticket.same)
        await self.index.keep_upload(
            key, {"id": ticket.id, "token": ticket.token}, self.uploads.ttl
        )

    # --- receiving -----------------------------------------------------------------------

    async def receive(self, ticket: UploadTicket, start: int, body: AsyncIterable[bytes]) -> None:
        """Write `body` into the upload from byte `start` (at most what is already held).

        Whatever arrives is kept, also when the body breaks off: the next `upload` for the
        same file reports it as the offset.

        Raises:
            TooManyBytes: the body ran past the announced size.
        """
        assert not ticket.busy and 0 <= start <= ticket.received
        ticket.busy = True
        try:
            await self._receive(ticket, start, body)
        finally:
            ticket.busy = False
            self.uploads.touch(ticket, self._clock())
            if ticket.portable and ticket.received < ticket.size:
                await self.keep_resumable(ticket)

    async def _receive(self, ticket: UploadTicket, start: int, body: AsyncIterable[bytes]) -> None:
        path = self.blobs.partial_path(ticket.id)
        hasher = ticket.hasher if ticket.hasher is not None and start == ticket.received else None
        if hasher is None:
            hasher = await asyncio.to_thread(PartialFile.prefix_hasher, path, start)
        partial = await asyncio.to_thread(PartialFile, path, start, hasher)
        ticket.received, ticket.hasher = start, None
        rate = self._rate(ticket.owner)
        block: list[bytes] = []  # chunks as aiohttp hands them over: no copying here
        block_size = 0
        in_flight: asyncio.Future[None] | None = None
        try:
            async for chunk in body:
                if start + len(chunk) > ticket.size:
                    block.append(chunk[: ticket.size - start])  # keep what fits, refuse the rest
                    raise TooManyBytes
                block.append(chunk)
                block_size += len(chunk)
                start += len(chunk)
                delay = rate.take(len(chunk), self._clock())
                if delay > 0:
                    await asyncio.sleep(delay)
                if block_size >= WRITE_BLOCK:
                    if in_flight is not None:
                        await in_flight
                    in_flight = asyncio.ensure_future(asyncio.to_thread(partial.write, block))
                    block, block_size = [], 0
        finally:
            if in_flight is not None:
                await in_flight
            if block:
                await asyncio.to_thread(partial.write, block)
            complete = partial.written == ticket.size
            await asyncio.to_thread(partial.close, complete)
            ticket.received, ticket.hasher = partial.written, partial.hasher

    def _rate(self, owner: str) -> ByteRate:
        rate = self._rates.get(owner)
        if rate is None:
            limit = self.config.upload_rate
            rate = ByteRate(limit, max(limit / 8, 64 << 10), self._clock())
            self._rates[owner] = rate
        return rate

    async def finish(self, ticket: UploadTicket) -> FileRecord:
        """Check and keep a complete upload, then announce it through `on_shared`.

        Raises:
            UploadCorrupt: the SHA-256 does not match; the bytes are gone and `on_corrupt`
                has told the uploader.
            FileError: the file could not be shared (its recipient went offline, or the
                index is unreachable: `unavailable`); it is deleted again.
        """
        assert ticket.received == ticket.size and ticket.hasher is not None
        self.uploads.remove(ticket)
        if ticket.portable:
            await self.index.drop_upload(upload_key(*ticket.same))
        if ticket.hasher.hexdigest() != ticket.sha256:
            await asyncio.to_thread(self.blobs.drop_partial, ticket.id)
            if self.on_corrupt is not None:
                self.on_corrupt(ticket)
            raise UploadCorrupt
        record = FileRecord(
            id=ticket.id,
            token=secrets.token_urlsafe(24),
            name=ticket.name,
            size=ticket.size,
            sha256=ticket.sha256,
            sender=ticket.sender,
            room=ticket.room,
            to=ticket.to,
            created_ms=now_ms(),
            host=ticket.host,
        )
        try:
            change = await self._add(record)
        except StoreError as error:
            await asyncio.to_thread(self.blobs.drop_partial, ticket.id)
            raise FileError(ErrorCode.UNAVAILABLE, str(error)) from None
        # Recorded first, then moved into place: the blob of a live record is never
        # unlinked, and nobody has the token before `on_shared` tells them.
        await asyncio.to_thread(self.blobs.commit, ticket.id, ticket.sha256)
        for old in change.expired:
            log.info("file %s expired to keep the quota", old.id)
        await self._unlink(change.doomed)
        if self.on_shared is not None:
            try:
                seq = await self.on_shared(ticket, record)
            except (FileError, StoreError) as error:
                await self._delete_quietly(record.id)  # nobody could be told about it
                if isinstance(error, StoreError):
                    raise FileError(
                        ErrorCode.UNAVAILABLE, "the message could not be stored; try again"
                    ) from None
                raise
            if seq is not None:
                self.index.set_seq(record.id, seq)
                record = replace(record, seq=seq)
        return record

    # --- keeping -------------------------------------------------------------------------

    async def _add(self, record: FileRecord) -> Change:
        """Add to the index within the quota; waits while another node unlinks the blob."""
        deadline = self._clock() + DOOM_WAIT
        while True:
            change = await self.index.add(record, self.config.quota)
            if change is not None:
                return change
            if self._clock() > deadline:
                raise StoreError("the same bytes are being deleted; upload them again")
            await asyncio.sleep(0.05)

    async def _unlink(self, doomed: list[str]) -> None:
        """Unlink the blobs the index gave up, then tell it they are gone."""
        if not doomed:
            return
        for sha256 in doomed:
            await asyncio.to_thread(self.blobs.delete, sha256)
        try:
            await self.index.blobs_deleted(doomed)
        except StoreError as error:
            log.warning("files: %s", error)

    async def download(self, token: str) -> FileRecord | None:
        """The live file a download token opens, or None (wrong, expired or deleted)."""
        return await self.index.by_token(token)

    def current(self, info: FileInfo) -> FileInfo:
        """`info` as it stands now: marked `expired` once its bytes are gone."""
        record = self.index.by_id(info.id)
        if record is not None and not record.expired:
            return info
        return info if info.expired else info.model_copy(update={"expired": True})

    async def delete(self, file_id: str) -> bool:
        """Delete a shared file (its message was deleted): the URL becomes a 404."""
        change = await self.index.remove(file_id)
        await self._unlink(change.doomed)
        return change.removed is not None

    async def _delete_quietly(self, file_id: str) -> None:
        try:
            await self.delete(file_id)
        except StoreError as error:  # it stays until it expires; nobody has its token
            log.warning("files: could not delete file %s: %s", file_id, error)

    async def delete_for_message(self, room: str, seq: int) -> bool:
        """Delete the file a room message shared, if it shared one."""
        change = await self.index.remove_for_message(room, seq)
        await self._unlink(change.doomed)
        return change.removed is not None

    def forget_message(self, room: str, seq: int) -> None:
        """A room message was deleted (seen in a loop pass that must not wait): its file
        opens nothing here at once, and is deleted from the index in the background."""
        self.index.hide_message(room, seq)
        task = asyncio.get_running_loop().create_task(self._forget(room, seq))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _forget(self, room: str, seq: int) -> None:
        try:
            await self.delete_for_message(room, seq)
        except StoreError as error:
            log.warning("files: the file of %s/%d stays until it expires: %s", room, seq, error)

    # --- housekeeping --------------------------------------------------------------------

    def sweep(self) -> None:
        """Drop uploads whose time is up, with their partial bytes.

        In a shared directory another node may have taken an upload over: there the
        partial bytes go when nobody wrote to or asked for them for the ticket time."""
        for ticket in self.uploads.take_expired(self._clock()):
            if not self.shared:
                self.blobs.drop_partial(ticket.id)
        if self.shared:
            self.blobs.clear_partials(older_than=self.config.upload_ttl)

    def drop_owner(self, owner: str) -> None:
        """A guest's connection closed: its unfinished uploads can never resume."""
        for ticket in self.uploads.take_owner(owner):
            self.blobs.drop_partial(ticket.id)
        self._rates.pop(owner, None)

    async def _reconcile(self) -> None:
        # Tickets live in memory only, so partial bytes of a previous run are orphans;
        # in a shared directory only those too old to belong to another node's upload.
        if self.shared:
            await asyncio.to_thread(self.blobs.clear_partials, self.config.upload_ttl)
        else:
            await asyncio.to_thread(self.blobs.clear_partials)
        stored = await asyncio.to_thread(self.blobs.stored_hashes)
        await self.index.expire_missing(stored)
        await self._unlink(await self.index.doom_unused(stored))


def upload_key(
    owner: str, room: str | None, to: str | None, name: str, size: int, sha256: str
) -> str:
    """What makes "the same upload", as one key (names may hold any character)."""
    same = json.dumps([owner, room, to, name, size, sha256], ensure_ascii=False)
    return hashlib.sha256(same.encode()).hexdigest()


def _held_bytes(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _touch(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.utime(path)
