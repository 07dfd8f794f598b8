"""One line per running file transfer: name, a `ProgressBar`, speed and time left.

The bar only shows what `ChatApp` tells it through `advance`; the transfer itself runs in
a worker, so chat goes on while the bar moves.
"""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import ProgressBar, Static

from ..transfers import TransferProgress
from .text import literal

__all__ = ["TransferBar"]


class TransferBar(Horizontal):
    """`⇡ report.pdf [=====     ] 40%  2.1 MB of 5.2 MB · 12 MB/s · 1 s left`."""

    DEFAULT_CSS = """
    TransferBar { height: 1; width: 1fr; }
    TransferBar > .transfer-name { width: auto; max-width: 30; padding: 0 1 0 0; }
    TransferBar > ProgressBar { width: auto; }
    TransferBar > .transfer-stats { width: 1fr; padding: 0 0 0 1; color: $text-muted; }
    """

    def __init__(self, name: str, total: int, *, uploading: bool, id: str | None = None) -> None:
        super().__init__(id=id)
        self.progress = TransferProgress(name, total)
        self._arrow = "⇡" if uploading else "⇣"

    def compose(self) -> ComposeResult:
        yield Static(
            literal(f"{self._arrow} {self.progress.name}", single_line=True),
            classes="transfer-name",
        )
        yield ProgressBar(total=self.progress.total, show_eta=False)
        yield Static(literal(self.progress.describe()), classes="transfer-stats")

    def advance(self, done: int, now: float | None = None) -> None:
        """The transfer has `done` bytes: move the bar and refresh speed and time left."""
        self.progress.update(done, time.monotonic() if now is None else now)
        if not self.is_mounted:
            return
        self.query_one(ProgressBar).update(progress=done)
        self.query_one(".transfer-stats", Static).update(literal(self.progress.describe()))
