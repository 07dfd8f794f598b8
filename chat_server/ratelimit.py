"""Token-bucket flood control: `burst` at once, `rate` per second after.

One bucket counts lines (cost 1), another bytes (cost: the line's length).
"""

from __future__ import annotations

__all__ = ["TokenBucket"]


class TokenBucket:
    """Allows a cost while tokens last; they refill at `rate` per second up to `burst`."""

    __slots__ = ("_burst", "_rate", "_stamp", "_tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self._rate = rate
        self._burst = float(max(burst, 1))
        self._tokens = self._burst
        self._stamp = now

    def allow(self, now: float, cost: float = 1.0) -> bool:
        """Take `cost` tokens if there are that many; False means the line must be refused."""
        tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if tokens < cost:
            self._tokens = tokens
            return False
        self._tokens = tokens - cost
        return True

    def refund(self, cost: float = 1.0) -> None:
        """Give back tokens a line took that turned out not to count (never above `burst`)."""
        self._tokens = min(self._burst, self._tokens + cost)
