"""Edits, deletes, reactions and `rev` over loopback, on both stores."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import StartServer
from tests.server.helpers import Clients, join
from tests.support import LineClient

STORES = ["memory", "sqlite"]
ALL = ["reply", "edit", "react", "typing"]
Json = dict[str, Any]


async def member(
    clients: Clients, port: int, nick: str, features: list[str] | None = ALL
) -> LineClient:
    client = await clients.open(port)
    hello: Json = {"type": "hello", "nick": nick}
    if features is not None:
        hello["features"] = features
    welcome = await client.request(hello)
    assert welcome["type"] == "welcome", welcome
    await join(client, "lobby", nick)
    return client


def db_of(store: str, tmp_path: Path) -> str:
    return ":memory:" if store == "memory" else str(tmp_path / "chat.db")


@pytest.mark.parametrize("store", STORES)
async def test_edit_delete_react_reach_members_granted_them_and_show_in_history(
    start_server: StartServer, clients: Clients, store: str, tmp_path: Path
) -> None:
    server = await start_server(db_path=db_of(store, tmp_path))
    alice = await member(clients, server.port, "alice")
    bob = await member(clients, server.port, "bob")
    old = await member(clients, server.port, "old", features=None)  # a version-1 client
    for n in (1, 2, 3):
        await alice.request({"type": "say", "room": "lobby", "text": f"m{n}"})
    edit = {"type": "edit", "room": "lobby", "seq": 1, "text": "m1 fixed"}
    assert (await alice.request(edit))["type"] == "ack"
    edited = await bob.expect("edited")
    assert edited["text"] == "m1 fixed" and edited["by"] == "alice" and edited["rev"] == 4
    react = {"type": "react", "room": "lobby", "seq": 2, "emoji": "👍"}
    assert (await bob.request(react))["type"] == "ack"
    assert (await bob.request(dict(react)))["type"] == "ack"  # again: no change
    await alice.request({"type": "react", "room": "lobby", "seq": 2, "emoji": "👍"})
    await alice.request({"type": "react", "room": "lobby", "seq": 3, "emoji": ":tada:"})
    remove = {"type": "react", "room": "lobby", "seq": 3, "emoji": ":tada:", "remove": True}
    assert (await alice.request(remove))["type"] == "ack"
    assert (await alice.request(dict(remove)))["type"] == "ack"  # not there: no change
    assert (await alice.request({"type": "delete", "room": "lobby", "seq": 3}))["type"] == "ack"
    deleted = await bob.expect("deleted")
    assert deleted["seq"] == 3 and deleted["rev"] == 9
    reactions = [m for m in bob.seen if m["type"] == "reaction"]
    assert [(r["nick"], r["emoji"], r["removed"], r["rev"]) for r in reactions] == [
        ("bob", "👍", False, 5),
        ("alice", "👍", False, 6),
        ("alice", ":tada:", False, 7),
        ("alice", ":tada:", True, 8),
    ]
    page = await old.request({"type": "history", "room": "lobby"})
    by_seq = {m["seq"]: m for m in page["messages"]}
    assert by_seq[1]["text"] == "m1 fixed" and "edited" in by_seq[1] and by_seq[1]["rev"] == 4
    assert by_seq[2]["reactions"] == {"👍": ["bob", "alice"]} and by_seq[2]["rev"] == 6
    assert by_seq[3]["deleted"] is True and by_seq[3]["text"] == ""
    assert "reactions" not in by_seq[3] and by_seq[3]["rev"] == 9
    assert not [m for m in old.seen if m["type"] in ("edited", "deleted", "reaction")]
    again = await alice.request({"type": "edit", "room": "lobby", "seq": 3, "text": "back"})
    assert again["code"] == "no_such_message"
    for bad in (
        {"type": "edit", "room": "lobby", "seq": 1, "text": "mine"},
        {"type": "delete", "room": "lobby", "seq": 1},
    ):
        assert (await bob.request(bad))["code"] == "not_allowed"
    for missing in (0, 4):
        edit = {"type": "edit", "room": "lobby", "seq": missing, "text": "x"}
        refused = await alice.request(edit)
        assert refused["code"] in ("no_such_message", "invalid_message")
    for emoji in ("", "a b", "x" * 33, "\x1b[31m"):
        react = {"type": "react", "room": "lobby", "seq": 1, "emoji": emoji}
        assert (await bob.request(react))["code"] == "invalid_text", emoji


async def test_twenty_distinct_reactions_then_limit_reached(
    start_server: StartServer, clients: Clients
) -> None:
    server = await start_server()
    alice = await member(clients, server.port, "alice")
    await alice.request({"type": "say", "room": "lobby", "text": "react to me"})
    for n in range(20):
        reply = await alice.request(
            {"type": "react", "room": "lobby", "seq": 1, "emoji": f":e{n}:"}
        )
        assert reply["type"] == "ack"
    refused = await alice.request({"type": "react", "room": "lobby", "seq": 1, "emoji": ":e20:"})
    assert refused["code"] == "limit_reached"
    bob = await member(clients, server.port, "bob")
    same = await bob.request({"type": "react", "room": "lobby", "seq": 1, "emoji": ":e3:"})
    assert same["type"] == "ack"  # an emoji already there is no new distinct one


@pytest.mark.parametrize("store", STORES)
async def test_a_guest_may_edit_only_from_the_connection_that_sent(
    start_server: StartServer, clients: Clients, store: str, tmp_path: Path
) -> None:
    server = await start_server(db_path=db_of(store, tmp_path), nick_grace=0)
    alice = await member(clients, server.port, "alice")
    await alice.request({"type": "say", "room": "lobby", "text": "typo"})
    ok = await alice.request({"type": "edit", "room": "lobby", "seq": 1, "text": "fixed"})
    assert ok["type"] == "ack"
    await alice.send({"type": "quit"})
    await alice.expect("bye")
    await alice.close()
    again = await member(clients, server.port, "alice")
    refused = await again.request({"type": "edit", "room": "lobby", "seq": 1, "text": "mine"})
    assert refused["code"] == "not_allowed"
    refused = await again.request({"type": "delete", "room": "lobby", "seq": 1})
    assert refused["code"] == "not_allowed"
    page = await again.request({"type": "history", "room": "lobby"})
    assert [m["text"] for m in page["messages"]] == ["fixed"]


@pytest.mark.parametrize("store", STORES)
async def test_revs_have_no_gaps_under_concurrent_senders_editors_and_reactors(
    start_server: StartServer, clients: Clients, store: str, tmp_path: Path
) -> None:
    server = await start_server(db_path=db_of(store, tmp_path), rate=0)
    watcher = await member(clients, server.port, "watcher")
    users = [await member(clients, server.port, f"u{n}") for n in range(4)]
    for n, user in enumerate(users):
        await user.request({"type": "say", "room": "lobby", "text": f"first of u{n}"})

    async def busy(n: int, user: LineClient) -> None:
        own = n + 1  # the seq of this user's first message
        for k in range(15):
            await user.send({"type": "say", "room": "lobby", "text": f"u{n} {k}"})
            await user.send({"type": "edit", "room": "lobby", "seq": own, "text": f"v{k}"})
            for seq in range(1, 5):
                emoji = f":r{k % 3}:"
                remove = k % 2 == 1
                react = {"type": "react", "room": "lobby", "seq": seq, "emoji": emoji}
                await user.send({**react, "remove": remove})
        # acked once committed, so after every change this user sent before it
        await user.request({"type": "say", "room": "lobby", "text": f"u{n} done"})

    await asyncio.gather(*(busy(n, user) for n, user in enumerate(users)))
    final = await watcher.request({"type": "history", "room": "lobby", "limit": 500})
    top = max(m["rev"] for m in final["messages"])
    while True:
        revs = [m["rev"] for m in watcher.seen if m["type"] in ("message", "edited", "reaction")]
        if revs and revs[-1] >= top:
            break
        await watcher.recv()
    assert revs == list(range(1, top + 1))  # each rev once, in order, none missing
    assert top > 4 + 4 * 15 * 2  # messages and edits alone, reactions on top
    seen = {m["seq"]: m["rev"] for m in watcher.seen if m["type"] == "message"}
    for event in watcher.seen:
        if event["type"] in ("edited", "reaction"):
            assert seen[event["seq"]] < event["rev"]  # after the message it changes


async def test_revs_go_on_after_a_restart(
    start_server: StartServer, clients: Clients, tmp_path: Path
) -> None:
    db = str(tmp_path / "chat.db")
    server = await start_server(db_path=db)
    alice = await member(clients, server.port, "alice")
    await alice.request({"type": "say", "room": "lobby", "text": "one"})
    await alice.request({"type": "edit", "room": "lobby", "seq": 1, "text": "uno"})
    await alice.request({"type": "react", "room": "lobby", "seq": 1, "emoji": "🙂"})
    await clients.close_all()
    await server.close()
    server = await start_server(db_path=db)
    alice = await member(clients, server.port, "alice")
    ack = await alice.request({"type": "say", "room": "lobby", "text": "two"})
    assert ack["seq"] == 2
    message = [m for m in alice.seen if m["type"] == "message" and m["seq"] == 2]
    assert message[0]["rev"] == 4
    page = await alice.request({"type": "history", "room": "lobby", "changed_since": 2})
    assert [(m["seq"], m["rev"]) for m in page["messages"]] == [(1, 3), (2, 4)]
    assert page["messages"][0]["reactions"] == {"🙂": ["alice"]}


@pytest.mark.parametrize("store", STORES)
async def test_changed_since_after_missed_changes_gives_the_current_state_once(
    start_server: StartServer, clients: Clients, store: str, tmp_path: Path
) -> None:
    server = await start_server(db_path=db_of(store, tmp_path))
    alice = await member(clients, server.port, "alice")
    for n in range(1, 6):
        await alice.request({"type": "say", "room": "lobby", "text": f"m{n}"})
    await alice.request({"type": "edit", "room": "lobby", "seq": 2, "text": "a"})
    await alice.request({"type": "edit", "room": "lobby", "seq": 2, "text": "b"})
    await alice.request({"type": "react", "room": "lobby", "seq": 4, "emoji": "x"})
    await alice.request({"type": "delete", "room": "lobby", "seq": 4})
    await alice.request({"type": "part", "room": "lobby"})
    reply = await alice.request({"type": "join", "room": "lobby", "changed_since": 5})
    assert reply["type"] == "room"
    page = await alice.expect("history")
    assert [(m["seq"], m["rev"], m["text"]) for m in page["messages"]] == [
        (2, 7, "b"),
        (4, 9, ""),
    ]
    assert page["more"] is False


async def test_text_mode_commands_and_lines(start_server: StartServer, clients: Clients) -> None:
    server = await start_server()
    alice = await member(clients, server.port, "alice")
    text = await clients.connect(server.port)
    await text.send_raw(b"carol\n")
    await text.send_raw(b"hello there\n")
    said = await alice.expect("message", text="hello there")
    assert said["text"] == "hello there"
    seq = said["seq"]
    await text.send_raw(f"/edit {seq} hello world\n".encode())
    assert (await alice.expect("edited"))["text"] == "hello world"
    await text.send_raw(f"/reply {seq} me too\n".encode())
    reply = await alice.expect("message", reply_to=seq)
    await text.send_raw(f"/react {seq} 👍\n".encode())
    await alice.expect("reaction", removed=False)
    await text.send_raw(f"/unreact {seq} 👍\n".encode())
    await alice.expect("reaction", removed=True)
    await alice.request({"type": "react", "room": "lobby", "seq": seq, "emoji": ":ok:"})
    await alice.request({"type": "edit", "room": "lobby", "seq": seq, "text": "not yours"})
    await alice.request({"type": "say", "room": "lobby", "text": "bye\tnow"})
    await text.send_raw(f"/delete {reply['seq']}\n".encode())
    await alice.expect("deleted", seq=reply["seq"])
    await text.send_raw(b"/edit 999 nope\n/edit x y\n/react 1 \x1b[2J\n")
    lines: list[str] = []
    while not lines or "(invalid_text)" not in lines[-1]:
        lines.append((await text.recv_line()).decode())
    shown = "".join(lines)
    assert "\x1b" not in shown
    assert "* carol edited [#1]: hello world" in shown
    assert "(reply to [#1])" in shown
    assert "* carol reacted 👍 to [#1]" in shown
    assert "* carol took back 👍 from [#1]" in shown
    assert "* alice reacted :ok: to [#1]" in shown
    assert f"* carol deleted [#{reply['seq']}]" in shown
    assert "no message 999 (no_such_message)" in shown
    assert "usage: /edit SEQ TEXT" in shown
