"""Accounts and stored DMs are the chat's, not a node's."""

from __future__ import annotations

import asyncio

from tests.support import UNIT, LineClient, open_client

from .conftest import Nodes

PASSWORD = "correct horse"
FEATURES = ["accounts", "read", "away"]


async def account(port: int, nick: str) -> LineClient:
    client = await open_client(port)
    welcome = await client.request({"type": "hello", "nick": nick, "features": FEATURES})
    assert welcome["type"] == "welcome", welcome
    reply = await client.request({"type": "register", "password": PASSWORD})
    assert reply["type"] == "ack", reply
    return client


async def test_an_account_made_on_one_node_logs_in_on_another_and_gets_its_dms(
    node: Nodes,
) -> None:
    a, b, c = await node(), await node(), await node()
    alice = await account(a.port, "alice")
    bob = await account(b.port, "bob")
    await bob.close()
    await asyncio.sleep(0.5 * UNIT)  # A learns of bob's account through Redis
    sent = await alice.request({"type": "dm", "to": "bob", "text": "while you were out"})
    assert sent["type"] == "ack", sent
    # A guest can take an account's nick on no node.
    guest = await open_client(c.port)
    refused = await guest.request({"type": "hello", "nick": "BOB"})
    assert (refused["type"], refused["code"]) == ("error", "auth_required"), refused
    wrong = await guest.request({"type": "hello", "nick": "bob", "account_password": "nope!!!!"})
    assert (wrong["type"], wrong["code"]) == ("error", "auth_failed"), wrong
    await guest.close()
    back = await open_client(c.port)
    welcome = await back.request(
        {"type": "hello", "nick": "bob", "account_password": PASSWORD, "features": FEATURES}
    )
    assert welcome["type"] == "welcome" and welcome["account"] is True, welcome
    dm = await back.expect("dm")
    assert (dm["from"], dm["text"], dm["seq"]) == ("alice", "while you were out", 1)
    page = await back.request({"type": "history", "with": "alice"})
    assert [m["text"] for m in page["messages"]] == ["while you were out"]
    await alice.close()
    await back.close()


async def test_dms_reach_a_user_on_another_node(node: Nodes) -> None:
    a, b = await node(), await node()
    carol = await open_client(a.port)
    assert (await carol.request({"type": "hello", "nick": "carol"}))["type"] == "welcome"
    dave = await open_client(b.port)
    assert (await dave.request({"type": "hello", "nick": "dave"}))["type"] == "welcome"
    await asyncio.sleep(0.3 * UNIT)  # A learns that dave is online on B
    sent = await carol.request({"type": "dm", "to": "DAVE", "text": "hi across"})
    assert sent["type"] == "ack", sent
    got = await dave.expect("dm")
    assert (got["from"], got["to"], got["text"]) == ("carol", "dave", "hi across")
    nobody = await carol.request({"type": "dm", "to": "nobody", "text": "?"})
    assert (nobody["type"], nobody["code"]) == ("error", "no_such_user")
    # Two accounts on two nodes: a stored conversation, numbered as one.
    alice = await account(a.port, "alice")
    bob = await account(b.port, "bob")
    # The account made on B (from a guest) takes a second session on A.
    other = await open_client(a.port)
    hello = {"type": "hello", "nick": "bob", "account_password": PASSWORD, "features": FEATURES}
    welcome = await other.request(hello)
    assert welcome["type"] == "welcome" and welcome["account"] is True, welcome
    await other.close()
    await asyncio.sleep(0.3 * UNIT)
    assert (await alice.request({"type": "dm", "to": "bob", "text": "one"}))["type"] == "ack"
    first = await bob.expect("dm", text="one")
    await asyncio.sleep(0.3 * UNIT)  # B learns the pair's seq from the event
    assert (await bob.request({"type": "dm", "to": "alice", "text": "two"}))["type"] == "ack"
    second = await alice.expect("dm", text="two")
    assert (first["seq"], second["seq"]) == (1, 2)
    for client in (carol, dave, alice, bob):
        await client.close()
