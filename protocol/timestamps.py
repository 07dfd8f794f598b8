"""Wire timestamps: RFC 3339 UTC with milliseconds, e.g. `2026-11-23T15:04:05.123Z`."""

from __future__ import annotations

import time
from datetime import UTC, datetime

__all__ = ["format_ts", "now_ms", "parse_ts"]


def now_ms() -> int:
    """Milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000


_second_cache: tuple[int, str] = (-1, "")


def format_ts(epoch_ms: int) -> str:
    """Format epoch milliseconds as a wire timestamp."""
    global _second_cache
    seconds, millis = divmod(epoch_ms, 1000)
    cached_second, prefix = _second_cache
    if seconds != cached_second:  # strftime once per second: this is on every message
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _second_cache = (seconds, prefix)
    return f"{prefix}.{millis:03d}Z"


def parse_ts(ts: str) -> datetime:
    """Parse a wire timestamp into an aware UTC datetime (raises ValueError if malformed)."""
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(UTC)
