"""Who may do what: the authorization rules of moderation, as plain functions.

A room's ops are its creator (its first joiner; kept by account, a guest creator
only while that connection lasts), those an op made op, and the server admins
(`--admin NICK`, accounts only), who are op in every room. Only ops moderate;
nobody kicks or bans a server admin.
"""

from __future__ import annotations

from collections.abc import Collection

__all__ = ["is_admin", "is_op", "may_ban", "may_kick", "may_list_bans", "may_set_op"]


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
