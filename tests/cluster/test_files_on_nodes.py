"""Files across `chat-server --redis` nodes that share one `--files-dir` (real Redis, real
node processes): a file shared through one node is fetched through any, each client is
given a URL of its own node, a delete or an expiry through one node holds on all.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.redis_support import RedisServer
from tests.support import TIMEOUT, Json, LineClient, ServerProcess, open_client

FEATURES = ["files", "accounts", "edit", "reply", "react"]
PASSWORD = "correct horse"


class FilesNode:
    """A node process and the port of its files listener."""

    def __init__(self, process: ServerProcess, files_port: int) -> None:
        self.process = process
        self.port = process.port
        self.files_port = files_port

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.files_port}"


StartNode = Callable[..., Awaitable[FilesNode]]


async def files_port(process: ServerProcess) -> int:
    """The files listener's port, from the node's `listening on ... (files)` line."""
    for _ in range(int(40 * TIMEOUT)):
        for line in process.log:
            found = re.search(r"listening on \S+:(\d+) \(files\)", line)
            if found:
                return int(found.group(1))
        await asyncio.sleep(0.05)
    raise AssertionError("no files listener:\n" + "".join(process.log))


@pytest.fixture
async def files_node(redis_server: RedisServer, tmp_path: Path) -> AsyncIterator[StartNode]:
    """Nodes on the test's Redis sharing `tmp_path/files`; all are killed at the end."""
    started: list[ServerProcess] = []

    async def start(*args: str, files_dir: Path | None = tmp_path / "files") -> FilesNode:
        flags = ["--redis", redis_server.url, "--no-tls", "--rate", "0", "--hash-memory", "1024"]
        if files_dir is not None:
            flags += ["--files-dir", str(files_dir)]
        process = await ServerProcess.start(*flags, "--upload-rate", "0", *args)
        started.append(process)
        if files_dir is None:
            return FilesNode(process, 0)
        return FilesNode(process, await files_port(process))

    yield start
    for process in started:
        await process.kill()


async def member(
    node: FilesNode, nick: str, room: str = "x", *, register: bool = False, login: bool = False
) -> LineClient:
    """A client in `room`, granted files; an account with `register`, its session `login`."""
    client = await open_client(node.port)
    hello: Json = {"type": "hello", "nick": nick, "features": FEATURES}
    if login:
        hello["account_password"] = PASSWORD
    welcome = await client.request(hello)
    assert welcome["type"] == "welcome" and "files" in welcome["features"], welcome
    if register:
        assert (await client.request({"type": "register", "password": PASSWORD}))["type"] == "ack"
    assert (await client.request({"type": "join", "room": room}))["type"] == "room"
    await client.expect("joined", room=room, nick=nick)
    return client


def announce(name: str, data: bytes, room: str = "x") -> Json:
    sha = hashlib.sha256(data).hexdigest()
    return {"type": "upload", "room": room, "name": name, "size": len(data), "sha256": sha}


async def share(client: LineClient, name: str, data: bytes) -> Json:
    """Upload `data` through `client`'s node; the `message` its room got."""
    ready = await client.request(announce(name, data))
    assert ready["type"] == "upload_ready", ready
    async with (
        aiohttp.ClientSession() as session,
        session.put(ready["url"], data=io.BytesIO(data)) as put,
    ):
        assert put.status == 201, await put.text()
    while True:  # another's file may come first
        message = await client.expect("message", room="x")
        if message.get("file", {}).get("name") == name:
            return message


