"""`python -m bench.tui_open`: the figures end at a rendered frame, on a small store."""

from __future__ import annotations

import re

import pytest

from bench import tui_open

pytestmark = pytest.mark.slow


async def test_every_run_ends_at_a_frame_with_the_latest_page(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CHAT_CLIENT_CONFIG", raising=False)  # run() points it at its temp dir
    await tui_open.run(messages=400, repeat=2, pages=2)
    out = capsys.readouterr().out
    runs = re.findall(r"started in ([\d.]+) ms, opened in ([\d.]+) ms", out)
    assert len(runs) == 2, out
    for started, opened in runs:
        assert 0 < float(opened) < 10_000 and 0 < float(started) < 10_000
    assert "median start" in out
