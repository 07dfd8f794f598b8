"""The status line: connection state, nick, round-trip time, and the retry countdown.

It owns its timer, which runs only while a countdown is shown: an idle client
with a steady connection wakes for nothing.
"""

from __future__ import annotations

import asyncio

from textual.timer import Timer
from textual.widgets import Static

from ..presenter import Status
from ..text import literal

__all__ = ["StatusBar"]


class StatusBar(Static):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._status = Status()
        self._retry_at: float | None = None
        self._timer: Timer | None = None

    def on_mount(self) -> None:
        self._timer = self.set_interval(1.0, self._draw, pause=True)
        self._draw()

    def show_status(self, status: Status) -> None:
        self._status = status
        loop = asyncio.get_running_loop()
        self._retry_at = None if status.retry_in is None else loop.time() + status.retry_in
        if self._timer is not None:
            if self._retry_at is None:
                self._timer.pause()
            else:
                self._timer.resume()
        self._draw()

    def _draw(self) -> None:
        status = self._status
        text = status.text
        if self._retry_at is not None:
            left = max(0.0, self._retry_at - asyncio.get_running_loop().time())
            text = f"{text}; retrying in {left:.0f} s"
        if status.rtt is not None and status.connected:
            text += f" · rtt {status.rtt * 1000:.0f} ms"
        if status.security and status.connected:
            text += f" · {status.security}"
        if status.away is not None and status.connected:
            text += f" · away: {status.away}"
        self.update(literal(text, single_line=True))

    @property
    def text(self) -> str:
        return str(self.render())
