"""Server settings: one frozen value built from the command line (or by tests)."""

from __future__ import annotations

from dataclasses import dataclass

from protocol.limits import MAX_LINE_BYTES, MAX_TEXT_CHARS

from .files.config import FilesConfig

__all__ = ["DEFAULT_PORT", "MEMORY_DB", "ServerConfig"]

DEFAULT_PORT = 7777
MEMORY_DB = ":memory:"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything a `ChatServer` needs to know; defaults are the contract's."""

    host: str | None = None  # None: every interface
    port: int = DEFAULT_PORT
    db_path: str = MEMORY_DB
    fsync: bool = False  # SQLite synchronous=FULL: survive a power cut, at some throughput
    name: str = "chat-server"
    motd: str = "Welcome! With netcat? Type your nick and press Enter."
    password: str | None = None
    rate: float = 10.0  # lines per second per client; 0 turns flood control off
    burst: int = 30
    max_line: int = MAX_LINE_BYTES
    max_text: int = MAX_TEXT_CHARS
    send_buffer: int = 1 << 20  # unsent bytes before a client counts as a slow consumer
    ping_interval: float = 30.0
    idle_timeout: float = 90.0
    max_per_ip: int = 50
    shutdown_grace: float = 5.0
    files: FilesConfig | None = None  # None: no files listener (the CLI turns it on)
