"""Textual messages the network worker posts to the chat screen."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from textual.message import Message

from ..events import ClientEvent

__all__ = ["NetworkEvents"]


class NetworkEvents(Message, bubble=False):
    """A bounded slice of client events; `done` is released once the screen has drawn them.

    The worker keeps only a few slices in flight (a semaphore), so a flood (a
    100,000-message replay) is drawn in slices with the UI answering in between,
    and the screen's queue never grows without bound.
    """

    def __init__(self, events: Sequence[ClientEvent], done: asyncio.Semaphore, last: bool) -> None:
        super().__init__()
        self.events = events
        self.done = done
        self.last = last  # no more slices of this batch follow
