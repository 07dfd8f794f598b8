"""The bounded queue between the connection and the program reading its events.

It behaves like a broadcast channel: when the program falls behind and the
queue is full, the oldest event is dropped, and the next read returns a
`Lagged(dropped=N)` marker in place of the dropped ones, then the newer
events in order. A bot that never reads therefore costs at most `maxsize`
events of memory, and one that reads too slowly learns that it must resync.
"""

from __future__ import annotations

import asyncio
from collections import deque

from .events import ClientEvent, Lagged

__all__ = ["EventQueue"]


class EventQueue:
    """Events in order, at most `maxsize` of them kept; `get` waits for the next one."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be positive")
        self.maxsize = maxsize
        self._items: deque[ClientEvent] = deque()
        self._dropped = 0
        self._closed = False
        self._wakeup = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, event: ClientEvent) -> None:
        """Queue `event`, dropping the oldest one when full (ignored once closed)."""
        if self._closed:
            return
        if len(self._items) >= self.maxsize:
            self._items.popleft()
            self._dropped += 1
        self._items.append(event)
        self._wakeup.set()

    def close(self) -> None:
        """No more events: readers get what is queued, then the end."""
        self._closed = True
        self._wakeup.set()

    def get_nowait(self) -> ClientEvent | None:
        """The next event, `Lagged` first if some were dropped; None when empty."""
        if self._dropped:
            dropped, self._dropped = self._dropped, 0
            return Lagged(dropped)
        if self._items:
            return self._items.popleft()
        return None

    async def get(self) -> ClientEvent | None:
        """Wait for the next event; None once closed and empty."""
        while True:
            event = self.get_nowait()
            if event is not None or self._closed:
                return event
            self._wakeup.clear()
            await self._wakeup.wait()
