"""`ChatClient.upload` against a real server: announce on the chat line, PUT, the message."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chat_client import ChatClient, ClientSettings
from chat_client.files import UploadRefused, download
from chat_server.files.config import FilesConfig
from chat_server.server import ChatServer
from protocol import ChatMessage, DirectMessage, ErrorCode
from tests.client.test_library import next_event
from tests.conftest import StartServer

FAST = ClientSettings(backoff_initial=0.05, backoff_max=0.2, connect_timeout=2.0)


@pytest.fixture
async def files_server(start_server: StartServer, tmp_path: Path) -> ChatServer:
    config = FilesConfig(directory=tmp_path / "files", port=0, upload_rate=0, max_file=1 << 22)
    return await start_server(files=config)


async def test_upload_and_download_through_chat_clients(
    files_server: ChatServer, tmp_path: Path
) -> None:
    source = tmp_path / "notes.txt"
    data = os.urandom(3 << 20)
    source.write_bytes(data)
    port = files_server.port
    async with (
        ChatClient("127.0.0.1", port, "alice", settings=FAST) as alice,
        ChatClient("127.0.0.1", port, "bob", settings=FAST) as bob,
    ):
        await alice.join("lobby")
        await bob.join("lobby")
        seen: list[int] = []
        shared = await alice.upload(
            source, room="lobby", progress=lambda done, total: seen.append(done)
        )
        assert seen[-1] == len(data)
        message = await next_event(bob, ChatMessage)
        assert isinstance(message, ChatMessage) and message.file == shared
        assert message.text == "notes.txt (3.1 MB)"
        (tmp_path / "bob").mkdir()
        saved = await download(shared, tmp_path / "bob" / "notes.txt")
        assert saved.read_bytes() == data

        await bob.upload(source, to="alice")
        dm = await next_event(alice, DirectMessage)
        assert isinstance(dm, DirectMessage) and dm.file is not None

        source.write_bytes(os.urandom((4 << 20) + 1))
        with pytest.raises(UploadRefused) as refused:
            await alice.upload(source, room="lobby")
        assert refused.value.code == ErrorCode.FILE_TOO_LARGE
