"""Several `chat-server --redis` processes on one real Redis behave as one server."""

from __future__ import annotations

from tests.support import registered

from .conftest import Nodes


async def test_nicks_are_unique_across_nodes(node: Nodes) -> None:
    a, b = await node(), await node()
    alice = await registered(a.port, "alice")
    from tests.support import open_client

    other = await open_client(b.port)
    reply = await other.request({"type": "hello", "nick": "ALICE"})
    assert reply["type"] == "error" and reply["code"] == "nick_taken", reply
    await alice.close()
    await other.close()
