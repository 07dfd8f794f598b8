"""Transfer progress as shown: the pure numbers, and the bar in a running Textual app."""

from __future__ import annotations

from pathlib import Path

from textual.app import App, ComposeResult
from textual.widgets import ProgressBar, Static

from chat_client.files import free_path, safe_file_name
from chat_client.transfers import TransferProgress
from chat_client.tui.transfer_bar import TransferBar


def test_speed_and_time_left_come_from_the_last_seconds() -> None:
    progress = TransferProgress("a.bin", 100_000_000)
    progress.update(40_000_000, now=0.0)  # resumed: 40 MB were there already
    assert progress.speed is None and progress.seconds_left is None
    progress.update(50_000_000, now=1.0)
    assert progress.speed == 10_000_000
    assert progress.seconds_left == 5.0
    assert progress.describe() == "50.0 MB of 100 MB · 10.0 MB/s · 5 s left"
    for second in range(2, 8):
        progress.update(50_000_000 + (second - 1) * 5_000_000, now=float(second))
    assert progress.speed == 5_000_000  # the fast first second has left the window
    progress.update(100_000_000, now=9.0)
    assert progress.finished and "left" not in progress.describe()


def test_long_waits_read_in_minutes_and_hours() -> None:
    progress = TransferProgress("a.bin", 10_000_000_000)
    progress.update(0, now=0.0)
    progress.update(1_000_000, now=1.0)
    assert progress.describe().endswith("2 h 46 min left")


def test_saved_names_are_sanitised_and_never_overwrite(tmp_path: Path) -> None:
    assert safe_file_name("report.pdf") == "report.pdf"
    assert safe_file_name("..\x1b[31mevil") == "_[31mevil"
    assert safe_file_name("a:b*c?.txt") == "a_b_c_.txt"
    assert safe_file_name("CON.txt") == "download CON.txt"
    assert safe_file_name(" . ") == "download"
    assert len(safe_file_name("é" * 255).encode()) <= 200
    (tmp_path / "report.pdf").write_bytes(b"mine")
    assert free_path(tmp_path, "report.pdf") == tmp_path / "report (1).pdf"
    (tmp_path / "report (1).pdf").write_bytes(b"mine too")
    assert free_path(tmp_path, "report.pdf") == tmp_path / "report (2).pdf"
    assert free_path(tmp_path, "notes") == tmp_path / "notes"
    (tmp_path / "notes").write_bytes(b"")
    assert free_path(tmp_path, "notes") == tmp_path / "notes (1)"


class BarApp(App[None]):
    def compose(self) -> ComposeResult:
        yield TransferBar("[bold]r\x1bport[/].pdf", 2_000_000, uploading=True, id="bar")


async def test_the_bar_moves_and_shows_the_name_literally() -> None:
    app = BarApp()
    async with app.run_test(size=(100, 5)) as pilot:
        bar = app.query_one(TransferBar)
        bar.advance(0, now=0.0)
        bar.advance(1_000_000, now=1.0)
        await pilot.pause()
        assert app.query_one(ProgressBar).progress == 1_000_000
        stats = str(app.query_one(".transfer-stats", Static).render())
        assert stats == "1.0 MB of 2.0 MB · 1.0 MB/s · 1 s left"
        name = str(app.query_one(".transfer-name", Static).render())
        assert name == "⇡ [bold]r␛port[/].pdf"
