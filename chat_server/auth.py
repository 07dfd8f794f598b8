"""Password-guess throttling: a growing delay per source address, no clock of its own.

Every wrong password from an address doubles the wait before that address's next
attempt is looked at (from `base` seconds, at most `MAX_DELAY`); failures older than
`WINDOW` seconds are forgotten. Callers pass the time, so this is plain bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAX_DELAY", "WINDOW", "AuthThrottle", "LoginThrottle"]

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


LOGIN_FAILURES = 5  # failed account logins that start a block...
LOGIN_WINDOW = 60.0  # ...when they fall within this many seconds...
LOGIN_BLOCK = 60.0  # ...and how long the block lasts


class LoginThrottle:
    """Failed account logins per account and per source address (the contract's rule).

    After `LOGIN_FAILURES` failures for one account, or from one address, within
    `LOGIN_WINDOW` seconds, further attempts on it (or from it) are refused for
    `LOGIN_BLOCK` seconds, without looking at the password.
    """

    def __init__(self) -> None:
        self._failures: dict[str, list[float]] = {}  # "a:name" / "ip:address" -> times
        self._blocked: dict[str, float] = {}  # same keys -> blocked until

    def blocked(self, account: str, address: str, now: float) -> bool:
        """True while the account or the address is blocked."""
        return any(
            self._blocked.get(k, 0.0) > now for k in (f"a:{account.lower()}", f"ip:{address}")
        )

    def failed(self, account: str, address: str, now: float) -> None:
        """Record a failed login for `account` from `address`."""
        for k in (f"a:{account.lower()}", f"ip:{address}"):
            times = [t for t in self._failures.get(k, ()) if now - t < LOGIN_WINDOW]
            times.append(now)
            if len(times) >= LOGIN_FAILURES:
                self._blocked[k] = now + LOGIN_BLOCK
                times = []
            self._failures[k] = times
        if len(self._failures) > 10_000:  # many names or addresses: forget the stale ones
            self._forget(now)

    def _forget(self, now: float) -> None:
        self._failures = {
            k: t for k, t in self._failures.items() if t and now - t[-1] < LOGIN_WINDOW
        }
        self._blocked = {k: until for k, until in self._blocked.items() if until > now}