async def fetch(url: str, **headers: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as got:
        return got.status, await got.read()


def on(node: FilesNode, url: str) -> str:
    """`url` with its base moved to `node`'s files listener (the same token)."""
    return node.base + "/f/" + url.split("/f/", 1)[1]


async def history(client: LineClient) -> list[dict[str, Any]]:
    page = await client.request({"type": "history", "room": "x", "limit": 50})
    assert page["type"] == "history", page
    messages: list[dict[str, Any]] = page["messages"]
    return messages


async def test_a_file_shared_through_one_node_is_fetched_through_another(
    files_node: StartNode,
) -> None:
    a, b = await files_node(), await files_node()
    alice, bob = await member(a, "alice"), await member(b, "bob")
    data = os.urandom(700_000)
    sent = await share(alice, "report.bin", data)
    assert sent["file"]["url"].startswith(a.base + "/f/")
    got = await bob.expect("message", room="x")
    assert got["seq"] == sent["seq"] and got["file"]["id"] == sent["file"]["id"]
    assert got["file"]["url"].startswith(b.base + "/f/")  # a URL of bob's own node
    status, body = await fetch(got["file"]["url"])
    assert status == 200 and hashlib.sha256(body).hexdigest() == got["file"]["sha256"]
    status, part = await fetch(got["file"]["url"], Range="bytes=1000-1999")
    assert status == 206 and part == data[1000:2000]
    # History on either node names its own node's URL too.
    for client, node in ((alice, a), (bob, b)):
        (shared,) = [m for m in await history(client) if m.get("file")]
        assert shared["file"]["url"].startswith(node.base + "/f/")
    # A wrong token is a 404 on both, with the same body as a path that never existed.
    token = got["file"]["url"].split("/")[-2]
    for node in (a, b):
        wrong = f"{node.base}/f/{token[:-2]}xy/report.bin"
        assert await fetch(wrong) == (404, b"not found\n")
        assert await fetch(f"{node.base}/f/nothing") == (404, b"not found\n")
    await alice.close()
    await bob.close()


async def test_deleting_the_message_on_one_node_deletes_the_file_on_every_node(
    files_node: StartNode, tmp_path: Path
) -> None:
    a, b = await files_node(), await files_node()
    alice, bob = await member(a, "alice", register=True), await member(b, "bob")
    sent = await share(alice, "gone.txt", b"delete me " * 1000)
    url = sent["file"]["url"]
    await bob.expect("message", room="x")
    assert (await fetch(on(b, url)))[0] == 200
    # alice's other session, on node B, deletes the message.
    alice_on_b = await member(b, "alice", login=True)
    deleted = await alice_on_b.request({"type": "delete", "room": "x", "seq": sent["seq"]})
    assert deleted["type"] == "ack", deleted
    await alice.expect("deleted", room="x", seq=sent["seq"])  # node A has read it
    for node in (a, b):
        assert await fetch(on(node, url)) == (404, b"not found\n")
    blob = tmp_path / "files" / "blobs" / sent["file"]["sha256"][:2] / sent["file"]["sha256"]
    for _ in range(40):
        if not blob.exists():
            break
        await asyncio.sleep(0.05)
    assert not blob.exists()
    for client in (alice, alice_on_b, bob):
        await client.close()


async def test_the_quota_is_the_chats_and_expiry_shows_on_every_node(
    files_node: StartNode,
) -> None:
    limits = ("--files-quota", "150K", "--max-file", "100K")
    a, b = await files_node(*limits), await files_node(*limits)
    alice, bob = await member(a, "alice"), await member(b, "bob")
    first = await share(alice, "first.bin", os.urandom(80_000))
    await bob.expect("message", room="x")
    second = await share(bob, "second.bin", os.urandom(80_000))  # 160K > 150K: first goes
    await alice.expect("message", room="x")
    for node in (a, b):
        assert (await fetch(on(node, first["file"]["url"])))[0] == 404
        assert (await fetch(on(node, second["file"]["url"])))[0] == 200
    for client in (alice, bob):
        expired: dict[int, bool] = {}
        for _ in range(40):  # node A learns of the expiry from B's event (one read)
            expired = {m["seq"]: bool(m["file"].get("expired")) for m in await history(client)}
            if expired.get(first["seq"]):
                break
            await asyncio.sleep(0.05)
        assert expired == {first["seq"]: True, second["seq"]: False}
    await alice.close()
    await bob.close()


async def test_a_node_without_a_shared_files_dir_offers_no_files(
    files_node: StartNode,
) -> None:
    lone = await files_node(files_dir=None)
    client = await open_client(lone.port)
    welcome = await client.request({"type": "hello", "nick": "alice", "features": FEATURES})
    assert welcome["type"] == "welcome" and "files" not in welcome["features"], welcome
    refused = await client.request(announce("a.txt", b"a"))
    assert refused["type"] == "error", refused
    assert any("give every node the same --files-dir" in line for line in lone.process.log)
    assert not any("(files)" in line for line in lone.process.log)
    await client.close()


async def test_an_upload_cut_by_its_nodes_death_resumes_through_another_node(
    files_node: StartNode, tmp_path: Path
) -> None:
    a, b = await files_node(), await files_node()
    alice = await member(a, "alice", register=True)
    bob = await member(b, "bob")
    data = os.urandom(5_000_000)
    ready = await alice.request(announce("big.bin", data))
    assert ready["type"] == "upload_ready" and ready["offset"] == 0, ready
    # Node A takes the PUT's first 4.5 MB (it writes in blocks of 2 MiB), then dies.
    _reader, writer = await asyncio.open_connection("127.0.0.1", a.files_port)
    path = "/" + ready["url"].split("/", 3)[3]
    writer.write(f"PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n".encode())
    writer.write(data[:4_500_000])
    await writer.drain()
    partial = tmp_path / "files" / "partial" / ready["file"]
    for _ in range(int(40 * TIMEOUT)):
        if partial.exists() and partial.stat().st_size >= 2 << 20:
            break
        await asyncio.sleep(0.05)
    assert partial.stat().st_size >= 2 << 20
    await a.process.kill()
    writer.transport.abort()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    await alice.close()
    # alice's client moves to node B and asks again: the same upload, from what is held.
    moved = await member(b, "alice", login=True)
    again = await moved.request(announce("big.bin", data))
    assert again["type"] == "upload_ready", again
    held = again["offset"]
    assert 2 << 20 <= held <= 4_500_000, again
    assert again["file"] == ready["file"] and again["url"].startswith(b.base + "/u/")
    rest = {"Content-Range": f"bytes {held}-{len(data) - 1}/{len(data)}"}
    async with (
        aiohttp.ClientSession() as session,
        session.put(again["url"], data=io.BytesIO(data[held:]), headers=rest) as put,
    ):
        assert put.status == 201, await put.text()
    got = await bob.expect("message", room="x")
    status, body = await fetch(got["file"]["url"])
    assert status == 200 and body == data
    await moved.close()
    await bob.close()


async def test_while_redis_is_down_a_finished_upload_is_refused_and_nothing_is_kept(
    files_node: StartNode, redis_server: RedisServer, tmp_path: Path
) -> None:
    a = await files_node()
    alice = await member(a, "alice")
    data = os.urandom(50_000)
    ready = await alice.request(announce("late.bin", data))
    assert ready["type"] == "upload_ready", ready
    await redis_server.stop()
    async with aiohttp.ClientSession() as session, session.put(ready["url"], data=data) as put:
        assert put.status == 503, await put.text()
        assert (await put.text()).startswith("the file could not be shared: ")
    assert list((tmp_path / "files" / "partial").iterdir()) == []
    assert list((tmp_path / "files" / "blobs").rglob("*")) == []
    # Downloads need the index too: 503, not a 404 that would say the file is gone.
    assert (await fetch(f"{a.base}/f/sometoken/x"))[0] == 503
    await redis_server.start()
    for _ in range(50):  # until the node writes to Redis again
        said = await alice.request({"type": "say", "room": "x", "text": "back?"})
        if said["type"] == "ack":
            break
        await asyncio.sleep(0.1)
    again = await alice.request(announce("late.bin", data))  # from the start
    assert again["type"] == "upload_ready" and again["offset"] == 0, again
    async with aiohttp.ClientSession() as session, session.put(again["url"], data=data) as put:
        assert put.status == 201, await put.text()
    message = await alice.expect("message", room="x")
    assert (await fetch(message["file"]["url"]))[1] == data
    await alice.close()


async def test_a_file_dm_reaches_a_user_on_another_node(files_node: StartNode) -> None:
    a, b = await files_node(), await files_node()
    alice, bob = await member(a, "alice"), await member(b, "bob")
    await alice.expect("joined", room="x", nick="bob")  # node A knows bob is on B
    data = os.urandom(30_000)
    sha = hashlib.sha256(data).hexdigest()
    ready = await alice.request(
        {"type": "upload", "to": "bob", "name": "dm.bin", "size": len(data), "sha256": sha}
    )
    assert ready["type"] == "upload_ready", ready
    async with aiohttp.ClientSession() as session, session.put(ready["url"], data=data) as put:
        assert put.status == 201, await put.text()
    mine = await alice.expect("dm")
    assert mine["to"] == "bob" and mine["file"]["url"].startswith(a.base + "/f/")
    got = await bob.expect("dm")
    assert got["from"] == "alice" and got["file"]["url"].startswith(b.base + "/f/")
    assert await fetch(got["file"]["url"]) == (200, data)
    nobody = await alice.request(
        {"type": "upload", "to": "carol", "name": "x.bin", "size": 1, "sha256": sha}
    )
    assert (nobody["type"], nobody["code"]) == ("error", "no_such_user"), nobody
    await alice.close()
    await bob.close()


async def test_the_same_bytes_shared_at_once_through_two_nodes_are_kept_once(
    files_node: StartNode, tmp_path: Path
) -> None:
    a, b = await files_node(), await files_node()
    alice = await member(a, "alice", register=True)
    bob = await member(b, "bob")
    data = os.urandom(3_000_000)
    first, second = await asyncio.gather(share(alice, "one.bin", data), share(bob, "two.bin", data))
    assert first["file"]["id"] != second["file"]["id"]
    blobs = [p for p in (tmp_path / "files" / "blobs").rglob("*") if p.is_file()]
    assert [p.name for p in blobs] == [hashlib.sha256(data).hexdigest()]
    for message in (first, second):
        for node in (a, b):
            assert await fetch(on(node, message["file"]["url"])) == (200, data)
    # Deleting one copy's message keeps the bytes for the other.
    alice_on_b = await member(b, "alice", login=True)
    deleted = await alice_on_b.request({"type": "delete", "room": "x", "seq": first["seq"]})
    assert deleted["type"] == "ack", deleted
    await alice.expect("deleted", room="x", seq=first["seq"])
    await asyncio.sleep(0.2)
    for node in (a, b):
        assert (await fetch(on(node, first["file"]["url"])))[0] == 404
        head = await fetch(on(node, second["file"]["url"]), Range="bytes=0-99")
        assert head == (206, data[:100])
    assert blobs[0].exists()
    for client in (alice, alice_on_b, bob):
        await client.close()
