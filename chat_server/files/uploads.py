"""Uploads announced by `upload` and not finished yet (no I/O; the clock is passed in).

Rules:
- "The same upload" is the same owner (an account, or for a guest one connection),
  target, name, size and sha256: asking again returns the same ticket, with the bytes
  already received as its offset, and gives the token another `ttl` to live.
- An owner holds at most `per_owner` tickets at once; a guest's go when its connection
  does (nobody could resume them).
- A ticket lives `ttl` seconds after it was last asked for or written to; then its token
  opens nothing and its partial bytes are deleted by the sweep.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["ByteRate", "UploadAsk", "UploadRegistry", "UploadTicket"]

Same = tuple[str, str | None, str | None, str, int, str]  # owner, room, to, name, size, sha256


@dataclass(frozen=True, slots=True)
class UploadAsk:
    """What an `upload` line asks for, and who asks: owner, target, name, size and sha256
    make "the same upload"; `host` is where its URL points."""

    owner: str
    sender: str
    room: str | None
    to: str | None
    name: str
    size: int
    sha256: str
    host: str

    @property
    def same(self) -> Same:
        return (self.owner, self.room, self.to, self.name, self.size, self.sha256)


@dataclass(eq=False, slots=True)
class UploadTicket:
    """One announced upload: what it must turn out to be, and how far it got."""

    id: str  # becomes the file id
    token: str  # the upload capability in the URL
    owner: str
    sender: str
    room: str | None
    to: str | None
    name: str
    size: int
    sha256: str
    host: str  # the files listener's host as the uploader reached it
    expires: float
    received: int = 0
    busy: bool = False  # a PUT is streaming into it
    # Kept in the index too, so it resumes through any node (an account's, on nodes).
    portable: bool = False
    # SHA-256 of bytes [0, received), kept between PUTs so a resume need not re-read them.
    hasher: hashlib._Hash | None = field(default=None, repr=False)

    @classmethod
    def for_ask(
        cls,
        ask: UploadAsk,
        *,
        file_id: str,
        token: str,
        expires: float,
        received: int = 0,
        portable: bool = False,
    ) -> UploadTicket:
        return cls(
            id=file_id,
            token=token,
            owner=ask.owner,
            sender=ask.sender,
            room=ask.room,
            to=ask.to,
            name=ask.name,
            size=ask.size,
            sha256=ask.sha256,
            host=ask.host,
            expires=expires,
            received=received,
            portable=portable,
        )

    @property
    def same(self) -> Same:
        return (self.owner, self.room, self.to, self.name, self.size, self.sha256)


class UploadRegistry:
    """The open tickets, by token and by owner."""

    def __init__(self, ttl: float, per_owner: int) -> None:
        self.ttl = ttl
        self.per_owner = per_owner
        self._by_token: dict[str, UploadTicket] = {}

    def __iter__(self) -> Iterator[UploadTicket]:
        return iter(list(self._by_token.values()))

    def find_same(self, ask: UploadAsk, now: float) -> UploadTicket | None:
        same = ask.same
        for ticket in self._by_token.values():
            if ticket.expires > now and ticket.same == same:
                return ticket
        return None

    def count(self, owner: str, now: float) -> int:
        return sum(1 for t in self._by_token.values() if t.owner == owner and t.expires > now)

    def full(self, owner: str, now: float) -> bool:
        return self.count(owner, now) >= self.per_owner

    def add(self, ticket: UploadTicket) -> None:
        self._by_token[ticket.token] = ticket

    def by_token(self, token: str, now: float) -> UploadTicket | None:
        ticket = self._by_token.get(token)
        return ticket if ticket is not None and ticket.expires > now else None

    def touch(self, ticket: UploadTicket, now: float) -> None:
        ticket.expires = max(ticket.expires, now + self.ttl)

    def remove(self, ticket: UploadTicket) -> None:
        self._by_token.pop(ticket.token, None)

    def take_expired(self, now: float) -> list[UploadTicket]:
        """Remove and return the tickets past their time (none that is being written)."""
        gone = [t for t in self._by_token.values() if t.expires <= now and not t.busy]
        for ticket in gone:
            self.remove(ticket)
        return gone

    def take_owner(self, owner: str) -> list[UploadTicket]:
        """Remove and return an owner's idle tickets (a guest's connection closed)."""
        gone = [t for t in self._by_token.values() if t.owner == owner and not t.busy]
        for ticket in gone:
            self.remove(ticket)
        return gone


class ByteRate:
    """A token bucket in bytes: `rate` per second, bursts of `burst`; rate 0 = unlimited."""

    __slots__ = ("_burst", "_rate", "_stamp", "_tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self._rate = rate
        self._burst = burst
        self._tokens = burst
        self._stamp = now

    def take(self, amount: int, now: float) -> float:
        """Spend `amount` bytes; returns how long to wait before reading more (0 if none)."""
        if self._rate <= 0:
            return 0.0
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        self._tokens -= amount
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate
