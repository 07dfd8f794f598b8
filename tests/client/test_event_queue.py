"""The bounded event queue: drop the oldest, then tell the reader it lagged."""

from __future__ import annotations

import asyncio

import pytest

from chat_client.event_queue import EventQueue
from chat_client.events import ClientEvent, Lagged, RoundTrip
from tests.support import TIMEOUT


def drain(queue: EventQueue) -> list[ClientEvent]:
    found: list[ClientEvent] = []
    while (event := queue.get_nowait()) is not None:
        found.append(event)
    return found


def test_within_the_bound_nothing_is_dropped() -> None:
    queue = EventQueue(3)
    for n in range(3):
        queue.put(RoundTrip(n))
    assert drain(queue) == [RoundTrip(0), RoundTrip(1), RoundTrip(2)]


def test_past_the_bound_the_oldest_go_and_lagged_stands_in_their_place() -> None:
    queue = EventQueue(3)
    for n in range(10):
        queue.put(RoundTrip(n))
    assert len(queue) == 3
    assert drain(queue) == [Lagged(7), RoundTrip(7), RoundTrip(8), RoundTrip(9)]
    queue.put(RoundTrip(10))
    assert drain(queue) == [RoundTrip(10)]  # the count starts again


def test_the_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        EventQueue(0)


async def test_get_waits_for_the_next_event_and_ends_after_close() -> None:
    queue = EventQueue(5)
    waiting = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    queue.put(RoundTrip(1))
    assert await asyncio.wait_for(waiting, TIMEOUT) == RoundTrip(1)
    queue.put(RoundTrip(2))
    queue.close()
    queue.put(RoundTrip(3))  # ignored once closed
    assert await queue.get() == RoundTrip(2)
    assert await queue.get() is None
