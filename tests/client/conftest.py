from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def client_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The client's settings file, in the test's own directory."""
    path = tmp_path / "client.json"
    monkeypatch.setenv("CHAT_CLIENT_CONFIG", str(path))
    return path
