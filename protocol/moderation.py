"""Moderation on the wire (feature `moderation`): ops, kicks and bans.

Requests (ops only): `op` `{room, nick, remove?}`, `kick` `{room, nick, reason?}`,
`ban` / `unban` `{room, nick, reason?}` and `bans` `{room}`. Events: `mode`,
`kicked` and `banned` go to connections granted `moderation` (the others see a
kick or a ban as `left` with reason `kicked` / `banned`); `ban_list` is the
reply to `bans`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .fields import NickName, Reason, RequestId, RoomName

__all__ = [
    "FEATURE_MODERATION",
    "Ban",
    "BanEntry",
    "BanList",
    "Banned",
    "GetBans",
    "Kick",
    "Kicked",
    "ModeChanged",
    "SetOp",
    "Unban",
]

FEATURE_MODERATION = "moderation"


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")

    id: RequestId | None = None


class SetOp(_Request):
    """`op`: make `nick` an op of `room` (with `remove`, take it back: a deop)."""

    type: Literal["op"] = "op"
    room: RoomName
    nick: NickName
    remove: bool = False


class Kick(_Request):
    """`kick`: the target's sessions leave `room` (it may join again)."""

    type: Literal["kick"] = "kick"
    room: RoomName
    nick: NickName
    reason: Reason | None = None


class Ban(_Request):
    """`ban`: refuse `nick`'s joins of `room` (by account; a guest by nick) and kick it now."""

    type: Literal["ban"] = "ban"
    room: RoomName
    nick: NickName
    reason: Reason | None = None


class Unban(_Request):
    """`unban`: lift a ban."""

    type: Literal["unban"] = "unban"
    room: RoomName
    nick: NickName
    reason: Reason | None = None


class GetBans(_Request):
    """`bans`: the room's bans (answered by `ban_list`)."""

    type: Literal["bans"] = "bans"
    room: RoomName


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, strict=True, extra="ignore", validate_by_name=True)


class ModeChanged(_Event):
    """`mode`: `nick` became an op of `room` (`op` true) or stopped being one."""

    type: Literal["mode"] = "mode"
    room: str
    nick: str
    op: bool
    by: str
    ts: str


class Kicked(_Event):
    """`kicked`: `by` kicked `nick` out of `room`."""

    type: Literal["kicked"] = "kicked"
    room: str
    nick: str
    by: str
    reason: str | None = None
    ts: str


class Banned(_Event):
    """`banned`: `by` banned `nick` from `room` (`removed`: lifted the ban)."""

    type: Literal["banned"] = "banned"
    room: str
    nick: str
    by: str
    reason: str | None = None
    removed: bool = False
    ts: str


class BanEntry(_Event):
    """One ban of a `ban_list`."""

    nick: str
    by: str
    reason: str | None = None
    ts: str


class BanList(_Event):
    """`ban_list`: the reply to `bans`, oldest ban first."""

    type: Literal["ban_list"] = "ban_list"
    room: str
    bans: list[BanEntry] = Field(default_factory=list)
    re: str | None = None
