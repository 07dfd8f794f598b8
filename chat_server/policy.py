"""Who may change a message: the authorization decisions of edits and deletes.

The author of a room message is recorded as an identity string when it is
stored (`StoredMessage.author`): `account:NAME` (the account's name in lower
case) for a logged-in account, whatever session sent it; `guest:N` for a guest,
where N is unique to its connection and never reused, so a guest who reconnects
with the same nick is a different author. Messages stored before authors were
recorded have none and nobody may edit them.
"""

from __future__ import annotations

import itertools
import secrets
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .rooms import Room
    from .store import StoredMessage

__all__ = ["Actor", "Authors", "may_delete", "may_edit", "moderates"]


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


def may_edit(author: str, message: StoredMessage) -> bool:
    """Only the author edits: the same account, or for a guest the same connection."""
    return bool(message.author) and message.author == author


def moderates(actor: Actor, room: Room) -> bool:
    """Is `actor` an op of `room` or a server admin?

    The hook for moderation: nobody is, until ops and admins exist.
    """
    return False


def may_delete(actor: Actor, author: str, message: StoredMessage, room: Room) -> bool:
    """The author deletes; so may a room op or a server admin (see `moderates`)."""
    return may_edit(author, message) or moderates(actor, room)
