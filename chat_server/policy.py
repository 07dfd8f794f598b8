"""Who may do what: the authorization rules of changes and of moderation.

The author of a room message is recorded as an identity string when it is
stored (`StoredMessage.author`): `account:NAME` (the account's name in lower
case) for a logged-in account, whatever session sent it; `guest:N` for a guest,
where N is unique to its connection and never reused, so a guest who reconnects
with the same nick is a different author. Messages stored before authors were
recorded have none and nobody may edit them.

A room's ops are its creator (its first joiner; kept by account, a guest creator
only while that connection lasts), those an op made op, and the server admins
(`--admin NICK`, accounts only), who are op in every room. Only ops moderate;
nobody kicks or bans a server admin. Ops may delete any message of their room.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Collection
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .store import StoredMessage

__all__ = [
    "Actor",
    "Authors",
    "is_admin",
    "is_op",
    "may_ban",
    "may_delete",
    "may_edit",
    "may_kick",
    "may_list_bans",
    "may_set_op",
]


class Actor(Protocol):
    """The connection asking for a change, as far as policy needs it."""

    nick: str
    account: bool


class Authors:
    """The author identity of each connection (one per guest connection, one per account)."""

    def __init__(self) -> None:
        # Guest numbers carry a random prefix per server run: never equal to one stored before.
        self._run = secrets.token_hex(4)
        self._numbers = itertools.count(1)
        self._guests: dict[object, str] = {}

    def of(self, actor: Actor) -> str:
        if actor.account:
            return f"account:{actor.nick.lower()}"
        found = self._guests.get(actor)
        if found is None:
            found = self._guests[actor] = f"guest:{self._run}-{next(self._numbers)}"
        return found

    def forget(self, actor: object) -> None:
        """The connection closed: its guest identity is gone for good."""
        self._guests.pop(actor, None)


# -- changes to messages ---------------------------------------------------------------


def may_edit(author: str, message: StoredMessage) -> bool:
    """Only the author edits: the same account, or for a guest the same connection."""
    return bool(message.author) and message.author == author


def may_delete(author: str, message: StoredMessage, actor_is_op: bool) -> bool:
    """The author deletes; so may an op of the message's room (a server admin is one)."""
    return may_edit(author, message) or actor_is_op


# -- moderation ------------------------------------------------------------------------


def is_admin(nick: str, account: bool, admins: Collection[str]) -> bool:
    """A server admin: a logged-in account named by `--admin` (keys are lower case)."""
    return account and nick.lower() in admins


def is_op(
    nick: str,
    account: bool,
    admins: Collection[str],
    room_ops: Collection[str],
    guest_op: bool = False,
) -> bool:
    """Op of a room: an admin, an account among the room's ops, or its guest creator."""
    if is_admin(nick, account, admins):
        return True
    if account:
        return nick.lower() in room_ops
    return guest_op


def may_set_op(actor_is_op: bool) -> bool:
    """`op` / `deop`: ops only."""
    return actor_is_op


def may_kick(actor_is_op: bool, target_is_admin: bool) -> bool:
    """`kick`: ops only, and never a server admin."""
    return actor_is_op and not target_is_admin


def may_ban(actor_is_op: bool, target_is_admin: bool) -> bool:
    """`ban` / `unban`: ops only, and never a server admin."""
    return actor_is_op and not target_is_admin


def may_list_bans(actor_is_op: bool) -> bool:
    """`bans`: ops only."""
    return actor_is_op
