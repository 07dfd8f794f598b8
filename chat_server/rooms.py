"""Rooms and their members, with no sockets: the broadcast core.

A `Room` knows its members (in join order), its topic, the seq counters and a
tail of recent messages. `assigned_seq` is the last seq handed to a
message; `delivered_seq` the last one committed and broadcast (they differ
while the store is committing). The tail serves joins and history from memory
when it can, and fills the gap between a store read and the live stream.

The tails of all rooms together are bounded in bytes (`TailBudget`): past the
budget the oldest delivered messages, whichever room they are in, leave memory
(they stay in the store). A room that cannot answer from its tail reads the store.
"""

from __future__ import annotations

import sys
from bisect import bisect_right
from collections import deque
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Protocol

from .outbox import Flusher, Outgoing, RoomBatch
from .store import RoomRecord, StoredMessage

if TYPE_CHECKING:
    import asyncio

    from pydantic import BaseModel

__all__ = ["Member", "Room", "RoomRegistry", "TailBudget"]

MESSAGE_OVERHEAD = 200  # bytes a kept message costs besides its text (objects, deques)
_sizeof = sys.getsizeof


class Member(Protocol):
    """What a room needs of a connection."""

    nick: str
    features: frozenset[str]  # version-2 features granted in `welcome`

    def send(self, out: Outgoing) -> None: ...

    def send_batch(self, batch: RoomBatch) -> None: ...

    def send_message(self, message: BaseModel) -> None: ...


