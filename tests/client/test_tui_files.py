"""Sharing files from the TUI: /upload with Tab completion and a progress bar, F4 to save."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import aiohttp

from chat_client.tui.transfer_bar import TransferBar
from chat_server.files.config import FilesConfig
from tests.conftest import StartServer
from tests.support import registered

from .tui_support import SIZE, composer, joined, log_text, make_app, type_line, until


async def test_upload_with_progress_while_chat_goes_on(
    start_server: StartServer, tmp_path: Path
) -> None:
    files = FilesConfig(directory=tmp_path / "files", port=0, upload_rate=2_000_000)
    server = await start_server(files=files)
    bob = await registered(server.port, "bob", "lobby")
    folder = tmp_path / "my stuff"
    folder.mkdir()
    data = os.urandom(1_500_000)
    (folder / "video.mp4").write_bytes(data)
    app = make_app(server.port, "alice", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        box = composer(app)
        box.focus()
        box.load_text(f"/upload {folder}/vi")
        box.move_cursor(box.document.end)
        await pilot.press("tab")
        assert box.text == f"/upload {folder}/video.mp4 "
        await pilot.press("enter")
        await until(pilot, lambda: bool(app.chat.query(TransferBar)), "the progress bar")
        bar = app.chat.query_one(TransferBar)
        await until(pilot, lambda: bar.progress.done > 0, "progress")
        # The server takes 2 MB/s: chat goes both ways while the bar is up.
        await bob.request({"type": "say", "room": "lobby", "text": "still here"})
        await until(pilot, lambda: "still here" in log_text(app), "bob's line")
        assert app.chat.query(TransferBar)
        await type_line(pilot, "me too")
        await bob.expect("message", text="me too")
        shared = await bob.expect("message", text="video.mp4 (1.5 MB)")
        assert shared["file"]["sha256"] == hashlib.sha256(data).hexdigest()
        await until(pilot, lambda: "shared video.mp4 (1.5 MB) in #lobby" in log_text(app), "done")
        await until(pilot, lambda: not app.chat.query(TransferBar), "the bar to go")
        assert "alice shared video.mp4 (1.5 MB)" in log_text(app)
    await bob.close()


async def test_f4_saves_the_newest_shared_file(start_server: StartServer, tmp_path: Path) -> None:
    files = FilesConfig(directory=tmp_path / "files", port=0, upload_rate=0)
    server = await start_server(files=files)
    bob = await registered(server.port, "bob", "lobby")
    app = make_app(server.port, "alice", "lobby")
    downloads = tmp_path / "Downloads"
    downloads.mkdir()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")
        app.chat.downloads = downloads
        data = b"%PDF-1.4 not really\n" * 5000
        ready = await bob.request(
            {
                "type": "upload",
                "room": "lobby",
                "name": "bashrc x.pdf",
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
        async with aiohttp.ClientSession() as session:
            response = await session.put(ready["url"], data=data)
            assert response.status == 201
        await until(pilot, lambda: "bob shared bashrc x.pdf" in log_text(app), "the file line")
        await pilot.press("f4")
        saved = downloads / "bashrc x.pdf"
        await until(pilot, lambda: "saved bashrc x.pdf as" in log_text(app), "saved")
        assert str(saved) in log_text(app).replace("\n", "")
        assert saved.read_bytes() == data
        await pilot.press("f4")  # again: a second copy, never over the first
        second = downloads / "bashrc x (1).pdf"
        await until(pilot, lambda: second.exists(), "the second copy")
        await type_line(pilot, "/download nothing.txt")
        await until(pilot, lambda: "no file called nothing.txt" in log_text(app), "the refusal")
    await bob.close()
