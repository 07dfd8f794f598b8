"""Where the server keeps its history by default: the user's data directory."""

from __future__ import annotations

from pathlib import Path

import platformdirs

__all__ = ["APP_NAME", "default_db_path"]

APP_NAME = "lanchat"
DB_FILE = "history.sqlite3"


def default_db_path() -> Path:
    """`<user data dir>/lanchat/history.sqlite3`, creating the directory if needed."""
    directory = platformdirs.user_data_path(APP_NAME)
    directory.mkdir(parents=True, exist_ok=True)
    return directory / DB_FILE
