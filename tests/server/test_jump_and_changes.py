"""`history` `around` and `changed_since`, and `rev` on messages, on both stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import StartServer
from tests.server.helpers import Clients
from tests.support import LineClient

STORES = ["memory", "sqlite"]


async def room_with_messages(
    start_server: StartServer, clients: Clients, store: str, tmp_path: Path, count: int
) -> LineClient:
    db = ":memory:" if store == "memory" else str(tmp_path / "chat.db")
    server = await start_server(db_path=db)
    alice = await clients.registered(server.port, "alice", "lobby")
    for n in range(1, count + 1):
        ack = await alice.request({"type": "say", "room": "lobby", "text": f"m{n}"})
        assert ack["seq"] == n
    return alice


@pytest.mark.parametrize("store", STORES)
async def test_around_is_centred_on_the_seq_and_says_more_at_either_end(
    start_server: StartServer, clients: Clients, store: str, tmp_path: Path
) -> None:
    alice = await room_with_messages(start_server, clients, store, tmp_path, 20)
    page = await alice.request({"type": "history", "room": "lobby", "around": 10, "limit": 5})
    assert [m["seq"] for m in page["messages"]] == [8, 9, 10, 11, 12]
    assert page["more"] is True
    page = await alice.request({"type": "history", "room": "lobby", "around": 2, "limit": 5})
    assert [m["seq"] for m in page["messages"]] == [1, 2, 3, 4, 5]
    assert page["more"] is True  # later ones
    page = await alice.request({"type": "history", "room": "lobby", "around": 20, "limit": 50})
    assert [m["seq"] for m in page["messages"]] == list(range(1, 21))
    assert page["more"] is False
    page = await alice.request({"type": "history", "room": "lobby", "around": 7, "limit": 1})
    assert [m["seq"] for m in page["messages"]] == [7]
    for missing in (0, 21):
        refused = await alice.request({"type": "history", "room": "lobby", "around": missing})
        assert refused["code"] == "no_such_message"


@pytest.mark.parametrize("store", STORES)
async def test_changed_since_lists_each_later_message_once_in_rev_order(
    start_server: StartServer, clients: Clients, store: str, tmp_path: Path
) -> None:
    alice = await room_with_messages(start_server, clients, store, tmp_path, 6)
    page = await alice.request({"type": "history", "room": "lobby", "changed_since": 3})
    revs = [m["rev"] for m in page["messages"]]
    assert revs == [4, 5, 6] and page["more"] is False
    page = await alice.request({"type": "history", "room": "lobby", "changed_since": 0, "limit": 4})
    assert [m["rev"] for m in page["messages"]] == [1, 2, 3, 4] and page["more"] is True
    await alice.request({"type": "part", "room": "lobby"})
    await alice.request({"type": "join", "room": "lobby", "changed_since": 5})
    replay = await alice.expect("history")
    assert [m["text"] for m in replay["messages"]] == ["m6"]


async def test_every_message_carries_its_rev(
    start_server: StartServer, clients: Clients, tmp_path: Path
) -> None:
    alice = await room_with_messages(start_server, clients, "memory", tmp_path, 2)
    live = [m for m in alice.seen if m["type"] == "message"]
    assert [m["rev"] for m in live] == [1, 2]
    page = await alice.request({"type": "history", "room": "lobby"})
    assert [m["rev"] for m in page["messages"]] == [1, 2]


@pytest.mark.parametrize("store", STORES)
async def test_a_reply_carries_reply_to_and_must_name_a_live_message(
    start_server: StartServer, clients: Clients, store: str, tmp_path: Path
) -> None:
    alice = await room_with_messages(start_server, clients, store, tmp_path, 2)
    ack = await alice.request({"type": "say", "room": "lobby", "text": "yes", "reply_to": 1})
    assert ack["seq"] == 3
    live = [m for m in alice.seen if m["type"] == "message"]
    assert live[-1]["reply_to"] == 1 and live[-1]["rev"] == 3
    for missing in (4, 99):
        refused = await alice.request(
            {"type": "say", "room": "lobby", "text": "no", "reply_to": missing}
        )
        assert refused["code"] == "no_such_message"
    await alice.request({"type": "delete", "room": "lobby", "seq": 2})
    refused = await alice.request({"type": "say", "room": "lobby", "text": "no", "reply_to": 2})
    assert refused["code"] == "no_such_message"
    page = await alice.request({"type": "history", "room": "lobby"})
    assert [(m["seq"], m.get("reply_to")) for m in page["messages"]] == [
        (1, None),
        (2, None),
        (3, 1),
    ]
