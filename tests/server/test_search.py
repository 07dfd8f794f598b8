"""`search` over loopback against a real server: rules, filters, paging, DMs, edits by SQL."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from chat_server.server import ChatServer
from tests.conftest import StartServer
from tests.server.helpers import Clients, join
from tests.server.test_accounts import make_account, session
from tests.support import Json, LineClient


async def say_all(client: LineClient, room: str, texts: list[str]) -> None:
    """Say each text; messages a millisecond apart, so newest-first is by time alone
    (hits of the same millisecond are ordered by room name, then seq)."""
    for text in texts:
        ack = await client.request({"type": "say", "room": room, "text": text})
        assert ack["type"] == "ack", ack
        await asyncio.sleep(0.002)


def texts(reply: Json) -> list[str]:
    assert reply["type"] == "search_results", reply
    return [hit["text"] for hit in reply["results"]]


async def test_search_finds_words_phrases_and_prefixes_newest_first(
    server: ChatServer, clients: Clients
) -> None:
    alice = await clients.registered(server.port, "alice", "lobby")
    bob = await clients.registered(server.port, "bob", "games")
    await say_all(alice, "lobby", ["Déploiement lundi", "on deploie mardi", "rien"])
    await say_all(bob, "games", ["deploiement des dragons"])
    reply = await alice.request({"type": "search", "query": "deploi*"})
    assert texts(reply) == [
        "deploiement des dragons",
        "on deploie mardi",
        "Déploiement lundi",
    ]
    assert {hit["room"] for hit in reply["results"]} == {"lobby", "games"}
    assert reply["more"] is False and "cursor" not in reply
    assert texts(await alice.request({"type": "search", "query": "deploi*", "room": "lobby"})) == [
        "on deploie mardi",
        "Déploiement lundi",
    ]
    assert texts(await alice.request({"type": "search", "query": "deploi*", "from": "BOB"})) == [
        "deploiement des dragons"
    ]
    assert texts(await alice.request({"type": "search", "query": '"des dragons"'})) == [
        "deploiement des dragons"
    ]
    assert texts(await alice.request({"type": "search", "query": '"dragons des"'})) == []


async def test_hostile_queries_are_answered_never_refused(
    server: ChatServer, clients: Clients
) -> None:
    alice = await clients.registered(server.port, "alice", "lobby")
    await say_all(alice, "lobby", ["NEAR the col: end", "plain words"])
    for query in ['"', "*", "AND", "OR NOT", "NEAR(", "col:", "^", '"((', ")]}", "!?" * 100]:
        reply = await alice.request({"type": "search", "query": query})
        assert reply["type"] == "search_results", (query, reply)
        expected = ["NEAR the col: end"] if query in ("NEAR(", "col:") else []
        assert texts(reply) == expected, query
    too_long = await alice.request({"type": "search", "query": "x" * 201})
    assert too_long["code"] == "invalid_text"
    empty = await alice.request({"type": "search", "query": ""})
    assert empty["code"] == "invalid_text"
    bad_cursor = await alice.request({"type": "search", "query": "x", "before": "%%%"})
    assert bad_cursor["code"] == "invalid_message"
    no_room = await alice.request({"type": "search", "query": "x", "room": "nowhere"})
    assert no_room["code"] == "no_such_room"


async def test_paging_by_cursor_has_no_gaps_or_repeats(
    server: ChatServer, clients: Clients
) -> None:
    alice = await clients.registered(server.port, "alice", "lobby", "games")
    expected = []
    for n in range(23):
        room = "lobby" if n % 3 else "games"
        await say_all(alice, room, [f"needle {n}"])
        expected.append(f"needle {n}")
    seen: list[str] = []
    cursor = None
    while True:
        request: Json = {"type": "search", "query": "needle", "limit": 5}
        if cursor is not None:
            request["before"] = cursor
        reply = await alice.request(request)
        seen.extend(texts(reply))
        if not reply["more"]:
            break
        cursor = reply["cursor"]
    assert seen == expected[::-1]


async def test_a_guest_cannot_search_dms_and_an_account_searches_its_own(
    server: ChatServer, clients: Clients
) -> None:
    alice = await make_account(clients, server.port, "alice")
    bob = await make_account(clients, server.port, "bob")
    for text in ["lunch at noon?", "yes, lunch", "see you"]:
        await alice.request({"type": "dm", "to": "bob", "text": text})
    guest = await clients.registered(server.port, "carol")
    refused = await guest.request({"type": "search", "query": "lunch", "with": "alice"})
    assert refused["code"] == "not_allowed"
    reply = await bob.request({"type": "search", "query": "lunch", "with": "alice"})
    assert reply["with"] == "alice"
    assert [(hit["type"], hit["text"]) for hit in reply["results"]] == [
        ("dm", "yes, lunch"),
        ("dm", "lunch at noon?"),
    ]
    page = await bob.request({"type": "search", "query": "lunch", "with": "alice", "limit": 1})
    assert page["more"] is True
    rest = await bob.request(
        {"type": "search", "query": "lunch", "with": "alice", "before": page["cursor"]}
    )
    assert texts(rest) == ["lunch at noon?"]
    again = await session(clients, server.port, "alice")
    assert texts(await again.request({"type": "search", "query": "see", "with": "bob"})) == [
        "see you"
    ]


async def test_edits_and_deletes_made_in_the_database_are_searched_as_they_are(
    start_server: StartServer, clients: Clients, tmp_path: Path
) -> None:
    path = tmp_path / "chat.sqlite3"
    server = await start_server(db_path=str(path))
    alice = await clients.registered(server.port, "alice")
    await join(alice, "lobby", "alice")
    await say_all(alice, "lobby", ["first draft", "to be removed"])
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("UPDATE messages SET text = 'final version' WHERE seq = 1")
    other.execute("UPDATE messages SET text = '' WHERE seq = 2")
    other.close()
    assert texts(await alice.request({"type": "search", "query": "draft"})) == []
    assert texts(await alice.request({"type": "search", "query": "final"})) == ["final version"]
    assert texts(await alice.request({"type": "search", "query": "removed"})) == []
