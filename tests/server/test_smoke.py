from __future__ import annotations

from chat_server.server import ChatServer
from tests.support import registered


async def test_two_clients_talk(server: ChatServer) -> None:
    alice = await registered(server.port, "alice", "lobby")
    bob = await registered(server.port, "bob", "lobby")
    ack = await alice.request({"type": "say", "room": "lobby", "text": "hi"})
    assert ack == {"type": "ack", "re": ack["re"], "seq": 1}
    got = await bob.expect("message")
    assert (got["from"], got["text"], got["seq"]) == ("alice", "hi", 1)
    await alice.close()
    await bob.close()
