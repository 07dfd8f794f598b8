"""Token-bucket flood control: `burst` lines at once, `rate` lines per second after."""

from __future__ import annotations

__all__ = ["TokenBucket"]


class TokenBucket:
    """Allows a line when a token is left; tokens refill at `rate` per second up to `burst`."""

    __slots__ = ("_burst", "_rate", "_stamp", "_tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self._rate = rate
        self._burst = float(max(burst, 1))
        self._tokens = self._burst
        self._stamp = now

    def allow(self, now: float) -> bool:
        """Take a token if there is one; False means the line must be refused."""
        tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if tokens < 1.0:
            self._tokens = tokens
            return False
        self._tokens = tokens - 1.0
        return True
