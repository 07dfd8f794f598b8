"""Password-guess throttling: a growing delay per source address, no clock of its own.

Every wrong password from an address doubles the wait before that address's next
attempt is looked at (from `base` seconds, at most `MAX_DELAY`); failures older than
`WINDOW` seconds are forgotten. Callers pass the time, so this is plain bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAX_DELAY", "WINDOW", "AuthThrottle"]

MAX_DELAY = 30.0
WINDOW = 600.0


@dataclass(slots=True)
class _Record:
    failures: int
    last: float
    allowed_at: float


class AuthThrottle:
    """Failed password attempts per source address."""

    def __init__(self, base: float) -> None:
        self._base = base
        self._by_address: dict[str, _Record] = {}

    def wait(self, address: str, now: float) -> float:
        """Seconds before an attempt from `address` may be checked (0: now)."""
        record = self._by_address.get(address)
        if record is None:
            return 0.0
        if now - record.last > WINDOW:
            del self._by_address[address]
            return 0.0
        return max(0.0, record.allowed_at - now)

    def failed(self, address: str, now: float) -> int:
        """Record a wrong password from `address`; return its recent failures."""
        record = self._by_address.get(address)
        if record is None or now - record.last > WINDOW:
            record = self._by_address[address] = _Record(0, now, now)
        record.failures += 1
        record.last = now
        record.allowed_at = now + min(self._base * 2 ** (record.failures - 1), MAX_DELAY)
        if len(self._by_address) > 10_000:  # many addresses: forget the stale ones
            self._forget_before(now - WINDOW)
        return record.failures

    def _forget_before(self, cutoff: float) -> None:
        for address in [a for a, r in self._by_address.items() if r.last < cutoff]:
            del self._by_address[address]
