"""The presence registry seam: nicks and room members shared by every node of a chat.

The hub keeps its own sessions (`ChatHub._online`) and room members (`Room.members`):
those are connections on this process. A `Presence` is told of every change, so a
chat of several processes can keep one namespace of nicks and one member list per
room (`RedisPresence` in chat_server/cluster.py). Alone, a server has nothing to
share: `LocalPresence` does nothing, and the hub's own checks are the whole story.

`claim` is the only call that can refuse: a nick one node hands out is taken on
every node. The others publish what already happened here.
"""

from __future__ import annotations

from protocol import DirectMessage, TypingNotice

__all__ = ["LocalPresence", "Presence"]


class Presence:
    """Every node's nicks and members; the single-process one shares nothing."""

    clustered = False  # True: claims need a round trip, so registration is awaited

    async def claim(self, nick: str, account: bool, ip: str = "") -> None:
        """Take `nick` on every node (an account may hold it from several). Raises ChatError.

        A guest's nick held for a dropped user (`hold`) is refused unless `ip` is its
        user's address, which takes the hold back."""
        return None

    def hold(self, nick: str, ip: str, seconds: float) -> None:
        """A dropped guest's nick: refused on every node for `seconds` to other addresses."""
        return None

    async def open_session(self, name: str, limit: int) -> None:
        """One more session of account `name`, counted on every node; raises
        `too_many_sessions` when it has `limit` already (alone: the hub counts)."""
        return None

    def session_closed(self, name: str) -> None:
        """A session of account `name` on this node ended."""
        return None

    def release(self, nick: str) -> None:
        """This node's last session of `nick` is gone."""
        return None

    def account_made(self, nick: str) -> None:
        """The guest holding `nick` here made it an account: other sessions may log in."""
        return None

    def joined(self, room: str, nick: str) -> None:
        """`nick` is now in `room` (its first session there on this node)."""
        return None

    def left(self, room: str, nick: str, reason: str | None) -> None:
        """`nick` left `room` (its last session there on this node)."""
        return None

    def nick_changed(self, old: str, new: str, rooms: list[str]) -> None:
        """A guest in `rooms` changed nick (`new` was claimed first)."""
        return None

    def topic_changed(self, room: str, topic: str, by: str) -> None:
        """A topic set here was committed."""
        return None

    def online_elsewhere(self, nick: str) -> str | None:
        """The name `nick` is online as on another node, or None."""
        return None

    def away_changed(self, nick: str, text: str | None) -> None:
        """`nick`'s away state on this node changed (None: here)."""
        return None

    def away_elsewhere(self, nick: str) -> str | None:
        """`nick`'s away text as the other nodes holding it say (None: here, or unknown)."""
        return None

    def combine_away(self, nick: str, here: str | None, local: bool) -> str | None:
        """`nick`'s away text with every node's sessions combined: `here` is this node's
        (None: here), `local` whether this node has sessions of it. Alone: `here`."""
        return here

    def typing(self, notice: TypingNotice, to: str | None) -> None:
        """A typing notice for a room with members elsewhere, or for `to` on another node."""
        return None

    def dm_sent(self, dm: DirectMessage, pair: str | None) -> None:
        """A DM went out here (stored for `pair`, or live only): the other nodes deliver it
        to their sessions of both ends, and learn the pair's last seq."""
        return None


class LocalPresence(Presence):
    """One process: the hub's own sessions are every session."""
