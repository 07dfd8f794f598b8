"""Textual messages the network worker posts to the chat screen."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from textual.message import Message

from ..events import ClientEvent

__all__ = ["NetworkEvents"]


class NetworkEvents(Message, bubble=False):
    """A bounded slice of client events; `done` is set once the screen has drawn them.

    The worker waits for `done` before posting the next slice, so a flood (a
    100,000-message replay) is drawn in slices with the UI answering in between.
    """

    def __init__(self, events: Sequence[ClientEvent], done: asyncio.Event, last: bool) -> None:
        super().__init__()
        self.events = events
        self.done = done
        self.last = last  # no more slices of this batch follow
