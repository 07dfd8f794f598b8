"""Replies, edits, deletes and reactions: changes of stored room messages.

Each change takes the room's next `rev` on the loop, goes to the store through
the same ordered writer as new messages (`Store.update`), and is broadcast once
committed, so every member sees changes in rev order, after the message they
change. The latest state of a message comes from memory when it can (a change
in flight, the room's tail), else from the store; `Room.states` keeps changes in
flight so two changes of one message never start from the same old state.

Events go to the members granted their feature (`deleted` to those granted
`edit`); text-mode connections are granted `edit` and `react` and see readable
lines. When every member has the feature the event joins the room's batch like a
message; otherwise the batch is sealed first, so a later message of the room cannot
overtake the event (`announce`).

On `chat-server --redis` nodes the log has a `ChangeLog` (chat_server/redis_changes.py):
the same rules are checked here against the message as read, the rev is taken in
Redis, a change computed from a state that is no longer the message's is retried
from a fresh read, and the event reaches the members of every node through each
node's reader (`broadcast`), in rev order with the messages.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from protocol import (
    ErrorCode,
    ErrorReply,
    MessageDeleted,
    MessageEdited,
    ReactionChanged,
    encode_reaction,
    format_ts,
    now_ms,
)
from protocol.features import Feature
from protocol.limits import MAX_REACTIONS

from .errors import ChatError
from .eventlog import Change, ChangeLog, MessageLog
from .outbox import Outgoing
from .policy import Authors, may_delete, may_edit
from .rooms import Room
from .store import Store, StoredMessage, StoreError

if TYPE_CHECKING:
    from .files.sharing import FileSharing

__all__ = ["MessageChanges"]

log = logging.getLogger(__name__)

Pending = Awaitable[None] | None
UNSUPPORTED = "edits, deletes and reactions are not supported on this server"
_RETRIES = 8  # fresh reads of a message other nodes keep changing, before giving up
_UNAVAILABLE = "the history store cannot take writes now, so the change was not stored; try again"


class Peer(Protocol):
    """The connection asking for a change (the hub's `Peer`, as far as changes need it)."""

    nick: str
    account: bool
    closed: bool
    features: frozenset[str]

    def send_message(self, message: BaseModel) -> None: ...

    def send_ack(self, request_id: str, seq: int | None = None) -> None: ...


class Hub(Protocol):
    """What changes need of the `ChatHub` (a protocol: the hub imports this module)."""

    store: Store
    log: MessageLog
    files: FileSharing | None

    def is_op(self, peer: Any, room: str) -> bool:
        """Is `peer` an op of `room` (a server admin is one everywhere)?"""
        ...

    def joined_room(self, peer: Any, name: str) -> Room: ...

    def say(
        self,
        peer: Any,
        name: str,
        text: str,
        action: bool,
        request_id: str | None,
        reply_to: int | None = None,
    ) -> None: ...


class MessageChanges:
    """Edits, deletes and reactions of one server's room messages."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self.authors = Authors()
        # Several nodes: changes numbered where the log numbers (None: on the loop, here).
        self.shared: ChangeLog | None = hub.log.changes
        if self.shared is not None:
            self.shared.broadcast = self._broadcast

    # -- reading a message's current state -------------------------------------------

    async def current(self, room: Room, seq: int) -> StoredMessage | None:
        """Message `seq` of `room` as it stands (changes in flight included), or None."""
        known = room.known(seq)
        # On nodes a message acked on another node may not have reached this one's reader
        # yet: it is read from Redis like any message memory does not have.
        ahead = seq > room.delivered_seq and self.shared is None
        if known is not None or seq < 1 or ahead:
            return known
        room.reads += 1
        try:
            found = await self._hub.store.message(room.name, seq)
            newer = room.known(seq)  # a change made while the store was read
        finally:
            room.read_done()
        return newer if newer is not None else found

    def _with_message(
        self,
        peer: Peer,
        room: Room,
        seq: int,
        request_id: str | None,
        act: Callable[[StoredMessage], None],
    ) -> Pending:
        """Run `act` on the live message `seq` now if memory has it, else after a store read."""
        known = room.known(seq)
        if known is not None:
            act(_live(room, seq, known))
            return None
        return self._later(peer, room, seq, request_id, act)

    async def _later(
        self,
        peer: Peer,
        room: Room,
        seq: int,
        request_id: str | None,
        act: Callable[[StoredMessage], None],
    ) -> None:
        try:
            message = await self.current(room, seq)
            if peer.closed:
                return
            act(_live(room, seq, message))
        except ChatError as exc:
            peer.send_message(ErrorReply(code=exc.code, message=exc.message, re=request_id))

    # -- the requests ----------------------------------------------------------------

    def say(
        self,
        peer: Peer,
        name: str,
        text: str,
        action: bool,
        reply_to: int | None,
        request_id: str | None,
    ) -> Pending:
        """`say` with `reply_to`: the answered message must exist and not be deleted."""
        hub = self._hub
        room = hub.joined_room(peer, name)
        if reply_to is None:
            hub.say(peer, name, text, action, request_id)
            return None

        def send(_original: StoredMessage) -> None:
            if peer in room:
                hub.say(peer, name, text, action, request_id, reply_to)
            else:
                raise ChatError(ErrorCode.NOT_IN_ROOM, f"you are not in #{name}")

        return self._with_message(peer, room, reply_to, request_id, send)

    def _refuse_unless_supported(self) -> None:
        if not self._hub.store.supports_changes:
            raise ChatError(ErrorCode.NOT_ALLOWED, UNSUPPORTED)

    def edit(self, peer: Peer, name: str, seq: int, text: str, request_id: str | None) -> Pending:
        room = self._hub.joined_room(peer, name)
        self._refuse_unless_supported()

        if self.shared is not None:

            def edited(message: StoredMessage) -> tuple[StoredMessage, Change]:
                self._check_edit(peer, message)
                ts = now_ms()
                return message.edit(text, 0, ts), Change("edit", peer.nick, ts)

            return self._shared_change(peer, room, seq, request_id, edited)

        def edit(message: StoredMessage) -> None:
            self._check_edit(peer, message)
            ts = now_ms()
            changed = message.edit(text, room.next_rev(), ts)
            event = MessageEdited(
                room=name, seq=seq, text=text, by=peer.nick, ts=format_ts(ts), rev=changed.rev
            )
            self._commit(peer, room, message, changed, event, Feature.EDIT, request_id)

        return self._with_message(peer, room, seq, request_id, edit)

    def delete(self, peer: Peer, name: str, seq: int, request_id: str | None) -> Pending:
        room = self._hub.joined_room(peer, name)
        self._refuse_unless_supported()

        if self.shared is not None:

            def deleted(message: StoredMessage) -> tuple[StoredMessage, Change]:
                self._check_delete(peer, room, message)
                return message.erase(0), Change("delete", peer.nick, now_ms())

            return self._shared_change(peer, room, seq, request_id, deleted)

        def delete(message: StoredMessage) -> None:
            self._check_delete(peer, room, message)
            changed = message.erase(room.next_rev())
            event = MessageDeleted(
                room=name, seq=seq, by=peer.nick, ts=format_ts(now_ms()), rev=changed.rev
            )
            self._commit(peer, room, message, changed, event, Feature.EDIT, request_id)

        return self._with_message(peer, room, seq, request_id, delete)

    def react(
        self,
        peer: Peer,
        name: str,
        seq: int,
        emoji: str,
        remove: bool,
        request_id: str | None,
    ) -> Pending:
        room = self._hub.joined_room(peer, name)
        self._refuse_unless_supported()

        if self.shared is not None:

            def reacted(message: StoredMessage) -> tuple[StoredMessage, Change] | None:
                _check_reaction_limit(message, emoji, remove)
                changed = message.react(emoji, peer.nick, remove, 0)
                if changed is None:  # already there, or not there to remove: no change
                    return None
                return changed, Change("react", peer.nick, now_ms(), emoji, remove)

            return self._shared_change(peer, room, seq, request_id, reacted)

        def react(message: StoredMessage) -> None:
            _check_reaction_limit(message, emoji, remove)
            changed = message.react(emoji, peer.nick, remove, room.assigned_rev + 1)
            if changed is None:  # already there, or not there to remove: no change, no rev
                if request_id is not None:
                    peer.send_ack(request_id)
                return
            room.next_rev()
            nick, ts, rev = peer.nick, format_ts(now_ms()), changed.rev
            event = Outgoing(
                json_line=encode_reaction(name, seq, emoji, nick, remove, ts, rev),
                make=lambda: ReactionChanged(
                    room=name, seq=seq, emoji=emoji, nick=nick, removed=remove, ts=ts, rev=rev
                ),
            )
            reaction = (emoji, nick, remove)
            self._commit(peer, room, message, changed, event, Feature.REACT, request_id, reaction)

        return self._with_message(peer, room, seq, request_id, react)

    # -- the rules ---------------------------------------------------------------------

    def _check_edit(self, peer: Peer, message: StoredMessage) -> None:
        if not may_edit(self.authors.of(peer), message):
            raise ChatError(ErrorCode.NOT_ALLOWED, "only its author may edit a message")

    def _check_delete(self, peer: Peer, room: Room, message: StoredMessage) -> None:
        author = self.authors.of(peer)
        if not may_delete(author, message, self._hub.is_op(peer, room.name)):
            raise ChatError(ErrorCode.NOT_ALLOWED, "only its author or an op may delete a message")
        if not may_edit(author, message):
            log.info(
                "%s deleted message %d of %s in #%s",
                peer.nick,
                message.seq,
                message.sender,
                room.name,
            )

    # -- several nodes: the rev taken where the log numbers ------------------------------

    async def _shared_change(
        self,
        peer: Peer,
        room: Room,
        seq: int,
        request_id: str | None,
        compute: Callable[[StoredMessage], tuple[StoredMessage, Change] | None],
    ) -> None:
        """Compute the change from the message as read, store it unless the message changed
        meanwhile (then read it again and compute again), ack once broadcast here."""
        shared = self.shared
        assert shared is not None
        loop = asyncio.get_running_loop()
        try:
            try:
                message = await self.current(room, seq)
                for _ in range(_RETRIES):
                    if peer.closed:
                        return
                    live = _live(room, seq, message)
                    made = compute(live)
                    if made is None:
                        if request_id is not None:
                            peer.send_ack(request_id)
                        return
                    outcome: asyncio.Future[tuple[bool, BaseException | None]]
                    outcome = loop.create_future()

                    shared.change(room, live, made[0], made[1], _settler(outcome))
                    ok, error = await outcome
                    if error is not None:
                        log.debug("could not store a change of %s/%d: %s", room.name, seq, error)
                        raise ChatError(ErrorCode.UNAVAILABLE, _UNAVAILABLE)
                    if ok:
                        if request_id is not None and not peer.closed:
                            peer.send_ack(request_id)
                        return
                    message = await self._hub.store.message(room.name, seq)  # changed meanwhile
            except StoreError as exc:
                log.debug("could not read %s/%d: %s", room.name, seq, exc)
                raise ChatError(ErrorCode.UNAVAILABLE, _UNAVAILABLE) from exc
            raise ChatError(ErrorCode.UNAVAILABLE, "the message kept changing; try again")
        except ChatError as exc:
            peer.send_message(ErrorReply(code=exc.code, message=exc.message, re=request_id))

    def _broadcast(
        self, room: Room, message: StoredMessage, event: BaseModel | None, feature: str
    ) -> None:
        """A change committed on any node, from this node's reader: to the members here."""
        if message.deleted:  # a shared file goes with its message
            files = self._hub.files
            if files is not None:
                files.service.forget_message(room.name, message.seq)
        if event is not None:
            announce(room, event, feature)

    # -- committing and broadcasting -------------------------------------------------

    def _commit(
        self,
        peer: Peer,
        room: Room,
        before: StoredMessage,
        changed: StoredMessage,
        event: BaseModel | Outgoing,
        feature: str,
        request_id: str | None,
        reaction: tuple[str, str, bool] | None = None,  # (emoji, nick, removed): its only change
    ) -> None:
        room.changing(changed)
        hub = self._hub

        def committed(error: BaseException | None) -> None:
            if error is not None:
                log.debug("could not store a change of %s/%d: %s", room.name, changed.seq, error)
                room.change_failed(changed, before)
                peer.send_message(
                    ErrorReply(code=ErrorCode.UNAVAILABLE, message=_UNAVAILABLE, re=request_id)
                )
                return
            room.changed(changed)
            if changed.deleted:  # a shared file goes with its message
                files = hub.files
                if files is not None:
                    files.service.forget_message(room.name, changed.seq)
            announce(room, event, feature)
            if request_id is not None:
                peer.send_ack(request_id)

        if reaction is None:
            hub.store.update(changed, committed)
        else:
            hub.store.change_reaction(changed, *reaction, committed)


def announce(room: Room, event: BaseModel | Outgoing, feature: str) -> None:
    """`event` to the members of `room` granted `feature`, in order with its messages.

    When every member has the feature (the usual case) it joins the room's batch like
    a message: one shared item, the batch goes on. Otherwise the batch is sealed (a
    later message must not overtake the event) and the event goes to each member that
    has the feature on its own.
    """
    out = event if isinstance(event, Outgoing) else Outgoing(event)
    if room.all_granted(feature):
        room.broadcast(out)
        return
    room.seal()
    for member in room.members:
        if feature in member.features:
            member.send(out)


def _settler(
    outcome: asyncio.Future[tuple[bool, BaseException | None]],
) -> Callable[[bool, BaseException | None], None]:
    def settle(ok: bool, error: BaseException | None) -> None:
        if not outcome.done():
            outcome.set_result((ok, error))

    return settle


def _check_reaction_limit(message: StoredMessage, emoji: str, remove: bool) -> None:
    if not remove and len(message.reactions) >= MAX_REACTIONS:
        if emoji not in dict(message.reactions):
            raise ChatError(
                ErrorCode.LIMIT_REACHED,
                f"a message has at most {MAX_REACTIONS} different reactions",
            )


def _live(room: Room, seq: int, message: StoredMessage | None) -> StoredMessage:
    if message is None or message.deleted:
        raise ChatError(ErrorCode.NO_SUCH_MESSAGE, f"#{room.name} has no message {seq}")
    return message