class Room:
    """One chat room."""

    __slots__ = (
        "_flusher",
        "_granted",
        "_nicks",
        "_tails",
        "assigned_rev",
        "assigned_seq",
        "batch",
        "creating",
        "delivered_rev",
        "delivered_seq",
        "members",
        "name",
        "reads",
        "remote",
        "states",
        "tail",
        "topic",
        "waiters",
    )

    def __init__(
        self,
        name: str,
        flusher: Flusher,
        topic: str = "",
        last_seq: int = 0,
        tails: TailBudget | None = None,
        last_rev: int = 0,
    ) -> None:
        self.name = name
        self.topic = topic
        self.assigned_seq = last_seq
        self.delivered_seq = last_seq
        # The change counter: every new message and every change takes the next rev.
        self.assigned_rev = self.delivered_rev = max(last_rev, last_seq)
        # The latest state of messages with a change in flight (or committed while a
        # store read that may predate it is out): seq -> (state, committed).
        self.states: dict[int, tuple[StoredMessage, bool]] = {}
        self.reads = 0  # message reads from the store in flight (see `states`)
        self.members: dict[Member, None] = {}
        # Members on the other nodes of a cluster: nick -> the nodes it is in the room from.
        self.remote: dict[str, set[str]] = {}
        self.tail: deque[StoredMessage] = deque()
        self._tails = tails if tails is not None else TailBudget(1 << 20)
        self.batch: RoomBatch | None = None
        self.creating = False  # the store has not confirmed this new room yet
        self.waiters: list[asyncio.Future[bool]] = []  # joiners waiting for that
        self._flusher = flusher
        self._nicks: dict[str, None] | None = None  # members' nicks in join order, when known
        # feature -> whether every member was granted it, until the members change (a
        # member's features are fixed at registration, before it can join).
        self._granted: dict[str, bool] = {}

    def __contains__(self, member: object) -> bool:
        return member in self.members

    @property
    def nicks(self) -> list[str]:
        """Member nicks in join order, each once (an account may be in with several sessions).

        Members on other nodes of a cluster (`remote`) come after this node's. A new list
        each time; the nicks behind it are kept between calls, so a room of 15,000 is not
        walked again for every join.
        """
        return list(self._nick_index())

    def has_nick(self, nick: str) -> bool:
        return nick in self._nick_index()

    def _nick_index(self) -> dict[str, None]:
        nicks = self._nicks
        if nicks is None:
            nicks = self._nicks = dict.fromkeys([member.nick for member in self.members])
            if self.remote:
                for nick in self.remote:
                    nicks.setdefault(nick, None)
        return nicks

    def remote_add(self, nick: str, node: str) -> None:
        """`nick` is in the room from `node` (another node of the cluster)."""
        self.remote.setdefault(nick, set()).add(node)
        if self._nicks is not None:
            self._nicks.setdefault(nick, None)

    def remote_remove(self, nick: str, node: str) -> bool:
        """`nick` left the room on `node`; True when it is on no other node any more."""
        nodes = self.remote.get(nick)
        if nodes is None or node not in nodes:
            return False
        nodes.discard(node)
        if nodes:
            return False
        del self.remote[nick]
        self._nicks = None  # a local session may hold the same nick: read them again
        return True

    def add(self, member: Member) -> None:
        self.seal()
        self.members[member] = None
        self._granted.clear()
        if self._nicks is not None:
            self._nicks[member.nick] = None  # a nick already in keeps its place

    def remove(self, member: Member) -> None:
        self.seal()
        self.members.pop(member, None)
        self._granted.clear()
        self._nicks = None  # another session may hold the same nick: read them again

    def all_granted(self, feature: str) -> bool:
        """Whether every member here was granted `feature` (kept until the members change)."""
        granted = self._granted.get(feature)
        if granted is None:
            granted = self._granted[feature] = all(
                feature in member.features for member in self.members
            )
        return granted

    def nick_changed(self) -> None:
        """A member's nick changed: read the nicks again."""
        self._nicks = None

    def seal(self) -> None:
        """Start a new batch for the next broadcast (after a membership change or a direct send
        that must not be overtaken by later broadcasts)."""
        self.batch = None

    def broadcast(self, out: Outgoing) -> None:
        """Queue `out` for every member, in order with the room's other broadcasts."""
        batch = self.batch
        if batch is None or batch.sealed:
            batch = self.batch = RoomBatch()
            self._flusher.batch_opened(batch)
            for member in self.members:
                member.send_batch(batch)
        batch.items.append(out)

    def next_seq(self) -> int:
        self.assigned_seq += 1
        return self.assigned_seq

    def next_rev(self) -> int:
        self.assigned_rev += 1
        return self.assigned_rev

    def delivered(self, message: StoredMessage) -> None:
        """Record that `message` was committed and is being broadcast."""
        self.delivered_seq = message.seq
        self.delivered_rev = message.rev
        self.tail.append(message)
        self._tails.kept(self, message)

    def known(self, seq: int) -> StoredMessage | None:
        """The latest state of message `seq` if memory has it (a change in flight, the tail)."""
        state = self.states.get(seq)
        if state is not None:
            return state[0]
        index = self._tail_index(seq)
        return None if index is None else self.tail[index]

    def _tail_index(self, seq: int) -> int | None:
        """Where message `seq` is in the tail, if it is there.

        The tail holds delivered messages in seq order without gaps (seqs are handed out
        gap-free and delivered in order), so the place is `seq` minus the first seq: an
        index near the end, the usual case, is O(1) in a deque where a bisection walks
        its blocks. The bisection stays for a tail that breaks that rule.
        """
        tail = self.tail
        if not tail or tail[0].seq > seq:
            return None
        index = seq - tail[0].seq
        if index < len(tail) and tail[index].seq == seq:
            return index
        index = bisect_right(tail, seq, key=_seq) - 1
        return index if index >= 0 and tail[index].seq == seq else None

    def changing(self, message: StoredMessage) -> None:
        """A change of `message` took its rev and went to the store."""
        self.states[message.seq] = (message, False)

    def changed(self, message: StoredMessage) -> None:
        """The change `message` was committed and is being broadcast."""
        self.delivered_rev = message.rev
        index = self._tail_index(message.seq)
        if index is not None:
            self.tail[index] = message
        state = self.states.get(message.seq)
        if state is not None and state[0] is message:
            if self.reads:
                self.states[message.seq] = (message, True)
            else:
                del self.states[message.seq]

    def change_failed(self, message: StoredMessage, before: StoredMessage) -> None:
        """The change `message` was not stored: its rev is handed out again."""
        if message.rev == self.delivered_rev + 1 and self.assigned_rev >= message.rev:
            self.assigned_rev = self.delivered_rev
        state = self.states.get(message.seq)
        if state is not None and state[0] is message:
            del self.states[message.seq]

    def read_done(self) -> None:
        """A store read of messages finished: forget committed states nobody needs now."""
        self.reads -= 1
        if not self.reads and self.states:
            self.states = {seq: s for seq, s in self.states.items() if not s[1]}

    def commit_failed(self, seq: int, rev: int = 0) -> None:
        """The message given `seq` was not stored: hand that seq out again.

        The store refuses every later message of the room until one follows the last
        stored seq, so the messages already given seqs after it fail too; only the
        first failure (the one right after the last delivered seq) rewinds.
        """
        if seq == self.delivered_seq + 1 and self.assigned_seq >= seq:
            self.assigned_seq = self.delivered_seq
        if rev == self.delivered_rev + 1 and self.assigned_rev >= rev:
            self.assigned_rev = self.delivered_rev

    def tail_after(self, seq: int) -> list[StoredMessage] | None:
        """Delivered messages with a seq above `seq`, or None when the tail no longer has them."""
        if seq >= self.delivered_seq:
            return []
        tail = self.tail
        if not tail or tail[0].seq > seq + 1:
            return None
        start = bisect_right(tail, seq, key=_seq)  # by seq, never by position
        return [tail[i] for i in range(start, len(tail))]

    def tail_latest(self, limit: int) -> list[StoredMessage] | None:
        """The latest `limit` delivered messages, or None when the tail cannot tell."""
        tail = self.tail
        have_all = self.delivered_seq == len(tail) or (tail and tail[0].seq == 1)
        if len(tail) < limit and not have_all:
            return None
        start = max(0, len(tail) - limit)
        return [tail[i] for i in range(start, len(tail))]


