"""ChatClient against a real server on loopback, including a restart mid-session."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from chat_client import (
    ChatClient,
    ClientEvent,
    ClientSettings,
    Connected,
    Disconnected,
    NotConnectedError,
    RequestError,
)
from chat_server.server import ChatServer
from protocol import ChatMessage, DirectMessage, ErrorCode, Joined, NickChanged, TopicChanged
from tests.conftest import StartServer
from tests.support import TIMEOUT, make_config, registered

FAST = ClientSettings(backoff_initial=0.05, backoff_max=0.2, connect_timeout=2.0)


async def next_event(client: ChatClient, kind: type, timeout: float = TIMEOUT) -> ClientEvent:
    async def find() -> ClientEvent:
        async for event in client.events():
            if isinstance(event, kind):
                return event
        raise AssertionError("event stream ended")

    return await asyncio.wait_for(find(), timeout)


async def test_say_and_receive(server: ChatServer) -> None:
    async with ChatClient("127.0.0.1", server.port, "alice", settings=FAST) as alice:
        info = await alice.join("#lobby")
        assert info.members == ["alice"]
        bob = await registered(server.port, "bob", "lobby")
        assert await alice.say("lobby", "hello bob") == 1
        got = await bob.expect("message")
        assert got["text"] == "hello bob"
        await bob.send({"type": "say", "room": "lobby", "text": "hi alice", "action": True})
        message = await next_event(alice, ChatMessage)
        assert isinstance(message, ChatMessage)
        assert message.seq == 1  # her own echo comes first
        message = await next_event(alice, ChatMessage)
        assert isinstance(message, ChatMessage)
        assert (message.sender, message.text, message.action) == ("bob", "hi alice", True)
        await bob.close()


async def test_requests_and_errors(server: ChatServer) -> None:
    async with ChatClient("127.0.0.1", server.port, "alice", settings=FAST) as alice:
        await alice.join("dev")
        await alice.set_topic("dev", "release friday")
        topic = await next_event(alice, TopicChanged)
        assert isinstance(topic, TopicChanged) and topic.topic == "release friday"
        assert await alice.who("dev") == ["alice"]
        assert [(r.room, r.members) for r in await alice.list_rooms()] == [("dev", 1)]
        for i in range(3):
            await alice.say("dev", f"n{i}")
        page = await alice.history("dev", before=3, limit=1)
        assert [m.text for m in page.messages] == ["n1"] and page.more
        await alice.dm("alice", "note to self")
        dm = await next_event(alice, DirectMessage)
        assert isinstance(dm, DirectMessage) and dm.text == "note to self"
        await alice.set_nick("Alice2")
        changed = await next_event(alice, NickChanged)
        assert isinstance(changed, NickChanged) and alice.nick == "Alice2"
        assert await alice.ping() < TIMEOUT
        with pytest.raises(RequestError) as refused:
            await alice.who("nowhere")
        assert refused.value.code is ErrorCode.NO_SUCH_ROOM
        with pytest.raises(RequestError) as refused:
            await alice.dm("nobody", "hi")
        assert refused.value.code is ErrorCode.NO_SUCH_USER
        with pytest.raises(RequestError) as refused:
            await alice.say("elsewhere", "hi")
        assert refused.value.code is ErrorCode.NOT_IN_ROOM
        await alice.part("dev")
        assert alice.rooms == []


async def test_registration_errors(start_server: StartServer) -> None:
    server = await start_server(password="sesame")
    with pytest.raises(RequestError) as refused:
        await ChatClient("127.0.0.1", server.port, "eve", password="wrong").connect()
    assert refused.value.code is ErrorCode.AUTH_FAILED
    async with ChatClient("127.0.0.1", server.port, "alice", password="sesame") as alice:
        with pytest.raises(RequestError) as refused:
            await ChatClient("127.0.0.1", server.port, "ALICE", password="sesame").connect()
        assert refused.value.code is ErrorCode.NICK_TAKEN
        assert alice.connected


async def test_connection_refused_raises() -> None:
    server = ChatServer(make_config())
    await server.start()
    port = server.port
    await server.close()
    with pytest.raises(OSError):
        await ChatClient("127.0.0.1", port, "alice", settings=FAST).connect()


async def test_restart_loses_and_repeats_nothing(tmp_path: Path) -> None:
    db = str(tmp_path / "h.db")
    server = ChatServer(make_config(db_path=db))
    await server.start()
    port = server.port
    alice = ChatClient("127.0.0.1", port, "alice", settings=FAST)
    await alice.connect()
    await alice.join("lobby")
    await alice.join("dev")
    bob = await registered(port, "bob", "lobby", "dev")
    for i in range(5):
        await bob.request({"type": "say", "room": "lobby", "text": f"before {i}"})
    await server.close()
    await bob.close()

    server = ChatServer(make_config(db_path=db, port=port))
    await server.start()
    try:
        # Bob is back first and talks while alice is still reconnecting.
        bob = await registered(port, "bob", "lobby", "dev")
        for i in range(700):  # more than one replay page
            await bob.send({"type": "say", "room": "lobby", "text": f"during {i}"})
        await bob.request({"type": "say", "room": "dev", "text": "dev note"})
        await bob.request({"type": "ping"})
        seq = await asyncio.wait_for(alice.say("lobby", "alice is back"), TIMEOUT)
        assert seq == 5 + 700 + 1
        await bob.request({"type": "say", "room": "lobby", "text": "after"})

        lobby: list[tuple[int, str]] = []
        dev: list[str] = []
        saw_disconnect = saw_reconnect = False
        while not lobby or lobby[-1][1] != "after":
            event = await next_event(alice, object)
            if isinstance(event, Disconnected):
                saw_disconnect = True
            elif isinstance(event, Connected):
                saw_reconnect = True
            elif isinstance(event, ChatMessage):
                if event.room == "lobby":
                    lobby.append((event.seq, event.text))
                else:
                    dev.append(event.text)
        assert saw_disconnect and saw_reconnect
        assert [seq for seq, _ in lobby] == list(range(1, 5 + 700 + 3))
        texts = [text for _, text in lobby]
        assert texts[:5] == [f"before {i}" for i in range(5)]
        assert texts[5:705] == [f"during {i}" for i in range(700)]
        assert texts[705:] == ["alice is back", "after"]
        assert dev == ["dev note"]
        await bob.close()
    finally:
        await alice.close()
        await server.close()


async def test_say_while_disconnected_is_sent_after_reconnect(tmp_path: Path) -> None:
    db = str(tmp_path / "h.db")
    server = ChatServer(make_config(db_path=db))
    await server.start()
    port = server.port
    alice = ChatClient("127.0.0.1", port, "alice", settings=FAST)
    await alice.connect()
    await alice.join("lobby")
    await server.close()
    sending = asyncio.create_task(alice.say("lobby", "queued while down"))
    await next_event(alice, Disconnected)
    server = ChatServer(make_config(db_path=db, port=port))
    await server.start()
    try:
        assert await asyncio.wait_for(sending, TIMEOUT) == 1
        page = await alice.history("lobby")
        assert [m.text for m in page.messages] == ["queued while down"]
    finally:
        await alice.close()
        await server.close()


async def test_closed_client_refuses_requests(server: ChatServer) -> None:
    alice = ChatClient("127.0.0.1", server.port, "alice", settings=FAST)
    await alice.connect()
    await alice.join("lobby")
    joined = await next_event(alice, Joined)
    assert isinstance(joined, Joined) and joined.nick == "alice"
    await alice.close()
    with pytest.raises(NotConnectedError):
        await alice.who("lobby")


def test_connection_failures_are_explained_in_plain_words() -> None:
    from chat_client.connection import _plain_reason

    assert _plain_reason(ConnectionRefusedError(111, "Connect call failed")) == (
        "the server is not accepting connections"
    )
    assert _plain_reason(TimeoutError()) == "the server did not answer"
    assert _plain_reason(OSError(113, "No route to host")) == "no route to host"
