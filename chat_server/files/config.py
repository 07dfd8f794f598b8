"""Settings of file sharing, and the `K`/`M`/`G` sizes its flags take."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_FILES_PORT", "FilesConfig", "parse_size"]

DEFAULT_FILES_PORT = 7779
_SIZE_RE = re.compile(r"(\d+)\s*([KMG]?)(?:i?B)?", re.IGNORECASE)
_FACTORS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text: str) -> int:
    """Bytes from `123`, `512K`, `100M`, `2G` (binary: K = 1024); raises ValueError."""
    match = _SIZE_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a size (bytes, or a number with K, M or G)")
    return int(match[1]) * _FACTORS[match[2].upper()]


@dataclass(frozen=True, slots=True)
class FilesConfig:
    """Where files live and how much of everything one may use; defaults are the contract's."""

    directory: Path | None = None  # None: a temporary directory, deleted at shutdown
    port: int = DEFAULT_FILES_PORT
    max_file: int = 100 << 20
    quota: int = 2 << 30
    upload_rate: int = 20 << 20  # bytes per second per client; 0 = unlimited
    uploads_per_client: int = 2
    upload_ttl: float = 3600.0  # seconds an upload token (and its partial bytes) lives
    sweep_interval: float = 60.0
    # The host put into URLs when the chat connection's own address is not known.
    public_host: str | None = None
