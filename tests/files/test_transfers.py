"""Uploads and downloads over real loopback HTTP, through the client library and raw HTTP."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from chat_client.files import (
    FileCorrupt,
    FileTransferError,
    Progress,
    UploadRefused,
    download,
    part_path,
    upload,
)
from protocol import ErrorCode, FileInfo, Upload, UploadReady
from tests.files.support import files_harness, random_file, sha256_hex

MIB = 1 << 20


class Cut(Exception):
    """Raised from a progress callback to break a transfer off in the middle."""


def cut_at(limit: int) -> tuple[list[int], Progress]:
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        if done >= limit and done < total:
            raise Cut

    return seen, progress


@pytest.mark.slow
async def test_50_mib_round_trip_keeps_every_byte(tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    data = random_file(source, 50 * MIB)
    async with files_harness(tmp_path / "server") as files:
        progress: list[tuple[int, int]] = []
        shared = await upload(
            source,
            room="lobby",
            request=files.requester(),
            progress=lambda done, total: progress.append((done, total)),
        )
        assert shared.size == len(data) and shared.sha256 == sha256_hex(data)
        assert progress[-1] == (len(data), len(data))
        assert [record.id for _, record in files.shared] == [shared.id]
        stored = files.service.blobs.blob_path(shared.sha256)
        assert stored.stat().st_size == len(data)

        (tmp_path / "out").mkdir()
        dest = await download(shared, tmp_path / "out" / "big.bin")
        assert hashlib.sha256(dest.read_bytes()).hexdigest() == shared.sha256
        assert not part_path(dest, shared).exists()


async def test_upload_cut_in_the_middle_resumes_from_the_servers_offset(tmp_path: Path) -> None:
    source = tmp_path / "report.pdf"
    data = random_file(source, 6 * MIB)
    async with files_harness(tmp_path / "server") as files:
        _, stop_half_way = cut_at(3 * MIB)
        with pytest.raises(Cut):
            await upload(source, room="lobby", request=files.requester(), progress=stop_half_way)
        # The server keeps what arrived; asking again for the same file reports it.
        ticket = files.ticket("report.pdf", data)
        for _ in range(100):
            if not ticket.busy:
                break
            await asyncio.sleep(0.01)
        assert 0 < ticket.received < len(data)
        held = ticket.received

        first: list[int] = []
        shared = await upload(
            source,
            room="lobby",
            request=files.requester(),
            progress=lambda done, total: first.append(done),
        )
        assert first[0] == held  # it went on from there instead of starting again
        assert shared.sha256 == sha256_hex(data)
        dest = await download(shared, tmp_path / "copy.pdf")
        assert dest.read_bytes() == data


async def test_download_cut_in_the_middle_resumes_with_range(tmp_path: Path) -> None:
    source = tmp_path / "photo.jpg"
    data = random_file(source, 6 * MIB)
    async with files_harness(tmp_path / "server") as files:
        shared = await upload(source, room="lobby", request=files.requester())
        dest = tmp_path / "down" / "photo.jpg"
        dest.parent.mkdir()
        _, stop_half_way = cut_at(2 * MIB)
        with pytest.raises(Cut):
            await download(shared, dest, progress=stop_half_way)
        partial = part_path(dest, shared)
        held = partial.stat().st_size
        assert 0 < held < len(data) and not dest.exists()

        seen: list[int] = []
        await download(shared, dest, progress=lambda done, total: seen.append(done))
        assert seen[0] > held  # the first progress counts the bytes already there
        # One block (1 MiB) and the chunk that completed it: up to 256 KiB on the stock
        # loop, more on uvloop, whose socket reads are larger (the test runs on both loops).
        assert seen[0] - held <= 2 * MIB
        assert dest.read_bytes() == data
        assert not partial.exists()


async def test_a_mismatching_sha256_is_422_and_file_corrupt(tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    data = random_file(source, 300_000)
    async with files_harness(tmp_path / "server") as files:
        real = files.requester()

        async def lying(announce: Upload) -> UploadReady:
            wrong = announce.model_copy(update={"sha256": sha256_hex(b"something else")})
            return await real(wrong)

        with pytest.raises(FileCorrupt):
            await upload(source, room="lobby", request=lying)
        assert len(files.corrupt) == 1 and not files.shared
        assert list(files.service.blobs.partials.iterdir()) == []
        # The used token is gone with the bytes.
        async with aiohttp.ClientSession() as session:
            url = files.service.upload_url(files.corrupt[0])
            response = await session.put(url, data=data)
            assert response.status == 404


async def test_a_download_with_the_wrong_hash_keeps_nothing(tmp_path: Path) -> None:
    source = tmp_path / "a.bin"
    random_file(source, 100_000)
    async with files_harness(tmp_path / "server") as files:
        shared = await upload(source, room="lobby", request=files.requester())
        lie = shared.model_copy(update={"sha256": sha256_hex(b"other")})
        dest = tmp_path / "a-copy.bin"
        with pytest.raises(FileCorrupt):
            await download(lie, dest)
        assert [name for name in os.listdir(tmp_path) if name.startswith("a-copy")] == []


async def test_too_large_and_too_many_at_once_are_refused(tmp_path: Path) -> None:
    async with files_harness(tmp_path / "server", max_file=1000) as files:
        request = files.requester()
        with pytest.raises(UploadRefused) as too_big:
            await request(Upload(room="lobby", name="x", size=1001, sha256="a" * 64))
        assert too_big.value.code == ErrorCode.FILE_TOO_LARGE
        await request(Upload(room="lobby", name="one", size=10, sha256="a" * 64))
        again = await request(Upload(room="lobby", name="one", size=10, sha256="a" * 64))
        await request(Upload(room="lobby", name="two", size=10, sha256="a" * 64))
        with pytest.raises(UploadRefused) as third:
            await request(Upload(room="lobby", name="three", size=10, sha256="a" * 64))
        assert third.value.code == ErrorCode.LIMIT_REACHED
        # Somebody else is not held back by alice's uploads.
        bob = files.requester(owner="bob", sender="bob")
        assert (await bob(Upload(room="lobby", name="one", size=10, sha256="a" * 64))).offset == 0
        assert again.offset == 0


async def test_a_body_longer_than_the_size_is_refused(tmp_path: Path) -> None:
    async with files_harness(tmp_path / "server") as files:
        ticket = files.ticket("x.bin", b"0123456789")

        async def body() -> AsyncIterator[bytes]:
            yield b"0123456789"
            yield b"and more"

        async with aiohttp.ClientSession() as session:
            response = await session.put(files.service.upload_url(ticket), data=body())
            assert response.status == 400
            assert (await response.text()).count("\n") == 1
        assert ticket.received == 10 and not files.shared


async def test_the_upload_rate_is_limited_per_client(tmp_path: Path) -> None:
    source = tmp_path / "slow.bin"
    random_file(source, 600_000)
    async with files_harness(tmp_path / "server", upload_rate=1_000_000) as files:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await upload(source, room="lobby", request=files.requester())
        # 600 kB at 1 MB/s with a burst of 125 kB: close to half a second.
        assert loop.time() - started >= 0.4


async def test_download_headers_range_and_head(tmp_path: Path) -> None:
    source = tmp_path / "page.html"
    source.write_bytes(b"<html><script>alert(1)</script></html>")
    async with files_harness(tmp_path / "server") as files:
        shared = await upload(source, room="lobby", request=files.requester(), name="päge.html")
        async with aiohttp.ClientSession() as session:
            async with session.get(shared.url) as whole:
                assert whole.status == 200
                assert whole.headers["Content-Type"] == "application/octet-stream"
                assert whole.headers["X-Content-Type-Options"] == "nosniff"
                disposition = whole.headers["Content-Disposition"]
                assert disposition.startswith("attachment;")
                assert "filename*=UTF-8''p%C3%A4ge.html" in disposition
                assert await whole.read() == source.read_bytes()
            async with session.get(shared.url, headers={"Range": "bytes=6-13"}) as part:
                assert part.status == 206
                assert await part.read() == b"<script>"
                assert part.headers["Content-Range"] == f"bytes 6-13/{shared.size}"
            async with session.head(shared.url) as head:
                assert head.status == 200
                assert head.headers["Content-Length"] == str(shared.size)
            for bad in (f"bytes={shared.size}-", "bytes=5-2", "pages=1-2"):
                async with session.get(shared.url, headers={"Range": bad}) as refused:
                    assert refused.status == 416
                    assert await refused.text() == "range not satisfiable\n"


async def test_wrong_expired_and_deleted_tokens_look_the_same(tmp_path: Path) -> None:
    async with files_harness(tmp_path / "server") as files:
        shared: list[FileInfo] = []
        for name in ("one.txt", "two.txt"):
            path = tmp_path / name
            path.write_bytes(name.encode() * 100)
            shared.append(await upload(path, room="lobby", request=files.requester()))
        assert await files.service.delete(shared[0].id)
        await files.service.index.expire_missing(set())  # the one left is expired
        token = shared[1].url.split("/")[-2]
        urls = [
            shared[0].url,  # deleted
            shared[1].url,  # expired
            f"{files.base_url}/f/{token[:-1]}x/two.txt",  # wrong
            f"{files.base_url}/f/nothing",
            f"{files.base_url}/u/nothing",
            f"{files.base_url}/elsewhere",
        ]
        async with aiohttp.ClientSession() as session:
            for url in urls:
                method = "PUT" if "/u/" in url else "GET"
                async with session.request(method, url) as response:
                    assert response.status == 404, url
                    assert await response.text() == "not found\n"
            async with session.post(f"{files.base_url}/f/nothing") as wrong_method:
                assert wrong_method.status == 405
                assert (await wrong_method.text()).count("\n") == 1
        with pytest.raises(FileTransferError):
            await download(shared[0], tmp_path / "gone.txt")


async def test_curl_downloads_and_uploads(tmp_path: Path) -> None:
    source = tmp_path / "report.pdf"
    data = random_file(source, 200_000)
    async with files_harness(tmp_path / "server") as files:
        ticket = files.ticket("report.pdf", data)
        put = await asyncio.create_subprocess_exec(
            "curl", "-sS", "--fail", "-T", str(source), files.service.upload_url(ticket),
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await put.communicate()
        assert put.returncode == 0
        shared = FileInfo.model_validate_json(out)
        assert shared.url.endswith("/report.pdf")

        fetched = tmp_path / "fetched"
        fetched.mkdir()
        get = await asyncio.create_subprocess_exec(
            "curl", "-sS", "--fail", "-O", shared.url, cwd=fetched
        )  # fmt: skip
        assert await get.wait() == 0
        assert (fetched / "report.pdf").read_bytes() == data
