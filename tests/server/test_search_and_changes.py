"""Search, moderation and message changes together: edits and deletes through the
protocol reach the search index, and a room's ops may delete any message of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import StartServer
from tests.server.helpers import Clients, join
from tests.server.test_search import say_all, texts


@pytest.mark.parametrize("on_disk", [False, True], ids=["memory", "sqlite"])
async def test_search_finds_edited_messages_by_their_new_text_and_never_deleted_ones(
    start_server: StartServer, clients: Clients, tmp_path: Path, on_disk: bool
) -> None:
    overrides = {"db_path": str(tmp_path / "chat.sqlite3")} if on_disk else {}
    server = await start_server(**overrides)
    alice = await clients.registered(server.port, "alice")
    await join(alice, "lobby", "alice")
    await say_all(alice, "lobby", ["first draft", "secret plans", "keep this"])
    edited = await alice.request({"type": "edit", "room": "lobby", "seq": 1, "text": "final text"})
    assert edited["type"] == "ack", edited
    deleted = await alice.request({"type": "delete", "room": "lobby", "seq": 2})
    assert deleted["type"] == "ack", deleted
    assert texts(await alice.request({"type": "search", "query": "draft"})) == []
    assert texts(await alice.request({"type": "search", "query": "final"})) == ["final text"]
    assert texts(await alice.request({"type": "search", "query": "secret"})) == []
    assert texts(await alice.request({"type": "search", "query": "keep"})) == ["keep this"]


async def test_an_op_deletes_any_message_of_the_room_and_others_may_not(
    start_server: StartServer, clients: Clients
) -> None:
    server = await start_server()
    alice = await clients.registered(server.port, "alice")
    room = await join(alice, "lobby", "alice")  # the first joiner: the room's op
    assert room["ops"] == ["alice"]
    bob = await clients.registered(server.port, "bob", "lobby")
    carol = await clients.registered(server.port, "carol", "lobby")
    await say_all(bob, "lobby", ["bob's line"])
    await say_all(alice, "lobby", ["alice's line"])
    refused = await carol.request({"type": "delete", "room": "lobby", "seq": 1})
    assert (refused["type"], refused["code"]) == ("error", "not_allowed")
    refused = await bob.request({"type": "delete", "room": "lobby", "seq": 2})
    assert (refused["type"], refused["code"]) == ("error", "not_allowed")
    assert (await alice.request({"type": "delete", "room": "lobby", "seq": 1}))["type"] == "ack"
    history = await carol.request({"type": "history", "room": "lobby"})
    first = history["messages"][0]
    assert (first["seq"], first["deleted"], first["text"]) == (1, True, "")
