"""Files through the chat server: `upload` on the chat line, bytes over HTTP, the message after."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from chat_client import ChatClient, ClientSettings
from chat_client.secure import TlsOptions
from chat_client.trust import KnownServers
from chat_server.files.config import FilesConfig
from chat_server.server import ChatServer
from tests.conftest import StartServer
from tests.server.helpers import Clients, join
from tests.server.test_accounts import make_account, session
from tests.server.test_text_mode import Netcat
from tests.support import Json, LineClient


def files_config(directory: Path, **overrides: Any) -> FilesConfig:
    return FilesConfig(directory=directory, port=0, upload_rate=0, **overrides)


def announce(name: str, data: bytes, **target: str) -> Json:
    return {
        "type": "upload",
        "name": name,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        **target,
    }


async def put(url: str, data: bytes, **headers: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.put(url, data=data, headers=headers) as response,
    ):
        return response.status, await response.text()


async def get(url: str, **headers: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, await response.read()


async def share(client: LineClient, name: str, data: bytes, **target: str) -> Json:
    ready = await client.request(announce(name, data, **target))
    assert ready["type"] == "upload_ready", ready
    status, body = await put(ready["url"], data)
    assert status == 201, body
    return ready


@pytest.fixture
async def files_server(start_server: StartServer, tmp_path: Path) -> ChatServer:
    return await start_server(files=files_config(tmp_path / "files"))


async def test_a_shared_file_reaches_the_room_and_its_history(
    files_server: ChatServer, clients: Clients
) -> None:
    port = files_server.port
    alice = await clients.registered(port, "alice", "lobby")
    bob = await clients.registered(port, "bob", "lobby")
    data = os.urandom(300_000)
    ready = await alice.request(announce("report.pdf", data, room="#lobby"))
    assert ready["offset"] == 0 and ready["url"].startswith(
        f"http://127.0.0.1:{files_server.files_port}/u/"
    )
    status, _body = await put(ready["url"], data)
    assert status == 201
    seen = [await who.expect("message", room="lobby") for who in (alice, bob)]
    assert seen[0] == seen[1]
    file = seen[1]["file"]
    assert seen[1]["text"] == "report.pdf (300 kB)" and seen[1]["from"] == "alice"
    assert file["id"] == ready["file"] and file["size"] == len(data)
    assert file["sha256"] == hashlib.sha256(data).hexdigest()
    assert "expired" not in file
    assert (await get(file["url"])) == (200, data)

    history = await bob.request({"type": "history", "room": "lobby"})
    assert history["messages"][-1] == seen[1]


async def test_history_from_the_store_keeps_the_file_and_says_expired(
    start_server: StartServer, tmp_path: Path, clients: Clients
) -> None:
    config = files_config(tmp_path / "files", quota=250_000, max_file=200_000)
    server = await start_server(db_path=str(tmp_path / "chat.db"), files=config)
    alice = await clients.registered(server.port, "alice", "lobby")
    first, second = os.urandom(150_000), os.urandom(150_000)
    await share(alice, "first.bin", first, room="lobby")
    await share(alice, "second.bin", second, room="lobby")  # the first no longer fits
    await server.close()

    again = await start_server(db_path=str(tmp_path / "chat.db"), files=config)
    bob = await clients.registered(again.port, "bob")
    history = await bob.request({"type": "history", "room": "lobby"})
    shared = [m for m in history["messages"] if "file" in m]
    assert [m["file"]["name"] for m in shared] == ["first.bin", "second.bin"]
    assert shared[0]["file"]["expired"] is True
    assert "expired" not in shared[1]["file"]
    assert (await get(shared[0]["file"]["url"]))[0] == 404
    assert (await get(shared[1]["file"]["url"])) == (200, second)


async def test_a_file_in_a_dm_goes_to_the_pair_only(
    files_server: ChatServer, clients: Clients
) -> None:
    port = files_server.port
    alice = await clients.registered(port, "alice", "lobby")
    bob = await clients.registered(port, "bob", "lobby")
    carol = await clients.registered(port, "carol", "lobby")
    data = b"for bob only " * 1000
    await share(alice, "secret.txt", data, to="bob")
    to_bob = await bob.expect("dm")
    assert (await alice.expect("dm")) == to_bob
    assert to_bob["from"] == "alice" and to_bob["to"] == "bob"
    assert all(m["type"] != "dm" for m in await carol.quiet())
    url = to_bob["file"]["url"]
    assert (await get(url)) == (200, data)
    token = url.split("/")[-2]
    guessed = url.replace(token, token[:-2] + ("aa" if not token.endswith("aa") else "bb"))
    assert (await get(guessed)) == (404, b"not found\n")


async def test_a_corrupt_upload_is_422_and_an_error_without_re(
    files_server: ChatServer, clients: Clients
) -> None:
    alice = await clients.registered(files_server.port, "alice", "lobby")
    data = b"x" * 5000
    ready = await alice.request(announce("bad.bin", data, room="lobby"))
    status, body = await put(ready["url"], b"y" * 5000)
    assert status == 422 and body.count("\n") == 1
    error = await alice.expect("error")
    assert error["code"] == "file_corrupt" and "re" not in error
    assert "bad.bin" in error["message"]
    assert all(m["type"] != "message" for m in await alice.quiet())


async def test_refused_uploads_change_nothing(
    start_server: StartServer, tmp_path: Path, clients: Clients
) -> None:
    server = await start_server(files=files_config(tmp_path / "files", max_file=10_000))
    alice = await clients.registered(server.port, "alice", "lobby")
    data = b"z" * 100
    cases = [
        (announce("a.txt", data, room="games"), "not_in_room"),
        (announce("a.txt", data, to="nobody"), "no_such_user"),
        (announce("a.txt", b"z" * 10_001, room="lobby"), "file_too_large"),
        ({**announce("a.txt", data, room="lobby"), "name": ".profile"}, "invalid_message"),
        ({**announce("a.txt", data, room="lobby"), "name": "a\x1bb"}, "invalid_text"),
        ({**announce("a.txt", data, room="lobby"), "to": "bob"}, "invalid_message"),
    ]
    for line, code in cases:
        reply = await alice.request(line)
        assert (reply["type"], reply["code"]) == ("error", code), line
    await alice.request(announce("one.txt", data, room="lobby"))
    again = await alice.request(announce("one.txt", data, room="lobby"))
    assert again["type"] == "upload_ready"  # the same upload, not a second one
    await alice.request(announce("two.txt", data, room="lobby"))
    third = await alice.request(announce("three.txt", data, room="lobby"))
    assert (third["type"], third["code"]) == ("error", "limit_reached")


async def test_resuming_over_the_chat_line_after_a_cut(
    files_server: ChatServer, clients: Clients
) -> None:
    alice = await clients.registered(files_server.port, "alice", "lobby")
    data = os.urandom(1_000_000)
    ready = await alice.request(announce("big.bin", data, room="lobby"))
    _reader, writer = await asyncio.open_connection("127.0.0.1", files_server.files_port)
    path = "/" + ready["url"].split("/", 3)[3]
    writer.write(f"PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n".encode())
    writer.write(data[:600_000])
    await writer.drain()
    writer.close()  # the connection breaks off after 600 kB
    await writer.wait_closed()
    again = ready
    for _ in range(200):  # until the server has seen the PUT end
        again = await alice.request(announce("big.bin", data, room="lobby"))
        if again["offset"] > 0:
            break
        await asyncio.sleep(0.01)
    held = again["offset"]
    assert 0 < held <= 600_000 and again["url"] == ready["url"]
    rest = {"Content-Range": f"bytes {held}-{len(data) - 1}/{len(data)}"}
    assert (await put(again["url"], data[held:], **rest))[0] == 201
    message = await alice.expect("message")
    assert (await get(message["file"]["url"]))[1] == data


async def cut_upload(server: ChatServer, client: LineClient, data: bytes) -> Json:
    """Announce `data` and send its first 600 kB over HTTP, then break the PUT off."""
    ready = await client.request(announce("big.bin", data, room="lobby"))
    _reader, writer = await asyncio.open_connection("127.0.0.1", server.files_port)
    path = "/" + ready["url"].split("/", 3)[3]
    writer.write(f"PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n".encode())
    writer.write(data[:600_000])
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    return ready


async def held_after_the_cut(client: LineClient, data: bytes) -> Json:
    again: Json = {}
    for _ in range(200):  # until the server has seen the PUT end
        again = await client.request(announce("big.bin", data, room="lobby"))
        if again["offset"] > 0:
            break
        await asyncio.sleep(0.01)
    return again


async def test_an_account_resumes_its_upload_from_a_new_connection(
    files_server: ChatServer, clients: Clients
) -> None:
    first = await make_account(clients, files_server.port, "alice")
    await join(first, "lobby", "alice")
    data = os.urandom(1_000_000)
    ready = await cut_upload(files_server, first, data)
    await held_after_the_cut(first, data)
    await first.close()  # the client quits (or restarts) with the upload half done
    second = await session(clients, files_server.port, "alice")
    await join(second, "lobby", "alice")
    again = await second.request(announce("big.bin", data, room="lobby"))
    held = again["offset"]
    assert 0 < held <= 600_000 and again["url"] == ready["url"]
    rest = {"Content-Range": f"bytes {held}-{len(data) - 1}/{len(data)}"}
    assert (await put(again["url"], data[held:], **rest))[0] == 201
    message = await second.expect("message")
    assert (await get(message["file"]["url"]))[1] == data


async def test_a_guests_new_connection_starts_its_upload_again(
    files_server: ChatServer, clients: Clients
) -> None:
    first = await clients.registered(files_server.port, "carol", "lobby")
    data = os.urandom(1_000_000)
    ready = await cut_upload(files_server, first, data)
    await held_after_the_cut(first, data)
    await first.close()
    second = await clients.registered(files_server.port, "carol", "lobby")
    again: Json = {}
    for _ in range(200):  # until the server has seen the first connection go
        again = await second.request(announce("big.bin", data, room="lobby"))
        if again["url"] != ready["url"]:
            break
        await asyncio.sleep(0.01)
    assert again["offset"] == 0 and again["url"] != ready["url"]


async def test_files_off_refuses_upload(server: ChatServer, clients: Clients) -> None:
    alice = await clients.registered(server.port, "alice", "lobby")
    reply = await alice.request(announce("a.txt", b"a", room="lobby"))
    assert (reply["type"], reply["code"]) == ("error", "invalid_message")
    assert server.files_port is None


async def test_a_text_mode_user_can_curl_the_url(
    files_server: ChatServer, netcat: Netcat, tmp_path: Path, clients: Clients
) -> None:
    carol = await netcat.login(files_server.port, "carol")
    alice = await clients.registered(files_server.port, "alice", "lobby")
    data = os.urandom(50_000)
    await share(alice, "report.pdf", data, room="lobby")
    found = await carol.expect(
        r"\[\d\d:\d\d\] #lobby .*\* alice shared report\.pdf \(50\.0 kB\) (http://\S+)"
    )
    url = found.group(1)
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/f/[\w-]+/report\.pdf", url)
    fetched = tmp_path / "fetched"
    fetched.mkdir()
    curl = await asyncio.create_subprocess_exec("curl", "-sS", "--fail", "-O", url, cwd=fetched)
    assert await curl.wait() == 0
    assert (fetched / "report.pdf").read_bytes() == data


async def test_hello_offers_files_and_welcome_grants_it(
    files_server: ChatServer, server: ChatServer, clients: Clients
) -> None:
    with_files = await clients.connect(files_server.port)
    assert (await with_files.recv())["features"] == [
        "accounts",
        "reply",
        "edit",
        "react",
        "typing",
        "read",
        "search",
        "moderation",
        "files",
        "away",
    ]
    welcome = await with_files.request({"type": "hello", "nick": "a", "features": ["files", "x"]})
    assert welcome["features"] == ["files"]
    old = await clients.open(files_server.port)
    # A version-1 client asks for nothing and is granted nothing.
    assert (await old.request({"type": "hello", "nick": "b"}))["features"] == []
    without = await clients.connect(server.port)
    assert (await without.recv())["features"] == [
        "accounts",
        "reply",
        "edit",
        "react",
        "typing",
        "read",
        "search",
        "moderation",
        "away",
    ]  # files off: not offered


async def test_with_tls_on_the_files_port_is_https_with_the_chat_certificate(
    start_server: StartServer, clients: Clients, tmp_path: Path
) -> None:
    server = await start_server(
        files=files_config(tmp_path / "files"), tls_port=0, data_dir=str(tmp_path / "data")
    )
    assert server.fingerprint is not None
    alice = await clients.registered(server.port, "alice", "lobby")
    data = os.urandom(10_000)
    ready = await alice.request(announce("notes.txt", data, room="lobby"))
    assert ready["url"].startswith(f"https://127.0.0.1:{server.files_port}/u/"), ready
    # Pinned by the chat server's fingerprint: the files port shows the same certificate.
    pinned = aiohttp.Fingerprint(bytes.fromhex(server.fingerprint.replace(":", "")))
    async with aiohttp.ClientSession() as session:
        async with session.put(ready["url"], data=data, ssl=pinned) as response:
            assert response.status == 201, await response.text()
        message = await alice.expect("message", room="lobby")
        async with session.get(message["file"]["url"], ssl=pinned) as response:
            assert response.status == 200
            assert await response.read() == data


async def test_the_library_shares_and_fetches_over_a_pinned_https_files_port(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = await start_server(
        files=files_config(tmp_path / "files"), tls_port=0, data_dir=str(tmp_path / "data")
    )
    assert server.tls_port is not None
    source = tmp_path / "slides.bin"
    data = os.urandom(200_000)
    source.write_bytes(data)
    known = KnownServers(tmp_path / "known_servers")
    settings = ClientSettings(backoff_initial=0.05, backoff_max=0.2, connect_timeout=2.0)
    async with ChatClient(
        "127.0.0.1", server.tls_port, "alice", settings=settings, tls=TlsOptions(known=known)
    ) as alice:
        await alice.join("lobby")
        shared = await alice.upload(source, room="lobby")
        assert shared.url.startswith("https://")
        saved = await alice.download(shared, tmp_path / "slides-copy.bin")
        assert saved.read_bytes() == data
