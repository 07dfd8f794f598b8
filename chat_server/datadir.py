"""Where the server keeps its files by default: the user's data directory for `lanchat`.

It holds the default history database, the TLS certificate and key, and the
server id announced on the LAN; `--data-dir` picks another directory.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs

__all__ = ["APP_NAME", "default_data_dir", "default_db_path"]

APP_NAME = "lanchat"
DB_FILE = "history.sqlite3"


def default_data_dir() -> Path:
    """`<user data dir>/lanchat` (not created here)."""
    return platformdirs.user_data_path(APP_NAME)


def default_db_path() -> Path:
    """`<user data dir>/lanchat/history.sqlite3`, creating the directory if needed."""
    directory = platformdirs.user_data_path(APP_NAME)
    directory.mkdir(parents=True, exist_ok=True)
    return directory / DB_FILE