class TailBudget:
    """The recent messages of every room together, bounded in bytes; the oldest go first."""

    __slots__ = ("_order", "limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._order: deque[tuple[Room, StoredMessage, int]] = deque()

    def kept(self, room: Room, message: StoredMessage) -> None:
        """`message` was appended to `room.tail`; drop the oldest while over the budget."""
        size = _sizeof(message.text) + MESSAGE_OVERHEAD
        order = self._order
        order.append((room, message, size))
        self.used += size
        while self.used > self.limit and order:
            oldest_room, oldest, oldest_size = order.popleft()
            self.used -= oldest_size
            tail = oldest_room.tail
            if tail and tail[0].seq == oldest.seq:  # the same message (maybe changed since)
                tail.popleft()


class RoomRegistry:
    """Every room that exists, by name; the names list is cached for `welcome`."""

    def __init__(self, flusher: Flusher, tail_bytes: int = 32 << 20) -> None:
        self._flusher = flusher
        self._rooms: dict[str, Room] = {}
        self.tails = TailBudget(tail_bytes)
        self._names: list[str] | None = None

    def load(self, records: Iterable[RoomRecord]) -> None:
        for record in records:
            self._rooms[record.name] = Room(
                record.name,
                self._flusher,
                record.topic,
                record.last_seq,
                self.tails,
                record.last_rev,
            )
        self._names = None

    def get(self, name: str) -> Room | None:
        return self._rooms.get(name)

    def create(self, name: str) -> Room:
        room = self._rooms[name] = Room(name, self._flusher, tails=self.tails)
        self._names = None
        return room

    def changed(self) -> None:
        """A room's creation was confirmed (or it went): rebuild the names list."""
        self._names = None

    def __iter__(self) -> Iterator[Room]:
        return iter(self._rooms.values())

    def __len__(self) -> int:
        return len(self._rooms)

    def discard(self, room: Room) -> None:
        if self._rooms.get(room.name) is room:
            del self._rooms[room.name]
            self._names = None

    def names(self) -> list[str]:
        if self._names is None:
            self._names = sorted(name for name, room in self._rooms.items() if not room.creating)
        return self._names


def _seq(message: StoredMessage) -> int:
    return message.seq
