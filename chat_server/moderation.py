"""Who is an op of which room, and who is banned from it: the state and how it is stored.

Ops are kept by account (the key of its name) and survive restarts; a guest who
created a room is its op only while that connection lasts (kept in the hub, not
here). Bans are by account, or for a guest by nick, and survive restarts. A
store persists both through `Store.save_op` / `Store.save_ban` and hands them back
at start in `Store.load_moderation`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["BanRecord", "ModerationRecords"]


@dataclass(frozen=True, slots=True)
class BanRecord:
    """One ban: `nick` as it was written, who set it, why, and when."""

    room: str
    nick: str
    by: str
    reason: str | None
    ts_ms: int

    @property
    def key(self) -> str:
        return self.nick.lower()


@dataclass(slots=True)
class ModerationRecords:
    """Every room's ops (account keys) and bans (by nick key), as stored."""

    ops: dict[str, set[str]] = field(default_factory=dict)
    bans: dict[str, dict[str, BanRecord]] = field(default_factory=dict)

    def set_op(self, room: str, account_key: str, op: bool) -> None:
        if op:
            self.ops.setdefault(room, set()).add(account_key)
            return
        found = self.ops.get(room)
        if found is not None:
            found.discard(account_key)
            if not found:
                del self.ops[room]

    def forget_room(self, room: str) -> None:
        """The room expired: its ops and bans go with it (a new room of that name starts
        with none but its creator)."""
        self.ops.pop(room, None)
        self.bans.pop(room, None)

    def set_ban(self, room: str, nick_key: str, ban: BanRecord | None) -> None:
        if ban is not None:
            self.bans.setdefault(room, {})[nick_key] = ban
            return
        found = self.bans.get(room)
        if found is not None:
            found.pop(nick_key, None)
            if not found:
                del self.bans[room]
