"""What `op`, `kick`, `ban`, `unban` and `bans` do (feature `moderation`).

The hub owns one `Moderator`. Rules of who may act are in `policy`; the stored
state (ops by account, bans by nick key) in `moderation`. A change is applied
once the store has committed it, then members are told: connections granted
`moderation` (and text-mode users, as readable lines) get `mode` / `kicked` /
`banned`, the others see a kicked or banned member `left` with that reason.
Every action is logged at info: who did what to whom, in which room, never
message text.

On a node of several on Redis (`share`), ops, bans and a room's creator are kept
in Redis (chat_server/redis_moderation.py) and every change is an event all nodes
read: the node that acts tells its own members once Redis has it, and each other
node tells its members and removes its own sessions of a kicked or banned nick
when it reads the event (`from_elsewhere`). A kick on a node waits for Redis too,
so a kick the target's node never hears of is refused (`unavailable`), not acked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from protocol import (
    FEATURE_MODERATION,
    BanEntry,
    BanList,
    Banned,
    ErrorCode,
    Kicked,
    Left,
    ModeChanged,
    format_ts,
    now_ms,
)

from . import policy
from .errors import ChatError
from .moderation import BanRecord, ModerationRecords
from .outbox import Outgoing
from .rooms import Member

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .accounts import Accounts
    from .config import ServerConfig
    from .presence import Presence
    from .redis_moderation import RedisModeration
    from .rooms import Room
    from .store import Store

__all__ = ["UNSUPPORTED", "Hub", "Moderator", "Peer"]

log = logging.getLogger(__name__)

UNSUPPORTED = (
    "moderation is not supported on this server: it is one node of several on Redis "
    "(--redis), and ops and bans would hold on this node only"
)
_UNAVAILABLE = "the store cannot take writes now, so the change was not made; try again"


class Peer(Member, Protocol):
    """A registered connection, as moderation sees it (the hub's `Peer` is one)."""

    rooms: dict[str, None]
    account: bool
    closed: bool

    def send_ack(self, request_id: str, seq: int | None = None) -> None: ...


class Hub(Protocol):
    """What moderation needs of the hub (the hub is one; kept apart so neither imports
    the other)."""

    @property
    def config(self) -> ServerConfig: ...

    @property
    def store(self) -> Store: ...

    @property
    def accounts(self) -> Accounts: ...

    @property
    def presence(self) -> Presence: ...

    @property
    def rooms(self) -> Any: ...

    def existing_room(self, name: str) -> Room: ...

    def online(self, nick: str) -> list[Any]: ...

    def reply_error(self, peer: Any, request_id: str | None, message: str) -> None: ...

    def room_left(self, room: Room) -> None: ...


class Moderator:
    """Ops and bans of every room, and the moderation requests."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self.records = ModerationRecords()
        self._admins = frozenset(nick.lower() for nick in hub.config.admins)
        self._guest_ops: dict[str, set[Peer]] = {}  # room -> guest creators (this connection)
        self.shared: RedisModeration | None = None  # a node on Redis: kept there for all

    def share(self, shared: RedisModeration) -> None:
        """This server is one node of several: ops, bans and creators are kept in Redis."""
        self.shared = shared

    async def load(self) -> None:
        if self.shared is not None:
            self.records = await self.shared.load()
            return
        self.records = await self._hub.store.load_moderation()

    @property
    def _supported(self) -> bool:
        return self.shared is not None or self._hub.store.supports_moderation

    # -- who is op ---------------------------------------------------------------

    def is_admin(self, peer: Peer) -> bool:
        return policy.is_admin(peer.nick, peer.account, self._admins)

    def is_op(self, peer: Peer, room: str) -> bool:
        guest = peer in self._guest_ops.get(room, ())
        ops = self.records.ops.get(room, ())
        return policy.is_op(peer.nick, peer.account, self._admins, ops, guest)

    def ops_in(self, room: Room, joining: Peer | None = None) -> list[str]:
        """The nicks of the room's members (and `joining`) who are op, in member order.

        On a node, members on other nodes follow: accounts kept as op and admins (a
        guest creator's op is known on its own node only).
        """
        members = [*room.members, *([joining] if joining is not None else [])]
        ops = [member.nick for member in members if self.is_op(member, room.name)]  # type: ignore[arg-type]
        if room.remote:
            kept = self.records.ops.get(room.name, ())
            for nick in room.remote:
                key = nick.lower()
                if (key in kept or key in self._admins) and self._hub.accounts.is_account(nick):
                    ops.append(nick)
        return list(dict.fromkeys(ops))

    def created(self, peer: Peer, room: str) -> None:
        """`peer` made `room`: its first joiner is its op."""
        if not self._supported:
            return  # no ops where they would hold on one node only
        if self.shared is not None:
            self._claim_creator(self.shared, peer, room)
            return
        if not peer.account:
            self._guest_ops.setdefault(room, set()).add(peer)
            return
        key = peer.nick.lower()
        self.records.set_op(room, key, True)
        self._hub.store.save_op(room, key, True, _logged("op of the creator"))

    def _claim_creator(self, shared: RedisModeration, peer: Peer, room: str) -> None:
        """On a node: op only if no joiner on any node made the room first.

        The claim is queued right after the room's creation, so its answer is in
        before the joiner's `room` reply is made.
        """

        def claimed(first: bool, error: BaseException | None) -> None:
            if error is not None:
                log.error("could not store the creator of #%s: %s", room, error)
            if not first:
                return
            if peer.account:
                self.records.set_op(room, peer.nick.lower(), True)
            elif not peer.closed:
                self._guest_ops.setdefault(room, set()).add(peer)

        shared.claim_creator(room, peer.nick, peer.account, now_ms(), claimed)

    def forget(self, peer: Peer) -> None:
        """A connection ended: a guest creator's op goes with it."""
        for room in [room for room, peers in self._guest_ops.items() if peer in peers]:
            peers = self._guest_ops[room]
            peers.discard(peer)
            if not peers:
                del self._guest_ops[room]

    def forget_room(self, room: str) -> None:
        """`room` expired (the store forgets its ops and bans with it): no op, no ban left."""
        self.records.forget_room(room)
        self._guest_ops.pop(room, None)

    def check_join(self, peer: Peer, room: str) -> None:
        """Refuse a banned nick's join (an account's every session; a guest's nick)."""
        ban = self.records.bans.get(room, {}).get(peer.nick.lower())
        if ban is not None:
            raise ChatError(ErrorCode.BANNED, f"you are banned from #{room}")

    # -- requests ----------------------------------------------------------------

    def _room(self, peer: Peer, name: str) -> tuple[Room, bool]:
        """The room, and whether `peer` is its op (every request starts here)."""
        if not self._supported:
            raise ChatError(ErrorCode.NOT_ALLOWED, UNSUPPORTED)
        return self._hub.existing_room(name), self.is_op(peer, name)

    def _target_is_admin(self, nick: str) -> bool:
        return nick.lower() in self._admins and self._hub.accounts.is_account(nick)

    def set_op(
        self, peer: Peer, name: str, nick: str, remove: bool, request_id: str | None
    ) -> None:
        room, op = self._room(peer, name)
        if not policy.may_set_op(op):
            raise _not_op(name)
        account = self._hub.accounts.names.get(nick.lower())
        guests = [s for s in self._hub.online(nick) if not s.account]
        if remove and self._target_is_admin(nick):
            raise ChatError(ErrorCode.NOT_ALLOWED, f"{nick} is a server admin, op everywhere")
        by = peer.nick
        if account is None:
            if not remove:
                raise ChatError(
                    ErrorCode.NOT_ALLOWED, f"{nick} is not an account; ops are accounts"
                )
            if not any(guest in self._guest_ops.get(name, ()) for guest in guests):
                raise ChatError(ErrorCode.NO_SUCH_USER, f"{nick} is not an op of #{name}")
            for guest in guests:
                self._guest_ops.get(name, set()).discard(guest)
            self._mode_changed(room, nick, False, by, request_id, peer)
            return
        key = account.lower()

        def committed(error: BaseException | None) -> None:
            if error is not None:
                self._hub.reply_error(peer, request_id, _UNAVAILABLE)
                return
            self.records.set_op(name, key, not remove)
            self._mode_changed(room, account, not remove, by, request_id, peer)

        if self.shared is not None:
            self.shared.save_op(name, key, not remove, account, by, now_ms(), committed)
        else:
            self._hub.store.save_op(name, key, not remove, committed)

    def _mode_changed(
        self, room: Room, nick: str, op: bool, by: str, request_id: str | None, peer: Peer
    ) -> None:
        log.info("%s %s %s in #%s", by, "opped" if op else "deopped", nick, room.name)
        event = ModeChanged(room=room.name, nick=nick, op=op, by=by, ts=format_ts(now_ms()))
        self._tell(room, event, None)
        if request_id is not None:
            peer.send_ack(request_id)

    def kick(
        self, peer: Peer, name: str, nick: str, reason: str | None, request_id: str | None
    ) -> None:
        room, op = self._room(peer, name)
        if not op:
            raise _not_op(name)
        if not policy.may_kick(op, self._target_is_admin(nick)):
            raise ChatError(ErrorCode.NOT_ALLOWED, f"{nick} is a server admin and cannot be kicked")
        targets = [s for s in self._hub.online(nick) if s in room]
        shown = targets[0].nick if targets else _remote_nick(room, nick)
        if shown is None:
            raise ChatError(ErrorCode.NO_SUCH_USER, f"{nick} is not in #{name}")
        by, ts_ms = peer.nick, now_ms()

        def kicked(error: BaseException | None) -> None:
            if error is not None:
                self._hub.reply_error(peer, request_id, _UNAVAILABLE)
                return
            self._kicked(room, shown, by, reason, ts_ms)
            if request_id is not None:
                peer.send_ack(request_id)

        if self.shared is not None:  # every node removes its own sessions of the target
            self.shared.kick(name, shown, by, reason, ts_ms, kicked)
        else:
            kicked(None)

    def _kicked(self, room: Room, nick: str, by: str, reason: str | None, ts_ms: int) -> None:
        """Tell this node's members of a kick and take this node's sessions of `nick` out."""
        log.info("%s kicked %s from #%s", by, nick, room.name)
        ts = format_ts(ts_ms)
        event = Kicked(room=room.name, nick=nick, by=by, reason=reason, ts=ts)
        self._tell(room, event, Left(room=room.name, nick=nick, reason="kicked", ts=ts))
        self._remove(room, nick, "kicked")

    def ban(
        self, peer: Peer, name: str, nick: str, reason: str | None, request_id: str | None
    ) -> None:
        room, op = self._room(peer, name)
        if not op:
            raise _not_op(name)
        if not policy.may_ban(op, self._target_is_admin(nick)):
            raise ChatError(ErrorCode.NOT_ALLOWED, f"{nick} is a server admin and cannot be banned")
        shown = self._hub.accounts.names.get(nick.lower()) or nick
        online = self._hub.online(nick)
        if online:
            shown = online[0].nick
        elif (elsewhere := self._hub.presence.online_elsewhere(nick)) is not None:
            shown = elsewhere
        key = shown.lower()
        ban = BanRecord(name, shown, peer.nick, reason, now_ms())

        def committed(error: BaseException | None) -> None:
            if error is not None:
                self._hub.reply_error(peer, request_id, _UNAVAILABLE)
                return
            self._banned(room, key, ban)
            if request_id is not None:
                peer.send_ack(request_id)

        if self.shared is not None:
            self.shared.save_ban(name, key, ban, shown, peer.nick, reason, ban.ts_ms, committed)
        else:
            self._hub.store.save_ban(name, key, ban, committed)

    def _banned(self, room: Room, key: str, ban: BanRecord) -> None:
        """A committed ban: kept, told to this node's members, its sessions here taken out."""
        self.records.set_ban(room.name, key, ban)
        log.info("%s banned %s from #%s", ban.by, ban.nick, room.name)
        present = any(s in room for s in self._hub.online(ban.nick))
        present = present or _remote_nick(room, ban.nick) is not None
        ts = format_ts(ban.ts_ms)
        event = Banned(room=room.name, nick=ban.nick, by=ban.by, reason=ban.reason, ts=ts)
        left = Left(room=room.name, nick=ban.nick, reason="banned", ts=ts) if present else None
        self._tell(room, event, left)
        self._remove(room, ban.nick, "banned")

    def unban(
        self, peer: Peer, name: str, nick: str, reason: str | None, request_id: str | None
    ) -> None:
        room, op = self._room(peer, name)
        if not policy.may_ban(op, target_is_admin=False):
            raise _not_op(name)
        key = nick.lower()
        ban = self.records.bans.get(name, {}).get(key)
        if ban is None:
            raise ChatError(ErrorCode.NO_SUCH_USER, f"{nick} is not banned from #{name}")
        by, ts_ms = peer.nick, now_ms()

        def committed(error: BaseException | None) -> None:
            if error is not None:
                self._hub.reply_error(peer, request_id, _UNAVAILABLE)
                return
            self._unbanned(room, key, ban.nick, by, reason, ts_ms)
            if request_id is not None:
                peer.send_ack(request_id)

        if self.shared is not None:
            self.shared.save_ban(name, key, None, ban.nick, by, reason, ts_ms, committed)
        else:
            self._hub.store.save_ban(name, key, None, committed)

    def _unbanned(
        self, room: Room, key: str, nick: str, by: str, reason: str | None, ts_ms: int
    ) -> None:
        self.records.set_ban(room.name, key, None)
        log.info("%s unbanned %s from #%s", by, nick, room.name)
        event = Banned(
            room=room.name, nick=nick, by=by, reason=reason, removed=True, ts=format_ts(ts_ms)
        )
        self._tell(room, event, None)

    # -- what the other nodes did (a node on Redis) ----------------------------------

    def from_elsewhere(self, fields: dict[str, str]) -> None:
        """A `mod-*` event another node wrote (chat_server/redis_moderation.py)."""
        kind, name = fields.get("k"), fields.get("r", "")
        room = self._hub.rooms.get(name)
        ts_ms = int(fields.get("ts") or now_ms())
        reason = fields.get("why") or None
        if kind == "mod-op":
            op = fields.get("on") == "1"
            self.records.set_op(name, fields["key"], op)
            if room is not None and fields.get("quiet") != "1":
                by = fields.get("by", "")
                log.info("%s %s %s in #%s", by, "opped" if op else "deopped", fields["u"], name)
                event = ModeChanged(room=name, nick=fields["u"], op=op, by=by, ts=format_ts(ts_ms))
                self._tell(room, event, None)
        elif kind == "mod-ban":
            text = fields.get("b", "")
            if text:
                from .redis_moderation import ban_from_json

                ban = ban_from_json(name, text)
                if room is None:
                    self.records.set_ban(name, fields["key"], ban)
                else:
                    self._banned(room, fields["key"], ban)
            elif room is None:
                self.records.set_ban(name, fields["key"], None)
            else:
                self._unbanned(room, fields["key"], fields["u"], fields["by"], reason, ts_ms)
        elif kind == "mod-kick" and room is not None:
            self._kicked(room, fields["u"], fields["by"], reason, ts_ms)

    def bans(self, peer: Peer, name: str, request_id: str | None) -> BanList:
        _room, op = self._room(peer, name)
        if not policy.may_list_bans(op):
            raise _not_op(name)
        entries = [
            BanEntry(nick=ban.nick, by=ban.by, reason=ban.reason, ts=format_ts(ban.ts_ms))
            for ban in sorted(self.records.bans.get(name, {}).values(), key=lambda b: b.ts_ms)
        ]
        return BanList(room=name, bans=entries, re=request_id)

    # -- telling members -----------------------------------------------------------

    def _tell(self, room: Room, event: BaseModel, others: BaseModel | None) -> None:
        """`event` to members granted `moderation`; `others` (if any) to the rest."""
        room.seal()  # later broadcasts must not overtake these
        told = Outgoing(event)
        rest = Outgoing(others) if others is not None else None
        for member in list(room.members):
            if FEATURE_MODERATION in member.features:
                member.send(told)
            elif rest is not None:
                member.send(rest)

    def _remove(self, room: Room, nick: str, reason: str) -> None:
        """Take every session of `nick` out of `room` (a kick or a ban).

        On a node, the other nodes' entries for `nick` go too (each of them removes its
        own sessions when it reads the same event), and the sessions taken out here are
        published as gone, which the other nodes apply without a second `left`.
        """
        targets = [s for s in self._hub.online(nick) if s in room]
        for target in targets:
            room.remove(target)
            target.rooms.pop(room.name, None)
        if self.shared is not None:
            remote = _remote_nick(room, nick)
            if remote is not None:
                for node in list(room.remote.get(remote, ())):
                    room.remote_remove(remote, node)
            if targets:
                self._hub.presence.left(room.name, targets[0].nick, reason)
        if targets:
            self._hub.room_left(room)


def _not_op(room: str) -> ChatError:
    return ChatError(ErrorCode.NOT_ALLOWED, f"you are not an op of #{room}")


def _remote_nick(room: Room, nick: str) -> str | None:
    """`nick` as it is in the room from another node (any case), or None."""
    if nick in room.remote:
        return nick
    key = nick.lower()
    return next((n for n in room.remote if n.lower() == key), None)


def _logged(what: str) -> Callable[[BaseException | None], None]:
    def done(error: BaseException | None) -> None:
        if error is not None:
            log.error("could not store the %s: %s", what, error)

    return done
