"""`Room`'s tail lookups and its cached "every member has the feature" answer."""

from __future__ import annotations

import asyncio

from chat_server.outbox import Flusher
from chat_server.rooms import Room
from chat_server.store import StoredMessage
from tests.server.test_outbox import RecordingMember


def _message(seq: int, text: str = "hi") -> StoredMessage:
    return StoredMessage("lobby", seq, "alice", text, False, 0, rev=seq)


async def test_known_finds_every_message_of_a_gap_free_tail_and_nothing_else() -> None:
    room = Room("lobby", Flusher(asyncio.get_running_loop()), last_seq=10)
    for seq in range(11, 61):
        room.delivered(_message(seq))
    assert [m.seq for m in map(room.known, range(11, 61)) if m is not None] == list(range(11, 61))
    assert room.known(10) is None and room.known(61) is None and room.known(0) is None


async def test_known_and_changed_work_on_a_tail_with_gaps() -> None:
    # A tail read back from a store whose old messages expired one by one has gaps:
    # the place is then found by bisection, never guessed from the first seq.
    room = Room("lobby", Flusher(asyncio.get_running_loop()))
    for seq in (3, 4, 9, 12, 13):
        room.delivered(_message(seq))
    assert room.known(9) is not None and room.known(9).seq == 9  # type: ignore[union-attr]
    assert room.known(12).seq == 12  # type: ignore[union-attr]
    assert room.known(5) is None and room.known(14) is None
    room.changed(StoredMessage("lobby", 12, "alice", "edited", False, 0, rev=20))
    assert [m.text for m in room.tail] == ["hi", "hi", "hi", "edited", "hi"]
    room.changed(StoredMessage("lobby", 7, "alice", "not in the tail", False, 0, rev=21))
    assert [m.seq for m in room.tail] == [3, 4, 9, 12, 13]


async def test_all_granted_follows_joins_and_leaves() -> None:
    flusher = Flusher(asyncio.get_running_loop())
    room = Room("lobby", flusher)
    alice, bob = RecordingMember("alice", flusher), RecordingMember("bob", flusher)
    alice.features = bob.features = frozenset({"react"})
    room.add(alice)
    assert room.all_granted("react") and not room.all_granted("typing")
    old = RecordingMember("old", flusher)  # a version-1 client: no features
    room.add(old)
    assert not room.all_granted("react")  # the cached answer was dropped on the join
    room.remove(old)
    room.add(bob)
    assert room.all_granted("react")
