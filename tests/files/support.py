"""Helpers for the file tests: a real files listener on loopback port 0, files on tmp_path."""

from __future__ import annotations

import hashlib
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from chat_client.files import UploadRefused
from chat_server.files.config import FilesConfig
from chat_server.files.http import FilesListener
from chat_server.files.index import FileRecord
from chat_server.files.service import FileError, FileService
from chat_server.files.uploads import UploadAsk, UploadTicket
from protocol import Upload, UploadReady

__all__ = ["FilesHarness", "files_harness", "random_file", "sha256_hex"]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def random_file(path: Path, size: int) -> bytes:
    """Write `size` random bytes to `path` and return them."""
    data = os.urandom(size)
    path.write_bytes(data)
    return data


@dataclass
class FilesHarness:
    """A running listener, and what its service announced (shared files, corrupt uploads)."""

    listener: FilesListener
    shared: list[tuple[UploadTicket, FileRecord]] = field(default_factory=list)
    corrupt: list[UploadTicket] = field(default_factory=list)

    @property
    def service(self) -> FileService:
        return self.listener.service

    @property
    def base_url(self) -> str:
        return f"{self.listener.scheme}://127.0.0.1:{self.listener.port}"

    def requester(
        self, owner: str = "alice", sender: str = "alice"
    ) -> Callable[[Upload], Awaitable[UploadReady]]:
        """What a chat server does with an `upload` line, without the chat line."""

        async def request(upload: Upload) -> UploadReady:
            try:
                ticket = self.service.request_upload(
                    UploadAsk(
                        owner=owner,
                        sender=sender,
                        room=upload.room,
                        to=upload.to,
                        name=upload.name,
                        size=upload.size,
                        sha256=upload.sha256,
                        host="127.0.0.1",
                    )
                )
            except FileError as error:
                raise UploadRefused(error.code, error.message) from None
            url = self.service.upload_url(ticket)
            return UploadReady(file=ticket.id, url=url, offset=ticket.received)

        return request

    def ticket(self, name: str, data: bytes, owner: str = "alice") -> UploadTicket:
        return announce(self.service, name, data, owner)


def announce(service: FileService, name: str, data: bytes, owner: str = "alice") -> UploadTicket:
    """The ticket for `owner` sharing `data` as `name` in #lobby."""
    return service.request_upload(
        UploadAsk(
            owner=owner,
            sender=owner,
            room="lobby",
            to=None,
            name=name,
            size=len(data),
            sha256=sha256_hex(data),
            host="127.0.0.1",
        )
    )


@asynccontextmanager
async def files_harness(
    directory: Path, ssl_context: ssl.SSLContext | None = None, **overrides: Any
) -> AsyncIterator[FilesHarness]:
    config = replace(FilesConfig(directory=directory, port=0, upload_rate=0), **overrides)
    service = FileService(config, FileService.open_index(config, persistent=True))
    listener = FilesListener(service, "127.0.0.1", 0, ssl_context)
    harness = FilesHarness(listener)

    async def on_shared(ticket: UploadTicket, record: FileRecord) -> int | None:
        harness.shared.append((ticket, record))
        return len(harness.shared)

    service.on_shared = on_shared
    service.on_corrupt = harness.corrupt.append
    await listener.start()
    try:
        yield harness
    finally:
        await listener.close()
