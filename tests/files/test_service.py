"""The file service without HTTP: tickets, quota expiry, deletes, the index across restarts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from chat_server.files.blobs import BlobStore
from chat_server.files.config import FilesConfig, parse_size
from chat_server.files.index import FileRecord
from chat_server.files.service import FileError, FileService
from chat_server.files.uploads import ByteRate, UploadTicket
from chat_server.store import StoreError
from protocol import ErrorCode
from tests.files.support import announce


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


MakeService = Callable[..., Awaitable[FileService]]


@pytest.fixture
async def make_service() -> AsyncIterator[MakeService]:
    """Open services on a directory (a fake clock by default); all are closed at the end."""
    made: list[FileService] = []

    async def make(
        directory: Path, clock: Clock | None = None, persistent: bool = True, **overrides: Any
    ) -> FileService:
        config = replace(FilesConfig(directory=directory, port=0, upload_rate=0), **overrides)
        service = FileService(config, FileService.open_index(config, persistent), clock or Clock())
        await service.open()
        made.append(service)
        return service

    yield make
    for service in made:
        await service.close()  # again for one a test closed: harmless


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def share(service: FileService, name: str, data: bytes) -> FileRecord:
    ticket = announce(service, name, data)
    await service.receive(ticket, 0, chunks(data))
    return await service.finish(ticket)


def test_sizes_take_binary_suffixes() -> None:
    assert parse_size("123") == 123
    assert parse_size("512K") == 512 * 1024
    assert parse_size("100M") == 100 << 20
    assert parse_size("2g") == 2 << 30
    assert parse_size("20MiB") == 20 << 20
    for bad in ("", "M", "1.5M", "-1", "10T"):
        with pytest.raises(ValueError):
            parse_size(bad)


def test_the_byte_rate_makes_a_sender_wait_for_what_it_overdrew() -> None:
    rate = ByteRate(1000, 100, now=0.0)
    assert rate.take(100, now=0.0) == 0.0
    assert rate.take(500, now=0.0) == pytest.approx(0.5)
    assert rate.take(100, now=10.0) == 0.0  # refilled, up to the burst only
    assert ByteRate(0, 0, now=0.0).take(10**9, now=0.0) == 0.0


async def test_quota_expires_the_oldest_files_first(
    tmp_path: Path, make_service: MakeService
) -> None:
    service = await make_service(tmp_path, quota=250, max_file=200)
    first = await share(service, "first", b"1" * 100)
    second = await share(service, "second", b"2" * 100)
    third = await share(service, "third", b"3" * 100)  # 300 > 250: the first must go
    assert service.index.by_id(first.id) is not None
    assert service.index.by_id(first.id).expired  # type: ignore[union-attr]
    assert not service.blobs.has(first.sha256)
    assert service.blobs.has(second.sha256) and service.blobs.has(third.sha256)
    assert await service.download(first.token) is None
    assert await service.download(third.token) is not None
    # A message that shared it now says so.
    assert service.current(service.wire(first)).expired is True
    assert service.current(service.wire(third)).expired is None
    with pytest.raises(FileError) as too_big:
        announce(service, "huge", b"x" * 201)
    assert too_big.value.code == ErrorCode.FILE_TOO_LARGE


async def test_the_same_bytes_shared_twice_are_stored_once(
    tmp_path: Path, make_service: MakeService
) -> None:
    service = await make_service(tmp_path, quota=150)
    one = await share(service, "a.txt", b"same" * 25)
    two = await share(service, "b.txt", b"same" * 25)  # would not fit twice
    assert one.sha256 == two.sha256 and one.token != two.token
    assert not service.index.by_id(one.id).expired  # type: ignore[union-attr]
    assert await service.delete(one.id)
    assert service.blobs.has(two.sha256)  # still needed by the second record
    assert await service.delete(two.id)
    assert not service.blobs.has(two.sha256)
    assert not await service.delete(two.id)


async def test_deleting_the_message_deletes_its_file(
    tmp_path: Path, make_service: MakeService
) -> None:
    service = await make_service(tmp_path)

    async def on_shared(ticket: UploadTicket, record: FileRecord) -> int | None:
        return 42  # the seq the room message got

    service.on_shared = on_shared
    record = await share(service, "x.bin", b"x" * 10)
    assert record.seq == 42
    assert await service.delete_for_message("lobby", 41) is False
    assert await service.delete_for_message("lobby", 42) is True
    assert await service.download(record.token) is None
    assert service.index.by_id(record.id) is None
    assert not service.blobs.has(record.sha256)


async def test_asking_again_resumes_and_tickets_expire(
    tmp_path: Path, make_service: MakeService
) -> None:
    clock = Clock()
    service = await make_service(tmp_path, clock)
    data = b"0123456789"
    ticket = announce(service, "n.txt", data)
    await service.receive(ticket, 0, chunks(data[:4]))
    assert ticket.received == 4
    again = announce(service, "n.txt", data)
    assert again is ticket
    assert announce(service, "n.txt", data, owner="bob") is not ticket  # owner is part of it
    clock.now += 3599
    assert service.upload_by_token(ticket.token) is ticket
    clock.now += 3601
    assert service.upload_by_token(ticket.token) is None
    service.sweep()
    assert not service.blobs.partial_path(ticket.id).exists()
    assert announce(service, "n.txt", data) is not ticket


async def test_a_guests_uploads_go_with_its_connection(
    tmp_path: Path, make_service: MakeService
) -> None:
    service = await make_service(tmp_path)
    data = b"abc" * 10
    ticket = announce(service, "g.txt", data, owner="conn:7")
    await service.receive(ticket, 0, chunks(data[:5]))
    service.drop_owner("conn:7")
    assert service.upload_by_token(ticket.token) is None
    assert not service.blobs.partial_path(ticket.id).exists()


async def test_resuming_from_an_earlier_offset_rehashes_what_is_kept(
    tmp_path: Path, make_service: MakeService
) -> None:
    service = await make_service(tmp_path)
    data = bytes(range(256)) * 40
    ticket = announce(service, "r.bin", data)
    await service.receive(ticket, 0, chunks(data[:3000]))
    await service.receive(ticket, 1000, chunks(data[1000:]))  # re-sends a part it had
    record = await service.finish(ticket)
    assert service.blobs.blob_path(record.sha256).read_bytes() == data


async def test_files_survive_a_restart_and_lost_bytes_show_as_expired(
    tmp_path: Path, make_service: MakeService
) -> None:
    service = await make_service(tmp_path)
    kept = await share(service, "kept.txt", b"k" * 10)
    lost = await share(service, "lost.txt", b"l" * 10)
    pending = announce(service, "half.txt", b"h" * 10)
    await service.receive(pending, 0, chunks(b"h" * 5))
    await service.close()
    (tmp_path / "blobs" / lost.sha256[:2] / lost.sha256).unlink()

    again = await make_service(tmp_path)
    assert await again.download(kept.token) == kept
    assert await again.download(lost.token) is None
    assert again.index.by_id(lost.id).expired  # type: ignore[union-attr]
    assert list(again.blobs.partials.iterdir()) == []  # uploads do not outlive the process


async def test_a_file_whose_message_cannot_be_stored_is_not_kept(
    tmp_path: Path, make_service: MakeService
) -> None:
    service = await make_service(tmp_path)

    async def on_shared(ticket: UploadTicket, record: FileRecord) -> int | None:
        raise StoreError("the store is away")

    service.on_shared = on_shared
    ticket = announce(service, "x.bin", b"x" * 10)
    await service.receive(ticket, 0, chunks(b"x" * 10))
    with pytest.raises(FileError) as refused:
        await service.finish(ticket)
    assert refused.value.code == ErrorCode.UNAVAILABLE
    assert service.index.by_id(ticket.id) is None
    assert not service.blobs.has(ticket.sha256)


def test_nodes_share_a_directory_and_a_lone_server_never_joins_them(tmp_path: Path) -> None:
    first, second = BlobStore(tmp_path, shared=True), BlobStore(tmp_path, shared=True)
    with pytest.raises(StoreError):
        BlobStore(tmp_path)  # a lone server would clear the nodes' uploads
    first.close()
    second.close()
    alone = BlobStore(tmp_path)
    with pytest.raises(StoreError):
        BlobStore(tmp_path, shared=True)
    alone.close()
