"""Replies, edits, deletes and reactions: changes of stored room messages.

Each change takes the room's next `rev` on the loop, goes to the store through
the same ordered writer as new messages (`Store.update`), and is broadcast once
committed, so every member sees changes in rev order, after the message they
change. The latest state of a message comes from memory when it can (a change
in flight, the room's tail), else from the store; `Room.states` keeps changes in
flight so two changes of one message never start from the same old state.

Events go to the members granted their feature (`deleted` to those granted
`edit`); text-mode connections are granted `edit` and `react` and see readable
lines. The broadcast seals the room's batch first, so a later message of the
room cannot overtake the event.
"""

from __future__ import annotations

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
    format_ts,
    now_ms,
)
from protocol.features import Feature
from protocol.limits import MAX_REACTIONS

from .errors import ChatError
from .outbox import Outgoing
from .policy import Authors, may_delete, may_edit
from .rooms import Room
from .store import Store, StoredMessage

if TYPE_CHECKING:
    from .files.sharing import FileSharing

__all__ = ["MessageChanges"]

log = logging.getLogger(__name__)

Pending = Awaitable[None] | None
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

    # -- reading a message's current state -------------------------------------------

    async def current(self, room: Room, seq: int) -> StoredMessage | None:
        """Message `seq` of `room` as it stands (changes in flight included), or None."""
        known = room.known(seq)
        if known is not None or not 1 <= seq <= room.delivered_seq:
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

    def edit(self, peer: Peer, name: str, seq: int, text: str, request_id: str | None) -> Pending:
        room = self._hub.joined_room(peer, name)

        def edit(message: StoredMessage) -> None:
            if not may_edit(self.authors.of(peer), message):
                raise ChatError(ErrorCode.NOT_ALLOWED, "only its author may edit a message")
            ts = now_ms()
            changed = message.edit(text, room.next_rev(), ts)
            event = MessageEdited(
                room=name, seq=seq, text=text, by=peer.nick, ts=format_ts(ts), rev=changed.rev
            )
            self._commit(peer, room, message, changed, event, Feature.EDIT, request_id)

        return self._with_message(peer, room, seq, request_id, edit)

    def delete(self, peer: Peer, name: str, seq: int, request_id: str | None) -> Pending:
        room = self._hub.joined_room(peer, name)

        def delete(message: StoredMessage) -> None:
            author = self.authors.of(peer)
            if not may_delete(author, message, self._hub.is_op(peer, room.name)):
                raise ChatError(
                    ErrorCode.NOT_ALLOWED, "only its author or an op may delete a message"
                )
            if not may_edit(author, message):
                log.info("%s deleted message %d of %s in #%s", peer.nick, seq, message.sender, name)
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

        def react(message: StoredMessage) -> None:
            if not remove and len(message.reactions) >= MAX_REACTIONS:
                if emoji not in dict(message.reactions):
                    raise ChatError(
                        ErrorCode.LIMIT_REACHED,
                        f"a message has at most {MAX_REACTIONS} different reactions",
                    )
            changed = message.react(emoji, peer.nick, remove, room.assigned_rev + 1)
            if changed is None:  # already there, or not there to remove: no change, no rev
                if request_id is not None:
                    peer.send_ack(request_id)
                return
            room.next_rev()
            event = ReactionChanged(
                room=name,
                seq=seq,
                emoji=emoji,
                nick=peer.nick,
                removed=remove,
                ts=format_ts(now_ms()),
                rev=changed.rev,
            )
            self._commit(peer, room, message, changed, event, Feature.REACT, request_id)

        return self._with_message(peer, room, seq, request_id, react)

    # -- committing and broadcasting -------------------------------------------------

    def _commit(
        self,
        peer: Peer,
        room: Room,
        before: StoredMessage,
        changed: StoredMessage,
        event: BaseModel,
        feature: str,
        request_id: str | None,
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
                    files.service.delete_for_message(room.name, changed.seq)
            room.seal()  # later broadcasts of the room must not overtake this event
            out: Outgoing | None = None
            for member in room.members:
                if feature in member.features:
                    out = out or Outgoing(event)
                    member.send(out)
            if request_id is not None:
                peer.send_ack(request_id)

        hub.store.update(changed, committed)


def _live(room: Room, seq: int, message: StoredMessage | None) -> StoredMessage:
    if message is None or message.deleted:
        raise ChatError(ErrorCode.NO_SUCH_MESSAGE, f"#{room.name} has no message {seq}")
    return message
