"""The running file transfers of the chat screen: one `TransferBar` each, and their workers.

`Transfers` is a small container the chat screen mounts above its composer. `upload` and
`download` start a Textual worker each (on the app's loop, like the network worker), so
chat goes on while bytes move; the bar goes when the transfer ends, and a `Finished`
message tells the screen what to say about it.

Downloads go to the user's downloads directory (platformdirs) under a sanitised name that
overwrites nothing (`name (1).ext`), are never executable, and are kept only if their
SHA-256 matches.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from itertools import count
from pathlib import Path

import platformdirs
from textual.containers import Vertical
from textual.message import Message

from protocol import FileInfo, format_size

from ..files import FileCorrupt, FileTransferError, Progress, download, free_path
from .transfer_bar import TransferBar

__all__ = ["Transfers", "complete_path", "downloads_dir"]

REDRAW_EVERY = 0.1  # seconds between bar updates: progress callbacks come per block

Uploader = Callable[..., Awaitable[FileInfo]]  # `ChatClient.upload`


def downloads_dir() -> Path:
    """The user's downloads directory (created if missing)."""
    return platformdirs.user_downloads_path(ensure_exists=True)


def complete_path(typed: str) -> list[str]:
    """Paths that complete `typed` (`~` allowed), directories ending in `/`, sorted."""
    expanded = Path(typed).expanduser() if typed else Path()
    if typed.endswith("/") or not typed:
        folder, stem = expanded, ""
    else:
        folder, stem = expanded.parent, expanded.name
    shown_folder = typed[: len(typed) - len(stem)] if stem else typed
    try:
        names = sorted(entry.name for entry in folder.iterdir() if entry.name.startswith(stem))
    except OSError:
        return []
    if not stem.startswith("."):
        names = [name for name in names if not name.startswith(".")]
    return [shown_folder + name + ("/" if (folder / name).is_dir() else "") for name in names[:200]]


class Transfers(Vertical):
    """Holds one bar per running transfer; empty (zero height) when nothing runs."""

    DEFAULT_CSS = """
    Transfers { height: auto; max-height: 5; }
    """

    class Finished(Message):
        """A transfer ended: `ok`, and a line to show the user."""

        def __init__(self, ok: bool, text: str) -> None:
            super().__init__()
            self.ok = ok
            self.text = text

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._ids = count(1)

    def upload(
        self, send: Uploader, path: Path, *, room: str | None = None, to: str | None = None
    ) -> TransferBar:
        """Share `path` through `send` (`ChatClient.upload`) in `room` or with `to`."""
        bar = self._add(path.name, path.stat().st_size, uploading=True)
        where = f"#{room}" if room else f"@{to}"

        async def run() -> None:
            try:
                shared = await send(path, room=room, to=to, progress=self._progress(bar))
            except (FileTransferError, OSError) as error:
                self._end(bar, False, f"upload of {path.name} failed: {error}")
            else:
                self._end(
                    bar, True, f"shared {shared.name} ({format_size(shared.size)}) in {where}"
                )

        self.run_worker(run(), group="transfers")
        return bar

    def download(self, file: FileInfo, directory: Path | None = None) -> TransferBar:
        """Save `file` into `directory` (default: the downloads directory)."""
        bar = self._add(file.name, file.size, uploading=False)

        async def run() -> None:
            target = free_path(directory or downloads_dir(), file.name)
            try:
                saved = await download(file, target, progress=self._progress(bar))
            except FileCorrupt:
                self._end(bar, False, f"{file.name} arrived damaged; nothing was kept")
            except (FileTransferError, OSError) as error:
                self._end(bar, False, f"download of {file.name} failed: {error}")
            else:
                self._end(bar, True, f"saved {file.name} as {saved}")

        self.run_worker(run(), group="transfers")
        return bar

    def _add(self, name: str, total: int, *, uploading: bool) -> TransferBar:
        bar = TransferBar(name, total, uploading=uploading, id=f"transfer-{next(self._ids)}")
        self.mount(bar)
        return bar

    def _progress(self, bar: TransferBar) -> Progress:
        last = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if now - last[0] >= REDRAW_EVERY or done >= total:
                last[0] = now
                bar.advance(done, now)

        return progress

    def _end(self, bar: TransferBar, ok: bool, text: str) -> None:
        if bar.is_mounted:
            bar.remove()
        self.post_message(self.Finished(ok, text))
