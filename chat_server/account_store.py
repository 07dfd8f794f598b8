"""The accounts store interface (accounts, stored DMs, read markers), and its memory form.

Every `Store` is also an `AccountStore`, so a new backend (SQLite today, Redis
later) implements both, and tests/store/test_account_store.py runs one contract
suite over every implementation. Rules of the contract kept here:

- names are keyed case-insensitively (`key(nick)`); an account keeps the
  capitalisation it was registered with;
- a stored DM belongs to the pair of its two accounts (`pair_key`); the hub
  numbers it (per pair, from 1) and the store refuses a seq that does not follow
  the pair's last one, as it does for room messages; a pair's seq never restarts,
  not even after an account is deleted;
- a DM stored while its recipient had no session online is *pending* until
  `dms_delivered` says it went out, so it is delivered once;
- a read marker only moves forward (`set_marker` keeps the larger seq).

Writes take a `done` callback run on the event loop once committed (or failed),
like room messages; reads are async.
"""

from __future__ import annotations

import abc
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass

from protocol import DirectMessage, format_ts

__all__ = [
    "Account",
    "AccountStore",
    "DmPage",
    "MemoryAccounts",
    "StoredDm",
    "key",
    "pair_key",
]

Done = Callable[[BaseException | None], None]


def key(nick: str) -> str:
    """The case-insensitive key of a nick or account name."""
    return nick.lower()


def pair_key(a: str, b: str) -> str:
    """The key of the conversation between two accounts (order does not matter)."""
    first, second = sorted((key(a), key(b)))
    return f"{first} {second}"  # a space never occurs in a nick


@dataclass(frozen=True, slots=True)
class Account:
    """One account: its name as registered and its argon2id hash (salt included)."""

    name: str
    password_hash: str


@dataclass(frozen=True, slots=True)
class StoredDm:
    """One stored DM between two accounts."""

    pair: str
    seq: int
    sender: str
    to: str
    text: str
    ts_ms: int

    def to_wire(self) -> DirectMessage:
        return DirectMessage(
            sender=self.sender, to=self.to, text=self.text, ts=format_ts(self.ts_ms), seq=self.seq
        )


@dataclass(frozen=True, slots=True)
class DmPage:
    """Stored DMs of one pair, oldest first; `more`: others exist in the direction asked."""

    messages: list[StoredDm]
    more: bool


class AccountStore(abc.ABC):
    """Where accounts, stored DMs and read markers live."""

    @abc.abstractmethod
    async def account(self, name: str) -> Account | None:
        """The account called `name` (any capitalisation), read afresh from the store."""

    @abc.abstractmethod
    async def account_names(self) -> list[str]:
        """Every account's name, sorted by key."""

    @abc.abstractmethod
    def create_account(self, account: Account, done: Done) -> None:
        """Store a new account; `done` gets an error when the name is already one."""

    @abc.abstractmethod
    async def dm_seqs(self) -> dict[str, int]:
        """The last seq of every pair that ever had a stored DM."""

    @abc.abstractmethod
    def append_dm(self, dm: StoredDm, pending: bool, done: Done) -> None:
        """Store a DM (its seq must follow the pair's last); `pending`: not delivered yet."""

    @abc.abstractmethod
    async def pending_dms(self, name: str) -> list[StoredDm]:
        """The DMs to `name` not delivered yet, in the order they were stored."""

    @abc.abstractmethod
    def dms_delivered(self, name: str, dms: list[StoredDm], done: Done) -> None:
        """Record that `dms` (pending ones to `name`) were delivered."""

    @abc.abstractmethod
    async def dm_history(
        self, pair: str, before: int | None, after: int | None, limit: int
    ) -> DmPage:
        """A page of a pair's DMs: after `after`, before `before`, or the latest."""

    @abc.abstractmethod
    async def markers(self, name: str) -> dict[str, int]:
        """An account's read markers: target (`#room` or `@nick key`) -> seq."""

    @abc.abstractmethod
    def set_marker(self, name: str, target: str, seq: int, done: Done) -> None:
        """Move a marker forward to `seq` (a lower seq leaves it where it is)."""


class MemoryAccounts(AccountStore):
    """Accounts, DMs and markers kept in memory (`--db :memory:` and tests)."""

    def __init__(self) -> None:
        self._accounts: dict[str, Account] = {}
        self._dms: dict[str, list[StoredDm]] = {}
        self._pending: dict[str, list[StoredDm]] = {}
        self._markers: dict[str, dict[str, int]] = {}

    async def account(self, name: str) -> Account | None:
        return self._accounts.get(key(name))

    async def account_names(self) -> list[str]:
        return [self._accounts[k].name for k in sorted(self._accounts)]

    def create_account(self, account: Account, done: Done) -> None:
        if key(account.name) in self._accounts:
            done(ValueError(f"{account.name} is already an account"))
            return
        self._accounts[key(account.name)] = account
        done(None)

    async def dm_seqs(self) -> dict[str, int]:
        return {pair: dms[-1].seq for pair, dms in self._dms.items() if dms}

    def append_dm(self, dm: StoredDm, pending: bool, done: Done) -> None:
        dms = self._dms.setdefault(dm.pair, [])
        last = dms[-1].seq if dms else 0
        if dm.seq != last + 1:
            done(ValueError(f"DM seq {dm.seq} does not follow {last}"))
            return
        dms.append(dm)
        if pending:
            self._pending.setdefault(key(dm.to), []).append(dm)
        done(None)

    async def pending_dms(self, name: str) -> list[StoredDm]:
        return list(self._pending.get(key(name), []))

    def dms_delivered(self, name: str, dms: list[StoredDm], done: Done) -> None:
        gone = set(dms)
        pending = self._pending.get(key(name), [])
        self._pending[key(name)] = [dm for dm in pending if dm not in gone]
        done(None)

    async def dm_history(
        self, pair: str, before: int | None, after: int | None, limit: int
    ) -> DmPage:
        dms = self._dms.get(pair, [])
        if after is not None:
            start = bisect_right(dms, after, key=_seq)
            return DmPage(dms[start : start + limit], more=start + limit < len(dms))
        end = len(dms) if before is None else bisect_left(dms, before, key=_seq)
        start = max(0, end - limit)
        return DmPage(dms[start:end], more=start > 0)

    async def markers(self, name: str) -> dict[str, int]:
        return dict(self._markers.get(key(name), {}))

    def set_marker(self, name: str, target: str, seq: int, done: Done) -> None:
        marks = self._markers.setdefault(key(name), {})
        marks[target] = max(seq, marks.get(target, 0))
        done(None)

    def delete_account(self, name: str) -> bool:
        """Forget an account, its markers and its DMs (the pairs' seqs go on)."""
        found = self._accounts.pop(key(name), None) is not None
        self._markers.pop(key(name), None)
        self._pending.pop(key(name), None)
        return found


def _seq(dm: StoredDm) -> int:
    return dm.seq
