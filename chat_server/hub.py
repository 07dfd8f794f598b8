"""The chat core: nicks, rooms and what each request does, with no wire format.

Sessions (JSON or plain text) call these methods with validated values. A
refusal raises `ChatError` and changes nothing. Joins and history reads may
need the store; such methods return a result when memory can answer at once,
or an awaitable of it when the store must be read, so the fast path costs no
task switch.

Ordering rules kept here:
- a room message is broadcast (and acked) only after the store committed it,
  in seq order, because the store calls back in the order it was given;
- a joiner gets `room`, then `history`, then `joined`, and history read from
  the store is trimmed to what was already broadcast and topped up from the
  room's tail, so the joiner sees every message exactly once.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel

from protocol import (
    AwayChanged,
    DirectMessage,
    ErrorCode,
    ErrorReply,
    FileInfo,
    Joined,
    Left,
    NickChanged,
    ReadMarker,
    RoomSummary,
    TopicChanged,
    TypingNotice,
    format_ts,
    now_ms,
)
from protocol.limits import JOIN_HISTORY, REPLAY_MAX

from .account_store import DmPage, StoredDm, pair_key
from .accounts import Accounts
from .auth import AuthThrottle
from .changes import MessageChanges
from .config import FEATURE_TYPING, ServerConfig
from .errors import ChatError
from .eventlog import MessageLog, StoreLog
from .moderating import Moderator
from .outbox import Flusher, Outgoing
from .presence import LocalPresence, Presence
from .rooms import Member, Room, RoomRegistry
from .search import SearchCursor, SearchPage, index_of, matches, parse_query
from .store import HistoryPage, Store, StoredMessage, StoreError

if TYPE_CHECKING:
    from .files.sharing import FileSharing

__all__ = ["ChatHub", "Peer", "Result"]

log = logging.getLogger(__name__)


_UNAVAILABLE = "the history store cannot take writes now, so {what} was not stored; try again"
_UNREADABLE = "the history store cannot be read now; try again"
_NO_SEARCH = "search is not supported on this server: it is one node of several on Redis (--redis)"


class Peer(Member, Protocol):
    """A registered (or registering) connection, as the hub sees it."""

    rooms: dict[str, None]  # joined room names (a dict: smaller than a set when empty)
    closed: bool
    ip: str
    created_rooms: int  # rooms this connection made (capped)
    account: bool  # logged in to an account (the nick is its name)
    features: frozenset[str]  # version-2 features granted in `welcome`
    away: str | None  # this session's away text (None: here)
    marks: dict[str, int]  # a guest's read markers (an account's are shared, in `Accounts`)

    def send_ack(self, request_id: str, seq: int | None = None) -> None: ...


@dataclass(frozen=True, slots=True)
class Result:
    """Messages for a `history` reply (or the history part of a join), oldest first."""

    room: Room
    messages: list[StoredMessage]
    more: bool


class ChatHub:
    """Every nick and room of one server."""

    def __init__(
        self,
        config: ServerConfig,
        store: Store,
        flusher: Flusher,
        log: MessageLog | None = None,
        presence: Presence | None = None,
    ) -> None:
        self.config = config
        self.store = store
        # The event-log seam: numbers, commits and fans out room messages (see eventlog.py).
        self.log = log if log is not None else StoreLog(store)
        self.log.subscriber = self._fan_out
        # Nicks and members shared with the other nodes of a chat (nothing to share alone).
        self.presence = presence if presence is not None else LocalPresence()
        self.rooms = RoomRegistry(flusher, config.tail_bytes)
        # nick key -> its sessions: one for a guest, up to `max_sessions` for an account
        self._online: dict[str, list[Peer]] = {}
        self.accounts = Accounts(store, config.hash_memory_kib)
        self._away: dict[str, str] = {}  # nick key -> away text, for those away
        # On a node: nick key -> (nick, text) of those shown away here, all nodes combined.
        self._shown_away: dict[str, tuple[str, str]] = {}
        self._handed: set[tuple[str, int]] = set()  # pending DMs being delivered now
        self._empty: dict[Room, float] = {}  # unused rooms, and since when
        self._auth = AuthThrottle(config.auth_delay)
        self._held: dict[str, tuple[str, float]] = {}  # nick key -> (address, held until)
        self.files: FileSharing | None = None  # set when the files listener runs
        self.changes = MessageChanges(self)  # replies, edits, deletes, reactions
        self.moderator = Moderator(self)

    def is_op(self, peer: Peer, room: str) -> bool:
        """Is `peer` an op of `room` (a server admin is one everywhere)?"""
        return self.moderator.is_op(peer, room)

    # -- registration ---------------------------------------------------------

    def password_wait(self, peer: Peer) -> float:
        """Seconds before `peer`'s password may be checked (wrong guesses from its address)."""
        if self.config.password is None:
            return 0.0
        return self._auth.wait(peer.ip, time.monotonic())

    def check_password(self, peer: Peer, password: str | None) -> None:
        """Raise `auth_failed` on a wrong password; each failure is logged (never the guess)."""
        expected = self.config.password
        if expected is None:
            return
        if password is None or not hmac.compare_digest(password.encode(), expected.encode()):
            failures = self._auth.failed(peer.ip, time.monotonic())
            log.warning("wrong password from %s (%d recent failures)", peer.ip, failures)
            raise ChatError(ErrorCode.AUTH_FAILED, "wrong or missing password")

    def register(self, peer: Peer, nick: str) -> None:
        """Register `peer` as a guest (a nick that is not an account)."""
        key = nick.lower()
        if key in self._online:
            raise ChatError(ErrorCode.NICK_TAKEN, f"the nick {nick} is taken")
        if self.accounts.is_account(nick):
            raise ChatError(
                ErrorCode.AUTH_REQUIRED, f"{nick} is an account: give its account_password"
            )
        self._check_held(peer, key, nick)
        self._online[nick if key == nick else key] = [peer]  # one string, not two, when equal
        peer.nick = nick

    async def register_guest(self, peer: Peer, nick: str) -> None:
        """`register`, then the nick claimed on every node of a cluster (undone if refused)."""
        before = peer.nick
        self.register(peer, nick)
        try:
            await self.presence.claim(nick, False, peer.ip)
        except BaseException:
            if self._online.get(nick.lower()) == [peer]:
                del self._online[nick.lower()]
            peer.nick = before
            raise

    async def login(self, peer: Peer, nick: str, password: str | None) -> None:
        """Register `peer` as `nick`: a session of that account, or a guest when it is none."""
        account = await self.accounts.check_login(nick, password, peer.ip)
        if account is None:
            if self.presence.clustered:
                await self.register_guest(peer, nick)
            else:
                self.register(peer, nick)
            return
        if self.presence.clustered:
            await self.presence.claim(account.name, True)
        await self.accounts.load_markers(account.name)
        key = account.name.lower()
        sessions = self._online.get(key, [])
        if sessions and not sessions[0].account:
            raise ChatError(ErrorCode.NICK_TAKEN, f"the nick {nick} is taken by a guest")
        if len(sessions) >= self.config.max_sessions:
            if not sessions:
                self.presence.release(account.name)
            raise ChatError(
                ErrorCode.TOO_MANY_SESSIONS,
                f"{account.name} has {len(sessions)} sessions, the maximum",
            )
        if self.presence.clustered:
            sessions = await self._open_session(account.name)
        before = self._away.get(key)
        peer.nick, peer.account = account.name, True
        self._online[key] = [*sessions, peer]
        self._update_away(key, before)

    async def _open_session(self, name: str) -> list[Peer]:
        """On a node: count one more session of account `name` on every node (refused at
        `--max-sessions` in all); this node's sessions of it as they are after the wait."""
        key = name.lower()
        try:
            await self.presence.open_session(name, self.config.max_sessions)
        except BaseException:
            if not self._online.get(key):
                self.presence.release(name)
            raise
        sessions = self._online.get(key, [])
        if (sessions and not sessions[0].account) or len(sessions) >= self.config.max_sessions:
            self.presence.session_closed(name)
            if not sessions:
                self.presence.release(name)
            raise ChatError(
                ErrorCode.TOO_MANY_SESSIONS, f"{name} has {len(sessions)} sessions, the maximum"
            )
        return sessions

    async def register_account(self, peer: Peer, password: str) -> None:
        """Make the registered nick of `peer` an account (`register`)."""
        if peer.account:
            raise ChatError(ErrorCode.ACCOUNT_EXISTS, f"{peer.nick} is already an account")
        await self.accounts.create(peer.nick, password)
        self.presence.account_made(peer.nick)
        if peer.closed:  # gone while the account was made: not a session of it any more
            self.presence.session_closed(peer.nick)
        if not peer.closed:
            peer.account = True
            self.accounts.markers[peer.nick.lower()] = dict(peer.marks)
            for target, seq in peer.marks.items():
                self.store.set_marker(peer.nick, target, seq, _ignore_error)

    def sessions(self, peer: Peer) -> list[Peer]:
        """Every session of `peer`'s nick (itself alone for a guest)."""
        return self._online.get(peer.nick.lower()) or [peer]

    async def deliver_pending(self, peer: Peer) -> None:
        """After `welcome`: the DMs stored while the account was offline, once, in order."""
        await self._synced()
        dms = [
            dm
            for dm in await self.store.pending_dms(peer.nick)
            if (dm.pair, dm.seq) not in self._handed
        ]
        if not dms or peer.closed:
            return
        self._hand_out(peer, dms, [peer])

    def _hand_out(self, peer: Peer, dms: list[StoredDm], sessions: list[Peer]) -> None:
        handed = [(dm.pair, dm.seq) for dm in dms]
        self._handed.update(handed)
        for dm in dms:
            out = Outgoing(dm.to_wire())
            for session in sessions:
                session.send(out)

        def recorded(_error: BaseException | None) -> None:
            self._handed.difference_update(handed)

        self.store.dms_delivered(peer.nick, dms, recorded)

    async def _synced(self) -> None:
        """Wait until every write queued so far is committed (or failed)."""
        done: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        self.store.sync(done.set_result)
        await done

    def _check_held(self, peer: Peer, key: str, nick: str) -> None:
        """Refuse a nick held for a dropped user to connections from other addresses."""
        held = self._held.get(key)
        if held is None:
            return
        ip, until = held
        left = until - time.monotonic()
        if left <= 0 or ip == peer.ip:  # run out, or its user is back (the caller takes it)
            del self._held[key]
        else:
            raise ChatError(
                ErrorCode.NICK_TAKEN,
                f"the nick {nick} is held for {left:.0f} s for its user, who was disconnected",
            )

    def forget_held_nicks(self) -> None:
        """Drop the holds that ran out (called now and then by the server's sweep)."""
        now = time.monotonic()
        for key in [k for k, (_, until) in self._held.items() if until <= now]:
            del self._held[key]

    def unregister(self, peer: Peer, reason: str, *, hold_nick: bool = False) -> None:
        """Take `peer` out of every room (members get `left`) and free its nick.

        With `hold_nick` (the user was dropped, it did not quit) the nick stays
        reserved for `nick_grace` seconds to connections from the same address, so a
        flood that drops someone cannot hand their nick, and their DMs, to another.
        """
        ts = format_ts(now_ms())
        for name in sorted(peer.rooms):
            room = self.rooms.get(name)
            if room is not None:
                crowded = self.crowded(room)  # counted with the leaver, before it goes
                room.remove(peer)
                if not self._other_session_in(peer, room):
                    if not crowded:
                        left = Left(room=name, nick=peer.nick, reason=reason, ts=ts)
                        room.broadcast(Outgoing(left))
                    self.presence.left(name, peer.nick, reason)  # each node applies its limit
                self._expire_if_unused(room)
        peer.rooms.clear()
        self.moderator.forget(peer)
        key = peer.nick.lower()
        self.changes.authors.forget(peer)
        if self.files is not None:
            self.files.forget(peer)
        sessions = self._online.get(key)
        if sessions is None or peer not in sessions:
            return
        before = self._away.get(key)
        sessions.remove(peer)
        if peer.account:
            self.presence.session_closed(peer.nick)
        if sessions:
            self._update_away(key, before)
            return
        del self._online[key]
        held = not peer.account and hold_nick and self.config.nick_grace > 0
        if held and self.presence.clustered:  # held on every node, before it is free
            self.presence.hold(peer.nick, peer.ip, self.config.nick_grace)
        self.presence.release(peer.nick)
        self._away.pop(key, None)
        if self.presence.clustered:
            self.away_shown(peer.nick)
        if peer.account:
            self.accounts.forget_markers(peer.nick)
        elif held and not self.presence.clustered:
            self._held[key] = (peer.ip, time.monotonic() + self.config.nick_grace)

    def room_names(self) -> list[str]:
        return self.rooms.names()

    def change_nick(self, peer: Peer, nick: str) -> Awaitable[None] | None:
        """Change a guest's nick; in a cluster an awaitable (the new nick is claimed first)."""
        if self.presence.clustered and nick.lower() != peer.nick.lower():
            self._check_nick_change(peer, nick)
            return self._change_nick_clustered(peer, nick)
        self._change_nick(peer, nick)
        return None

    async def _change_nick_clustered(self, peer: Peer, nick: str) -> None:
        await self.presence.claim(nick, False, peer.ip)
        old = peer.nick
        try:
            self._change_nick(peer, nick)
        except BaseException:
            self.presence.release(nick)
            raise
        if peer.nick != old:
            self.presence.release(old)
            self.presence.nick_changed(old, nick, list(peer.rooms))

    def _check_nick_change(self, peer: Peer, nick: str) -> None:
        if peer.account:
            raise ChatError(
                ErrorCode.NOT_ALLOWED, "an account's nick is its name; it cannot change"
            )

    def _change_nick(self, peer: Peer, nick: str) -> None:
        if peer.account:
            raise ChatError(
                ErrorCode.NOT_ALLOWED, "an account's nick is its name; it cannot change"
            )
        key = nick.lower()
        owner = self._online.get(key)
        if (owner is not None and owner != [peer]) or (
            key != peer.nick.lower() and self.accounts.is_account(nick)
        ):
            raise ChatError(ErrorCode.NICK_TAKEN, f"the nick {nick} is taken")
        if owner is None:
            self._check_held(peer, key, nick)
        old = peer.nick
        if old == nick:
            return
        del self._online[old.lower()]
        self._online[key] = [peer]
        peer.nick = nick
        for name in peer.rooms:
            if (room := self.rooms.get(name)) is not None:
                room.nick_changed()
        out = Outgoing(NickChanged(old=old, new=nick, ts=format_ts(now_ms())))
        for recipient in self._sharing_rooms_with(peer):
            recipient.send(out)

    def _sharing_rooms_with(self, peer: Peer) -> Iterable[Member]:
        seen: dict[Member, None] = {peer: None}
        for name in peer.rooms:
            room = self.rooms.get(name)
            if room is not None:
                room.seal()  # later broadcasts must not overtake this event
                seen.update(room.members)
        return seen

    # -- rooms ----------------------------------------------------------------

    def existing_room(self, name: str) -> Room:
        room = self.rooms.get(name)
        if room is None:
            raise ChatError(ErrorCode.NO_SUCH_ROOM, f"there is no room #{name}")
        return room

    def joined_room(self, peer: Peer, name: str) -> Room:
        room = self.rooms.get(name)
        if room is None or peer not in room:
            raise ChatError(ErrorCode.NOT_IN_ROOM, f"you are not in #{name}")
        return room

    def join(
        self, peer: Peer, name: str, since: int | None, changed_since: int | None = None
    ) -> Result | Awaitable[Result]:
        """Start a join: the history the joiner gets. Then send it, then call `enter`.

        A new room exists once the store has confirmed it; until then its joiners
        wait, and if the store refuses it the room is gone and they get `unavailable`.
        """
        self.moderator.check_join(peer, name)
        room = self.rooms.get(name)
        if room is None:
            room = self._create_room(peer, name)
        if room.creating:
            return self._join_when_created(peer, room, since)
        if changed_since is not None:
            return self.changed_since(room, changed_since, REPLAY_MAX)
        if since is None:
            latest = room.tail_latest(JOIN_HISTORY)
            if latest is not None:
                return Result(room, latest, more=bool(latest) and latest[0].seq > 1)
        else:
            missed = room.tail_after(since)
            if missed is not None:
                return Result(room, missed[:REPLAY_MAX], more=len(missed) > REPLAY_MAX)
        return self._join_from_store(room, since)

    def _create_room(self, peer: Peer, name: str) -> Room:
        config = self.config
        if config.max_rooms and len(self.rooms) >= config.max_rooms:
            raise ChatError(
                ErrorCode.LIMIT_REACHED, f"the server has {len(self.rooms)} rooms, its maximum"
            )
        if config.max_rooms_per_client and peer.created_rooms >= config.max_rooms_per_client:
            raise ChatError(
                ErrorCode.LIMIT_REACHED, f"you made {peer.created_rooms} rooms, the maximum"
            )
        peer.created_rooms += 1
        room = self.rooms.create(name)
        room.creating = True

        def created(error: BaseException | None) -> None:
            room.creating = False
            self.rooms.changed()
            if error is not None:
                log.error("could not store new room #%s: %s", name, error)
                self.rooms.discard(room)
            waiters, room.waiters = room.waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(error is None)

        self.store.create_room(name, created)
        self.moderator.created(peer, name)
        return room

    async def _join_when_created(self, peer: Peer, room: Room, since: int | None) -> Result:
        if room.creating:  # the store may have answered before this coroutine started
            waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            room.waiters.append(waiter)
            await waiter
        if self.rooms.get(room.name) is not room:
            raise ChatError(ErrorCode.UNAVAILABLE, _UNAVAILABLE.format(what="the room"))
        result = self.join(peer, room.name, since)
        return result if isinstance(result, Result) else await result

    async def _join_from_store(self, room: Room, since: int | None) -> Result:
        try:
            return await self._join_from_log(room, since)
        except StoreError as exc:
            raise ChatError(ErrorCode.UNAVAILABLE, _UNREADABLE) from exc

    async def _join_from_log(self, room: Room, since: int | None) -> Result:
        for _ in range(3):
            if since is None:
                page = await self.log.latest(room.name, JOIN_HISTORY)
            else:
                page = await self.log.after(room.name, since, REPLAY_MAX)
            settled = _settle(room, page, since)
            if settled is not None:
                if since is None:
                    messages = settled[-JOIN_HISTORY:]
                    return Result(room, messages, more=bool(messages) and messages[0].seq > 1)
                return Result(room, settled[:REPLAY_MAX], page.more or len(settled) > REPLAY_MAX)
        log.warning("room #%s moved too fast to settle a join; sending what was read", room.name)
        return Result(room, [m for m in page.messages if m.seq <= room.delivered_seq], True)

    def enter(self, peer: Peer, room: Room) -> None:
        """Finish a join: `peer` becomes a member and every member gets `joined`.

        A later session of an account already in the room gets its own `joined` only.
        """
        if peer in room:
            return
        room.add(peer)
        peer.rooms[room.name] = None
        joined = Joined(room=room.name, nick=peer.nick, ts=format_ts(now_ms()))
        if self._other_session_in(peer, room):
            peer.send_message(joined)
            return
        if self.crowded(room):
            peer.send_message(joined)
        else:
            room.broadcast(Outgoing(joined))
        self.presence.joined(room.name, peer.nick)  # the other nodes apply their limit

    def crowded(self, room: Room) -> bool:
        """More members than `--presence-limit`: joins and parts are not announced.

        Members are counted as connections (an account in the room from two sessions
        counts twice), plus the nicks in it from other nodes of a cluster, which keeps
        the check O(1) on every join. A cluster's nodes apply it to the joins and parts
        they hear of from the others too (cluster.py).
        """
        limit = self.config.presence_limit
        return limit > 0 and len(room.members) + len(room.remote) > limit

    def _other_session_in(self, peer: Peer, room: Room) -> bool:
        if not peer.account:
            return False
        return any(s is not peer and s in room for s in self.sessions(peer))

    def part(self, peer: Peer, name: str, reason: str | None) -> None:
        room = self.joined_room(peer, name)
        left = Left(room=name, nick=peer.nick, reason=reason, ts=format_ts(now_ms()))
        other_session = self._other_session_in(peer, room)
        if other_session or self.crowded(room):
            room.seal()
            peer.send_message(left)
        else:
            room.broadcast(Outgoing(left))
        if not other_session:
            self.presence.left(name, peer.nick, reason)  # the other nodes apply their limit
        room.remove(peer)
        peer.rooms.pop(name, None)
        self._expire_if_unused(room)

    def online(self, nick: str) -> list[Peer]:
        """The sessions registered as `nick` (none when it is offline)."""
        return list(self._online.get(nick.lower(), ()))

    def reply_error(self, peer: Peer, request_id: str | None, message: str) -> None:
        """Tell `peer` that a write it asked for could not be stored."""
        _reply_error(peer, request_id, message)

    def room_left(self, room: Room) -> None:
        """Members were taken out of `room` (a kick or a ban)."""
        self._expire_if_unused(room)

    def _expire_if_unused(self, room: Room) -> None:
        """Start the clock of a room that is now empty and has no history and no topic."""
        if not _unused(room) or self.presence.clustered:  # other nodes may be using it
            return
        self._empty[room] = time.monotonic()

    def expire_rooms(self) -> None:
        """Forget rooms empty, without history and topic, for `room_expiry` seconds."""
        if not self._empty:
            return
        cutoff = time.monotonic() - self.config.room_expiry
        for room, since in list(self._empty.items()):
            if not _unused(room) or self.rooms.get(room.name) is not room:
                del self._empty[room]
            elif since <= cutoff:
                del self._empty[room]
                self.rooms.discard(room)
                self.moderator.forget_room(room.name)
                self.store.delete_room(room.name)

    def say(
        self,
        peer: Peer,
        name: str,
        text: str,
        action: bool,
        request_id: str | None,
        reply_to: int | None = None,
    ) -> None:
        """Send a room message (`reply_to` already checked: see `MessageChanges.say`)."""
        room = self.joined_room(peer, name)
        author = self.changes.authors.of(peer)

        def committed(message: StoredMessage | None, error: BaseException | None) -> None:
            if message is None:
                log.debug("could not store a message in #%s: %s", name, error)
                _reply_error(peer, request_id, _UNAVAILABLE.format(what="the message"))
            elif request_id is not None:
                peer.send_ack(request_id, message.seq)

        self.log.append(room, peer.nick, text, action, None, committed, reply_to, author)

    def _fan_out(self, room: Room, message: StoredMessage) -> None:
        """The log's subscriber: a committed message goes to the room's members here."""
        if message.file is not None and self.files is not None:
            message = self.files.localized(message)  # its URL on this node
        room.delivered(message)
        room.broadcast(Outgoing(json_line=message.encode(), make=message.to_wire))

    def set_topic(self, peer: Peer, name: str, topic: str, request_id: str | None) -> None:
        room = self.joined_room(peer, name)
        by = peer.nick

        def committed(error: BaseException | None) -> None:
            if error is not None:
                log.debug("could not store topic of #%s: %s", name, error)
                _reply_error(peer, request_id, _UNAVAILABLE.format(what="the topic"))
                return
            room.topic = topic
            room.broadcast(
                Outgoing(TopicChanged(room=name, topic=topic, by=by, ts=format_ts(now_ms())))
            )
            self.presence.topic_changed(name, topic, by)
            if request_id is not None:
                peer.send_ack(request_id)

        self.store.set_topic(name, topic, committed)

    def dm(self, peer: Peer, to: str, text: str, request_id: str | None) -> None:
        """Send a DM: stored (and delivered later if need be) between two accounts."""
        targets = self._online.get(to.lower())
        if peer.account and self.accounts.is_account(to):
            self._stored_dm(peer, self.accounts.names[to.lower()], text, request_id)
            return
        if not targets:
            elsewhere = self.presence.online_elsewhere(to)
            if elsewhere is None:
                raise ChatError(ErrorCode.NO_SUCH_USER, f"nobody called {to} is online")
            sent = DirectMessage(sender=peer.nick, to=elsewhere, text=text, ts=format_ts(now_ms()))
            self.presence.dm_sent(sent, None)
            out = Outgoing(sent)
            for session in self.sessions(peer):
                session.send(out)
            if request_id is not None:
                peer.send_ack(request_id)
            return
        out = Outgoing(
            DirectMessage(sender=peer.nick, to=targets[0].nick, text=text, ts=format_ts(now_ms()))
        )
        for session in dict.fromkeys([*targets, *self.sessions(peer)]):
            session.send(out)
        if request_id is not None:
            peer.send_ack(request_id)

    def _stored_dm(self, peer: Peer, to: str, text: str, request_id: str | None) -> None:
        pair = pair_key(peer.nick, to)
        dm = StoredDm(pair, self.accounts.next_dm_seq(pair), peer.nick, to, text, now_ms())
        pending = to.lower() not in self._online and self.presence.online_elsewhere(to) is None

        def committed(error: BaseException | None) -> None:
            if error is not None:
                log.debug("could not store DM %s/%d: %s", pair, dm.seq, error)
                self.accounts.dm_failed(pair, dm.seq)
                _reply_error(peer, request_id, _UNAVAILABLE.format(what="the DM"))
                return
            targets = self._online.get(to.lower(), [])
            if pending and targets:  # came online meanwhile: hand it over now, once
                self._hand_out(targets[0], [dm], [])
            wire = dm.to_wire()
            out = Outgoing(wire)
            for session in dict.fromkeys([*targets, *self._online.get(peer.nick.lower(), [])]):
                session.send(out)
            self.presence.dm_sent(wire, pair)
            if request_id is not None:
                peer.send_ack(request_id)

        self.store.append_dm(dm, pending, committed)

    def sessions_of(self, nick: str) -> list[Peer]:
        """This node's sessions of `nick` (none when it is not online here)."""
        return list(self._online.get(nick.lower(), []))

    def dm_from_elsewhere(self, dm: DirectMessage, pair: str | None) -> None:
        """A DM another node sent: to this node's sessions of both ends; its seq is used."""
        if pair is not None and dm.seq is not None:
            self.accounts.seen_dm_seq(pair, dm.seq)
        if dm.file is not None and self.files is not None:  # its URL on this node
            dm = dm.model_copy(update={"file": self.files.service.localize(dm.file)})
        out = Outgoing(dm)
        sessions = [*self._online.get(dm.to.lower(), []), *self._online.get(dm.sender.lower(), [])]
        for session in dict.fromkeys(sessions):
            session.send(out)

    async def dm_history(
        self, peer: Peer, with_: str, before: int | None, after: int | None, limit: int
    ) -> tuple[str, DmPage]:
        """A page of `peer`'s stored conversation with `with_` (accounts only)."""
        if not peer.account:
            raise ChatError(ErrorCode.NOT_ALLOWED, "only accounts have stored DMs")
        other = self.accounts.names.get(with_.lower())
        if other is None:
            raise ChatError(ErrorCode.NO_SUCH_USER, f"{with_} is not an account")
        page = await self.store.dm_history(pair_key(peer.nick, other), before, after, limit)
        return other, page

    # -- search ----------------------------------------------------------------

    async def search(
        self,
        peer: Peer,
        query: str,
        room: str | None,
        sender: str | None,
        limit: int,
        before: str | None,
    ) -> SearchPage:
        """Room messages matching `query`, newest first (every room: history needs no join)."""
        if not self.store.supports_search:
            raise ChatError(ErrorCode.NOT_ALLOWED, _NO_SEARCH)
        index = index_of(self.store)
        if index is None:
            raise ChatError(ErrorCode.UNAVAILABLE, "this server's store cannot search")
        if room is not None:
            self.existing_room(room)
        cursor = _cursor(before)
        terms = parse_query(query)
        try:
            return await index.search(
                terms, None if room is None else [room], sender, limit, cursor
            )
        except StoreError as exc:  # a node's index could not catch up with Redis
            raise ChatError(ErrorCode.UNAVAILABLE, "the search index cannot be read now") from exc

    async def search_dms(
        self,
        peer: Peer,
        query: str,
        with_: str,
        sender: str | None,
        limit: int,
        before: str | None,
    ) -> tuple[str, list[StoredDm], bool, SearchCursor | None]:
        """`peer`'s own stored conversation with `with_`, searched by a scan (accounts only)."""
        if not self.store.supports_search:
            raise ChatError(ErrorCode.NOT_ALLOWED, _NO_SEARCH)
        if not peer.account:
            raise ChatError(ErrorCode.NOT_ALLOWED, "only accounts have stored DMs")
        other = self.accounts.names.get(with_.lower())
        if other is None:
            raise ChatError(ErrorCode.NO_SUCH_USER, f"{with_} is not an account")
        cursor = _cursor(before)
        terms = parse_query(query)
        wanted = sender.lower() if sender is not None else None
        pair = pair_key(peer.nick, other)
        hits: list[StoredDm] = []
        bound = cursor.seq if cursor is not None else None
        while len(hits) <= limit:
            page = await self.store.dm_history(pair, bound, None, 500)
            for dm in reversed(page.messages):
                if (wanted is None or dm.sender.lower() == wanted) and matches(terms, dm.text):
                    hits.append(dm)
            if not page.more or not page.messages or not terms:
                break
            bound = page.messages[0].seq
        more = len(hits) > limit
        hits = hits[:limit]
        last = SearchCursor(hits[-1].ts_ms, "@", hits[-1].seq) if more and hits else None
        return other, hits, more, last

    # -- read markers and away ------------------------------------------------

    def marker(self, peer: Peer, target: str) -> int:
        marks = self.accounts.markers.get(peer.nick.lower()) if peer.account else peer.marks
        return (marks or {}).get(target, 0)

    def mark_read(
        self, peer: Peer, room: str | None, with_: str | None, seq: int, request_id: str | None
    ) -> None:
        """Move `peer`'s marker forward (a lower seq is acked and ignored)."""
        if with_ is not None:
            if not peer.account:
                raise ChatError(ErrorCode.NOT_ALLOWED, "only accounts have stored DMs")
            target = "@" + with_.lower()
        else:
            assert room is not None
            target = "#" + self.existing_room(room).name
        marks = (
            self.accounts.markers.setdefault(peer.nick.lower(), {}) if peer.account else peer.marks
        )
        previous = marks.get(target, 0)
        if seq <= previous or not peer.account:
            marks[target] = max(seq, previous)
            if request_id is not None:
                peer.send_ack(request_id)
            return
        marks[target] = seq
        event = Outgoing(ReadMarker(room=room, with_=with_, seq=seq))

        def committed(error: BaseException | None) -> None:
            if error is not None:
                if marks.get(target) == seq:
                    marks[target] = previous
                _reply_error(peer, request_id, _UNAVAILABLE.format(what="the read marker"))
                return
            for session in self.sessions(peer):
                if session is not peer and "read" in session.features:
                    session.send(event)
            if request_id is not None:
                peer.send_ack(request_id)

        self.store.set_marker(peer.nick, target, seq, committed)

    def away_in(self, room: Room) -> dict[str, str]:
        """The members of `room` who are away, with their texts."""
        if self.presence.clustered:
            return {nick: text for nick, text in self._shown_away.values() if room.has_nick(nick)}
        away = {
            sessions[0].nick: text
            for key, text in self._away.items()
            if (sessions := self._online.get(key)) and any(s in room for s in sessions)
        }
        for nick in room.remote:
            text = self.presence.away_elsewhere(nick)
            if text is not None and nick not in away:
                away[nick] = text
        return away

    def set_away(self, peer: Peer, text: str | None) -> None:
        key = peer.nick.lower()
        before = self._away.get(key)
        peer.away = text or None
        self._update_away(key, before, latest=peer.away)

    def _update_away(self, key: str, before: str | None, latest: str | None = None) -> None:
        """Recompute a nick's away state (away only while all its sessions are); tell rooms."""
        sessions = self._online.get(key, [])
        texts = [s.away for s in sessions]
        after = None
        if texts and None not in texts:
            after = latest or before or texts[-1]
        if after is None:
            self._away.pop(key, None)
        else:
            self._away[key] = after
        if self.presence.clustered and sessions:
            if after != before:
                self.presence.away_changed(sessions[0].nick, after)
            self.away_shown(sessions[0].nick)  # a first session here changes it too
            return
        if after == before or not sessions:
            return
        self.presence.away_changed(sessions[0].nick, after)
        out = Outgoing(AwayChanged(nick=sessions[0].nick, text=after))
        recipients: dict[Member, None] = {}
        for session in sessions:
            recipients.update(dict.fromkeys(self._sharing_rooms_with(session)))
        for member in recipients:
            if "away" in getattr(member, "features", ()):
                member.send(out)

    def away_shown(self, nick: str) -> None:
        """On a node: `nick`'s away state with its sessions on every node combined (away
        only while all are), told to the members here sharing a room with it when it
        changes. Called on every local change, and on every away, online and offline
        event from another node. A nick that went offline everywhere is dropped quietly,
        as the last session of one server is."""
        key = nick.lower()
        sessions = self._online.get(key, [])
        after = self.presence.combine_away(nick, self._away.get(key), bool(sessions))
        name = sessions[0].nick if sessions else self.presence.online_elsewhere(nick)
        shown = self._shown_away.get(key)
        if after is None or name is None:
            self._shown_away.pop(key, None)
        else:
            self._shown_away[key] = (name, after)
        if name is None or after == (shown[1] if shown is not None else None):
            return
        out = Outgoing(AwayChanged(nick=name, text=after))
        recipients: dict[Member, None] = {}
        for session in sessions:
            recipients.update(dict.fromkeys(self._sharing_rooms_with(session)))
        for room in self.rooms:
            if name in room.remote:
                room.seal()  # later broadcasts must not overtake this event
                recipients.update(dict.fromkeys(room.members))
        for member in recipients:
            if "away" in getattr(member, "features", ()):
                member.send(out)

    def typing(self, peer: Peer, room_name: str | None, to: str | None, state: str) -> None:
        """Forward a typing state to a room's other members, or to a user, granted `typing`.

        Never stored and never sent back to the sender; throttling is the caller's.
        """
        if room_name is not None:
            room = self.joined_room(peer, room_name)
            targets: Iterable[Member] = room.members
            notice = TypingNotice(room=room.name, sender=peer.nick, state=state)
            if room.remote:
                self.presence.typing(notice, None)
        else:
            sessions = self._online.get((to or "").lower())
            if not sessions:
                elsewhere = self.presence.online_elsewhere(to or "")
                if elsewhere is None:
                    raise ChatError(ErrorCode.NO_SUCH_USER, f"nobody called {to} is online")
                self.presence.typing(TypingNotice(sender=peer.nick, state=state), elsewhere)
                return
            targets = tuple(sessions)
            notice = TypingNotice(sender=peer.nick, state=state)
        self.typing_from_elsewhere(notice, targets)

    def typing_from_elsewhere(self, notice: TypingNotice, targets: Iterable[Member]) -> None:
        """Send a typing notice to `targets` granted `typing`, never to the sender's sessions."""
        out: Outgoing | None = None
        sender = notice.sender.lower()
        for member in targets:
            # Never to the sender's own sessions (an account's other terminals).
            if member.nick.lower() != sender and FEATURE_TYPING in member.features:
                out = out or Outgoing(notice)
                member.send(out)

    # -- files ----------------------------------------------------------------

    def check_can_share(self, peer: Peer, room: str | None, to: str | None) -> None:
        """Refuse (`not_in_room`, `no_such_user`) unless `peer` may share a file there."""
        if room is not None:
            self.joined_room(peer, room)
        elif (
            to is not None
            and not self._online.get(to.lower())
            and self.presence.online_elsewhere(to) is None
        ):
            raise ChatError(ErrorCode.NO_SUCH_USER, f"nobody called {to} is online")

    def post_file(
        self,
        sender: str,
        room: str | None,
        to: str | None,
        text: str,
        file: FileInfo,
        done: Callable[[int | None, BaseException | None], None],
    ) -> None:
        """Share a stored file: a room `message` once committed, or a `dm` to the pair."""
        if room is None:
            assert to is not None
            self._dm_file(sender, to, text, file)
            done(None, None)
            return
        target = self.existing_room(room)
        author = f"account:{sender.lower()}" if self.accounts.is_account(sender) else ""

        def committed(message: StoredMessage | None, error: BaseException | None) -> None:
            if message is None:
                log.debug("could not store a file message in #%s: %s", room, error)
                done(None, error)
                return
            # The files index links the message in the same loop pass as its fan-out,
            # before any read can see it.
            done(message.seq, None)

        self.log.append(target, sender, text, False, file, committed, None, author)

    def _dm_file(self, sender: str, to: str, text: str, file: FileInfo) -> None:
        targets = self._online.get(to.lower())
        if not targets:
            elsewhere = self.presence.online_elsewhere(to)  # on another node: as a live DM
            if elsewhere is None:
                raise ChatError(ErrorCode.NO_SUCH_USER, f"{to} went offline before the file was in")
            sent = DirectMessage(
                sender=sender, to=elsewhere, text=text, ts=format_ts(now_ms()), file=file
            )
            self.presence.dm_sent(sent, None)
            out = Outgoing(sent)
            for session in self._online.get(sender.lower(), []):
                session.send(out)
            return
        out = Outgoing(
            DirectMessage(
                sender=sender, to=targets[0].nick, text=text, ts=format_ts(now_ms()), file=file
            )
        )
        # every session of both (a file DM is not a stored DM: it has no seq)
        for session in dict.fromkeys([*targets, *self._online.get(sender.lower(), [])]):
            session.send(out)

    def with_files(self, messages: list[StoredMessage]) -> list[StoredMessage]:
        """Messages read back, with the files they share as those stand now (`expired`).

        A deleted message shares nothing any more.
        """
        if self.files is None:
            return messages
        attached = self.files.with_files(messages)
        return [m if m.deleted else a for m, a in zip(messages, attached, strict=True)]

    async def changed_since(self, room: Room, rev: int, limit: int) -> Result:
        """`changed_since`: messages changed after `rev`, in rev order, each once.

        The page joins the live stream the way a resuming client needs: it stops
        before the first message whose latest change is committed but not yet
        broadcast (its event follows; the next page lists it), and says `more`
        when anything was broadcast while the store was read (the read may not
        show it, and a joiner was not a member yet). So paging on from the last
        rev of the pages misses no change and the live events that follow are
        all newer than it.
        """
        for _ in range(3):
            before = room.delivered_rev
            page = await self.store.changed_since(room.name, rev, limit)
            delivered = room.delivered_rev
            messages: list[StoredMessage] = []
            for message in page.messages:
                if message.rev > delivered:
                    break
                messages.append(message)
            unsure = delivered != before or len(messages) < len(page.messages)
            if messages or not unsure:
                return Result(room, messages, page.more or unsure)
            await self._synced()  # nothing safe to show yet: let the commits land
        return Result(room, [], True)

    def summaries(self) -> list[RoomSummary]:
        return [
            RoomSummary(room=room.name, topic=room.topic, members=len(room.nicks))
            for room in sorted(self.rooms, key=lambda r: r.name)
            if not room.creating
        ]

    def history_around(self, name: str, seq: int, limit: int) -> Awaitable[Result]:
        """`history` `around`: the `limit` messages centred on `seq`, which must exist."""
        room = self.existing_room(name)
        if not 1 <= seq <= room.delivered_seq:
            raise ChatError(ErrorCode.NO_SUCH_MESSAGE, f"#{name} has no message {seq}")
        return self._around_from_store(room, seq, limit)

    async def _around_from_store(self, room: Room, seq: int, limit: int) -> Result:
        try:
            return await self._around_from_log(room, seq, limit)
        except StoreError as exc:
            raise ChatError(ErrorCode.UNAVAILABLE, _UNREADABLE) from exc

    async def _around_from_log(self, room: Room, seq: int, limit: int) -> Result:
        older = await self.log.before(room.name, seq, (limit - 1) // 2)
        newer = await self.log.after(room.name, seq - 1, limit - len(older.messages))
        delivered = room.delivered_seq
        tail = [m for m in newer.messages if m.seq <= delivered]
        later = newer.more or len(tail) < len(newer.messages)
        return Result(room, older.messages + tail, more=older.more or later)

    def history(
        self, name: str, before: int | None, after: int | None, limit: int
    ) -> Result | Awaitable[Result]:
        room = self.existing_room(name)
        return self._history_from_store(room, before, after, limit)

    async def _history_from_store(
        self, room: Room, before: int | None, after: int | None, limit: int
    ) -> Result:
        try:
            return await self._history_from_log(room, before, after, limit)
        except StoreError as exc:
            raise ChatError(ErrorCode.UNAVAILABLE, _UNREADABLE) from exc

    async def _history_from_log(
        self, room: Room, before: int | None, after: int | None, limit: int
    ) -> Result:
        if after is not None:
            page = await self.log.after(room.name, after, limit)
        elif before is not None:
            page = await self.log.before(room.name, before, limit)
        else:
            page = await self.log.latest(room.name, limit)
        delivered = room.delivered_seq
        messages = [m for m in page.messages if m.seq <= delivered]
        trimmed = len(messages) < len(page.messages)
        if after is None and before is None and trimmed:
            # Latest page: slide back to the latest delivered ones.
            page = await self.log.before(room.name, delivered + 1, limit)
            messages, trimmed = page.messages, False
        more = page.more or (trimmed and after is not None)
        return Result(room, messages, more)


def _unused(room: Room) -> bool:
    return not (room.members or room.assigned_seq or room.topic or room.creating)


def _settle(room: Room, page: HistoryPage, since: int | None) -> list[StoredMessage] | None:
    """Join a store page to the live stream: nothing undelivered, no gap up to the present."""
    delivered = room.delivered_seq
    messages = [m for m in page.messages if m.seq <= delivered]
    if since is not None and page.more:
        return messages
    last = messages[-1].seq if messages else (since or 0)
    if not messages and since is None and page.messages:
        last = page.messages[0].seq - 1
    gap = room.tail_after(last)
    if gap is None:
        return None
    return messages + gap


def _ignore_error(_error: BaseException | None) -> None:
    return None


def _cursor(before: str | None) -> SearchCursor | None:
    if before is None:
        return None
    cursor = SearchCursor.decode(before)
    if cursor is None:
        raise ChatError(ErrorCode.INVALID_MESSAGE, "field 'before': not a cursor of this server")
    return cursor


def _reply_error(peer: Peer, request_id: str | None, message: str) -> None:
    error: BaseModel = ErrorReply(code=ErrorCode.UNAVAILABLE, message=message, re=request_id)
    peer.send_message(error)
