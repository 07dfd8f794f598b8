"""What the hub knows of accounts between store reads: names, DM seqs, markers, logins.

- `names` is every account's key -> name, read at start and kept by `register`;
  it answers "is this nick an account?" without a store read, so a guest can
  never take an account's nick, online or not. A login reads the account afresh
  (the shell command may have reset its password or deleted it meanwhile).
- DM seqs are numbered here, per pair, like room seqs in `Room`: a DM the store
  refused hands its seq out again, so a pair's seqs have no gaps.
- Markers of an account online are cached (every session shares them); a
  guest's markers live on its connection only.
- Password checks run on a worker thread; nothing here logs a password.
"""

from __future__ import annotations

import asyncio
import time

from protocol import ErrorCode

from .account_store import Account, AccountStore, key
from .auth import LoginThrottle
from .errors import ChatError
from .passwords import hash_password, verify_password

__all__ = ["Accounts"]


class Accounts:
    """The accounts of one server, as the hub sees them."""

    def __init__(self, store: AccountStore, hash_memory_kib: int) -> None:
        self._store = store
        self._hash_memory_kib = hash_memory_kib
        self.names: dict[str, str] = {}  # key -> name as registered
        self._dm_seqs: dict[str, int] = {}  # pair -> last seq handed out
        self.markers: dict[str, dict[str, int]] = {}  # online accounts' markers
        self._throttle = LoginThrottle()

    async def load(self) -> None:
        """Read every account name and DM seq (at start, after the store opened)."""
        self.names = {key(name): name for name in await self._store.account_names()}
        self._dm_seqs = await self._store.dm_seqs()

    def is_account(self, nick: str) -> bool:
        return key(nick) in self.names

    # -- logins -----------------------------------------------------------------

    async def check_login(self, nick: str, password: str | None, address: str) -> Account | None:
        """The account `nick` logs into with `password`; None when `nick` is no account.

        Raises `ChatError`: `rate_limited` while the account or the address is
        blocked, `auth_required` without a password, `auth_failed` for a wrong one.
        """
        if self._throttle.blocked(nick, address, time.monotonic()):
            raise ChatError(ErrorCode.RATE_LIMITED, "too many failed logins; try again in a minute")
        account = await self._store.account(nick)
        if account is None:
            self.names.pop(key(nick), None)  # deleted from the shell meanwhile
            return None
        self.names[key(nick)] = account.name
        if password is None:
            raise ChatError(
                ErrorCode.AUTH_REQUIRED, f"{account.name} is an account: give its account_password"
            )
        if not await asyncio.to_thread(verify_password, account.password_hash, password):
            self._throttle.failed(nick, address, time.monotonic())
            raise ChatError(ErrorCode.AUTH_FAILED, "wrong account password")
        return account

    async def create(self, nick: str, password: str) -> None:
        """Make `nick` an account. Raises `ChatError` (`account_exists`, `unavailable`)."""
        if self.is_account(nick):
            raise ChatError(ErrorCode.ACCOUNT_EXISTS, f"{nick} is already an account")
        password_hash = await asyncio.to_thread(hash_password, password, self._hash_memory_kib)
        if self.is_account(nick):
            raise ChatError(ErrorCode.ACCOUNT_EXISTS, f"{nick} is already an account")
        self.names[key(nick)] = nick  # taken now, so nobody registers it twice meanwhile
        done: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        self._store.create_account(Account(nick, password_hash), done.set_result)
        error = await done
        if error is not None:
            del self.names[key(nick)]
            raise ChatError(ErrorCode.UNAVAILABLE, "the account could not be stored now; try again")

    # -- stored DMs ---------------------------------------------------------------

    def next_dm_seq(self, pair: str) -> int:
        seq = self._dm_seqs.get(pair, 0) + 1
        self._dm_seqs[pair] = seq
        return seq

    def seen_dm_seq(self, pair: str, seq: int) -> None:
        """Another node stored `seq` for `pair`: number on from there."""
        if seq > self._dm_seqs.get(pair, 0):
            self._dm_seqs[pair] = seq

    def dm_failed(self, pair: str, seq: int) -> None:
        """The DM given `seq` was not stored: hand the seq out again (see `Room.commit_failed`)."""
        if self._dm_seqs.get(pair, 0) >= seq:
            self._dm_seqs[pair] = seq - 1

    # -- markers ----------------------------------------------------------------

    async def load_markers(self, nick: str) -> None:
        if key(nick) not in self.markers:
            marks = await self._store.markers(nick)
            self.markers.setdefault(key(nick), marks)

    def forget_markers(self, nick: str) -> None:
        self.markers.pop(key(nick), None)
