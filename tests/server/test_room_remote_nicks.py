"""`Room.nicks` with members on other nodes of a cluster: the cached index follows them."""

from __future__ import annotations

import asyncio

from chat_server.outbox import Flusher
from chat_server.rooms import Room
from tests.server.test_outbox import RecordingMember


async def test_remote_members_join_the_cached_nicks_and_leave_them() -> None:
    flusher = Flusher(asyncio.get_running_loop())
    room = Room("lobby", flusher)
    alice = RecordingMember("alice", flusher)
    room.add(alice)
    assert room.nicks == ["alice"]  # the index is built and kept from here on
    room.remote_add("bob", "n1")
    room.remote_add("bob", "n2")  # the same nick in from two nodes: once in the list
    room.remote_add("alice", "n1")  # an account here and on another node: once
    assert room.nicks == ["alice", "bob"] and room.has_nick("bob")
    assert room.remote_remove("bob", "n1") is False  # still in from n2
    assert room.nicks == ["alice", "bob"]
    assert room.remote_remove("bob", "n2") is True
    assert room.nicks == ["alice"] and not room.has_nick("bob")
    assert room.remote_remove("alice", "n1") is True
    assert room.nicks == ["alice"]  # the local session still holds the nick
    assert room.remote_remove("nobody", "n1") is False
    room.remove(alice)
    assert room.nicks == [] and not room.has_nick("alice")
    room.remote_add("carol", "n3")
    assert room.nicks == ["carol"]
