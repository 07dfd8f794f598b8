"""The transfers pane in a running Textual app, against a real server with files on."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

from textual.app import App, ComposeResult
from textual.widgets import ProgressBar

from chat_client import ChatClient, ClientSettings
from chat_client.tui.transfer_bar import TransferBar
from chat_client.tui.transfers import Transfers, complete_path
from chat_server.files.config import FilesConfig
from tests.conftest import StartServer
from tests.support import TIMEOUT

FAST = ClientSettings(backoff_initial=0.05, backoff_max=0.2, connect_timeout=2.0)


class TransfersApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.finished: list[Transfers.Finished] = []

    def compose(self) -> ComposeResult:
        yield Transfers(id="transfers")

    def on_transfers_finished(self, message: Transfers.Finished) -> None:
        self.finished.append(message)


async def wait_for(condition: object, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while not condition():  # type: ignore[operator]
        assert loop.time() < deadline, what
        await asyncio.sleep(0.01)


async def test_an_upload_shows_progress_and_chat_goes_on(
    start_server: StartServer, tmp_path: Path
) -> None:
    files = FilesConfig(directory=tmp_path / "files", port=0, upload_rate=2_000_000)
    server = await start_server(files=files)
    source = tmp_path / "video.mp4"
    source.write_bytes(os.urandom(1_500_000))
    app = TransfersApp()
    async with (
        ChatClient("127.0.0.1", server.port, "alice", settings=FAST) as alice,
        app.run_test(size=(100, 8)),
    ):
        await alice.join("lobby")
        app.query_one(Transfers).upload(alice.upload, source, room="lobby")
        await wait_for(
            lambda: app.query(ProgressBar) and 0 < (app.query_one(ProgressBar).progress or 0),
            "the bar never moved",
        )
        # The server takes the bytes at 2 MB/s: the bar is there, moving, and chat goes on.
        assert await alice.ping() < 0.5
        assert not app.finished and app.query(TransferBar)
        assert "MB" in str(app.query_one(".transfer-stats").render())
        await wait_for(lambda: app.finished, "the upload never finished")
        assert app.finished[0].ok, app.finished[0].text
        assert app.finished[0].text == "shared video.mp4 (1.5 MB) in #lobby"
        await wait_for(lambda: not app.query(TransferBar), "the bar to go")  # once done


async def test_a_download_lands_in_the_downloads_dir_without_overwriting(
    start_server: StartServer, tmp_path: Path
) -> None:
    files = FilesConfig(directory=tmp_path / "files", port=0, upload_rate=0)
    server = await start_server(files=files)
    source = tmp_path / "report.pdf"
    data = os.urandom(200_000)
    source.write_bytes(data)
    downloads = tmp_path / "Downloads"
    downloads.mkdir()
    (downloads / "report.pdf").write_bytes(b"someone else's")
    app = TransfersApp()
    async with (
        ChatClient("127.0.0.1", server.port, "alice", settings=FAST) as alice,
        app.run_test(size=(100, 8)) as pilot,
    ):
        await alice.join("lobby")
        shared = await alice.upload(source, room="lobby")
        app.query_one(Transfers).download(shared, downloads)
        await wait_for(lambda: app.finished, "the download never finished")
        await pilot.pause()
        saved = downloads / "report (1).pdf"
        assert app.finished[0].ok and str(saved) in app.finished[0].text
        assert saved.read_bytes() == data
        assert (downloads / "report.pdf").read_bytes() == b"someone else's"
        assert not saved.stat().st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

        damaged = shared.model_copy(update={"sha256": "0" * 64})
        app.query_one(Transfers).download(damaged, downloads)
        await wait_for(lambda: len(app.finished) == 2, "the second download never finished")
        assert not app.finished[1].ok and "damaged" in app.finished[1].text
        assert sorted(p.name for p in downloads.iterdir()) == ["report (1).pdf", "report.pdf"]


def test_path_completion(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("")
    (tmp_path / "notebook").mkdir()
    (tmp_path / ".hidden").write_text("")
    base = f"{tmp_path}/"
    assert complete_path(base + "no") == [base + "notebook/", base + "notes.txt"]
    assert complete_path(base) == [base + "notebook/", base + "notes.txt"]
    assert complete_path(base + ".h") == [base + ".hidden"]
    assert complete_path(base + "zzz") == []
    assert complete_path(f"{tmp_path}/missing/x") == []
