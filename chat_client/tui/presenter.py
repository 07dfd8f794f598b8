"""From client events to view state: the TUI's rules, with no Textual in them.

`Presenter.apply(events)` updates the conversations and returns a `Changes`
record saying what the screen must redraw and whether to ring the bell.
Rules kept here, each tested on its own (tests/client/test_presenter.py):

- Unread: a message counts when its seq is above the conversation's read
  marker, someone else wrote it, and it is not in view. The backlog a first
  join brings is history, not news: it moves the marker instead.
- Bell: a live mention or DM from someone else rings, once per highlight,
  unless it is in view while the terminal has focus (and never in a replay).
- Lines typed before the server has them are *pending*: shown greyed below
  the log and replaced by the server's copy once it arrives.
- A restart does not flood the log: `left (shutdown)` lines are dropped, people
  who were there before a drop come back silently, and every room gets one
  "disconnected" line and one "reconnected" line instead.
- A nick change renames the DM conversation with that person and, for our
  own nick, the status.
- Read markers (version 2, for an account): the `room` reply's `read` and the
  `read` events from the account's other sessions move a conversation's marker
  forward; unread counts are then recounted from the entries above it, and the
  "read up to here" line moves there. While a conversation is in view the line
  stays where reading had stopped when it came into view (or when the terminal
  lost focus), so what is new stays marked.
- Away (version 2): who is away and why, from `room` replies and `away` events,
  for the member list; our own away text for the status bar.
- Changes to messages (version 2): `edited`, `deleted`, `reaction` events and
  the `MessageUpdated` states a resume brings change the entry of that seq in
  place (`Changes.updated` lists those in view: the log redraws only them).
  A reply carries a one-line quote of its original (kept up to date when the
  original changes; "not loaded" when it is not in memory).
- Moderation (version 2): ops from the `room` reply and `mode` events (for the
  member list's `@`); kicks, bans and op changes as event lines. Being kicked
  or banned ourselves is said plainly in that room and marks it `put_out`, so
  the screen moves the input away from it (`Changes.put_out`).
- Typing (version 2): who is typing where, dropped after the contract's
  expiry (`active` 6 s, `paused` 30 s) or when their message arrives.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from protocol import (
    AwayChanged,
    Banned,
    Bye,
    ChatMessage,
    DirectMessage,
    DmHistoryPage,
    ErrorCode,
    ErrorReply,
    HistoryPage,
    Joined,
    Kicked,
    Left,
    MessageDeleted,
    MessageEdited,
    ModeChanged,
    NickChanged,
    ReactionChanged,
    ReadMarker,
    RoomInfo,
    TopicChanged,
    TypingNotice,
    parse_ts,
)

from ..events import (
    ClientEvent,
    Connected,
    Connecting,
    Disconnected,
    Lagged,
    MessageUpdated,
    RoundTrip,
)
from .conversations import Conversation, Conversations
from .entries import Entry, Kind, mentions
from .reasons import reason_code

__all__ = ["Changes", "Presenter", "Status"]

LOGGED = frozenset({Kind.CHAT, Kind.ACTION, Kind.EVENT})
RECENT = 300  # seconds: older lines in a replay ring no bell
RETURN_WINDOW = 120  # seconds: who comes back this soon after a restart does so silently
TYPING_EXPIRY = {"active": 6.0, "paused": 30.0}  # seconds without news (the contract's)
QUOTE_CHARS = 200  # of the original kept for a reply's quote (it is cut to the width)


@dataclass(slots=True)
class Status:
    """What the status bar shows."""

    text: str = "not connected"
    nick: str = ""
    server: str = ""
    connected: bool = False
    retry_in: float | None = None  # seconds, counted from when this status was set
    rtt: float | None = None
    security: str = ""  # how the connection is protected (`security_text`)
    away: str | None = None  # our own away text (version 2)


@dataclass(slots=True)
class Changes:
    """What one batch of events changed on screen."""

    appended: list[Entry] = field(default_factory=list)  # at the bottom of the log in view
    pending: bool = False  # the pending lines of the conversation in view changed
    reload: bool = False  # the conversation in view must be drawn again from scratch
    rooms: bool = False  # the room list
    details: bool = False  # topic and members of the conversation in view
    status: bool = False
    ring: int = 0  # bells to ring
    final: Disconnected | None = None  # the connection is gone for good
    lagged: bool = False  # events were dropped: fetch what was missed
    marker: bool = False  # the read line of the conversation in view moved
    connected: Connected | None = None  # a (re)connection: fetch the stored DMs
    updated: list[Entry] = field(default_factory=list)  # entries in view drawn again
    typing: bool = False  # who is typing in the conversation in view changed
    put_out: list[str] = field(default_factory=list)  # rooms we were kicked or banned from

    def merge(self, other: Changes) -> None:
        self.appended.extend(other.appended)
        self.updated.extend(other.updated)
        self.typing |= other.typing
        self.put_out.extend(other.put_out)
        self.pending |= other.pending
        self.reload |= other.reload
        self.rooms |= other.rooms
        self.details |= other.details
        self.status |= other.status
        self.ring += other.ring
        self.final = other.final or self.final
        self.lagged |= other.lagged
        self.marker |= other.marker
        self.connected = other.connected or self.connected


class Presenter:
    """Owns the conversations and the status; turns events into `Changes`."""

    def __init__(
        self, nick: str = "", *, bell: bool = True, clock: Callable[[], datetime] | None = None
    ) -> None:
        self._clock = clock or _now
        self.sink: Callable[[str, Entry], None] | None = None  # e.g. the log files on disk
        self.conversations = Conversations()
        self.status = Status(nick=nick)
        self.bell = bell
        self.focused = True  # does the terminal have focus?
        self.at_bottom = True  # does the log in view show its newest line?
        self.server_rooms: set[str] = set()
        self.account = False  # the nick is a logged-in account: markers are the server's
        self.away: dict[str, str] = {}  # nick (lower case) -> away text, for who is away
        self._away_members: dict[str, set[str]] = {}  # room -> nicks present when we dropped
        self._was_connected = False
        self._told_nick_taken = False  # once per outage, however the retries alternate
        self._away_since = self._clock()
        self.monotonic: Callable[[], float] = time.monotonic
        self.typing: dict[str, dict[str, tuple[str, float]]] = {}  # key -> nick -> state, when

    @property
    def nick(self) -> str:
        return self.status.nick

    # -- events ------------------------------------------------------------

    def apply(self, events: Iterable[ClientEvent | object]) -> Changes:
        changes = Changes()
        for event in events:
            self._apply_one(event, changes)
        return changes

    def _apply_one(self, event: object, changes: Changes) -> None:
        if isinstance(event, ChatMessage):
            self._room_message(event, changes)
        elif isinstance(event, DirectMessage):
            self._direct_message(event, changes)
        elif isinstance(event, RoomInfo):
            self._room_info(event, changes)
        elif isinstance(event, Joined | Left):
            self._membership(event, changes)
        elif isinstance(event, NickChanged):
            self._nick_changed(event, changes)
        elif isinstance(event, TopicChanged):
            conversation = self.conversations.by_key.get("#" + event.room)
            if conversation is None:
                return
            conversation.topic = event.topic
            text = (
                f"{event.by} set the topic: {event.topic}"
                if event.topic
                else f"{event.by} cleared the topic"
            )
            self._add(conversation, _event(event.ts, text), changes)
            changes.details = True
        elif isinstance(event, MessageEdited | MessageDeleted | ReactionChanged):
            self._message_changed(event, changes)
        elif isinstance(event, MessageUpdated):
            self._message_updated(event.message, changes)
        elif isinstance(event, TypingNotice):
            self._typing(event, changes)
        elif isinstance(event, ModeChanged | Kicked | Banned):
            self._moderation(event, changes)
        elif isinstance(event, ReadMarker):
            self._read_marker(event, changes)
        elif isinstance(event, AwayChanged):
            self._away_changed(event.nick, event.text, changes)
        elif isinstance(event, ErrorReply):
            self.notice(f"server: {event.message}", Kind.ERROR, changes=changes)
        elif isinstance(event, Bye):
            pass  # its reason comes again in the Disconnected that follows
        elif isinstance(event, Connecting | Connected | Disconnected | RoundTrip):
            self._connection(event, changes)
        elif isinstance(event, Lagged):
            text = f"the client fell behind and skipped {event.dropped:,} events; catching up"
            self._everywhere(text, Kind.ERROR, changes)
            changes.lagged = True
        # Anything else (a newer library's events) is not ours to show.

    def _room_message(self, message: ChatMessage, changes: Changes) -> None:
        conversation = self.conversations.get("#" + message.room)
        mine = message.sender.lower() == self.nick.lower()
        entry = self._entry(conversation, message)
        self._stopped_typing(conversation.key, message.sender, changes)
        if mine and self._settle_pending(conversation, entry):
            changes.pending |= conversation.key == self.conversations.current
        if not self._add(conversation, entry, changes):
            return
        # Until our own `joined` comes back, messages are the join's replay. A first
        # join's backlog is history (it moves the read marker); after a drop, what was
        # missed counts as unread but rings no bell.
        replay = not conversation.joined
        first = not conversation.ever_joined and conversation.read_seq == 0
        if replay and first and not self.account:  # an account's marker comes in `room`
            conversation.absorbing = True
        if mine or (replay and conversation.absorbing):
            conversation.read_seq = max(conversation.read_seq, message.seq)
        elif message.seq > conversation.read_seq:
            self._count(conversation, entry, changes, live=not replay and self._recent(entry))

    def _recent(self, entry: Entry) -> bool:
        """Said in the last minutes: later replay pages of a long gap ring no bell."""
        return entry.ts is None or (self._clock() - entry.ts).total_seconds() < RECENT

    def _direct_message(self, message: DirectMessage, changes: Changes) -> None:
        mine = message.sender.lower() == self.nick.lower()
        other = message.to if mine else message.sender
        conversation = self.conversations.dm(other)
        self._stopped_typing(conversation.key, message.sender, changes)
        entry = Entry(
            Kind.CHAT,
            message.text,
            parse_ts(message.ts),
            message.sender,
            message.seq,
            file=message.file,
        )
        if mine and self._settle_pending(conversation, entry):
            changes.pending |= conversation.key == self.conversations.current
        if not self._add(conversation, entry, changes):
            return  # a stored DM shown already (the history fetched at start has it)
        if mine:
            if message.seq is not None:
                conversation.read_seq = max(conversation.read_seq, message.seq)
        elif message.seq is None or message.seq > conversation.read_seq:
            self._count(conversation, entry, changes, live=self._recent(entry))

    def _count(
        self, conversation: Conversation, entry: Entry, changes: Changes, live: bool
    ) -> None:
        in_view = conversation.key == self.conversations.current
        highlight = entry.mention or not conversation.is_room
        if in_view:
            if entry.seq is not None and self.focused and self.at_bottom:
                conversation.read_seq = max(conversation.read_seq, entry.seq)
        else:
            conversation.unread += 1
            conversation.mentioned |= highlight
            changes.rooms = True
        if live and highlight and self.bell and not (in_view and self.focused):
            changes.ring += 1

    def _room_info(self, info: RoomInfo, changes: Changes) -> None:
        conversation = self.conversations.get("#" + info.room)
        conversation.topic = info.topic
        conversation.set_members(info.members)
        conversation.put_out = ""
        if info.ops is not None:
            conversation.ops = frozenset(nick.lower() for nick in info.ops)
        # Not `joined` yet: our own `joined` comes after the replay, in wire order.
        self.server_rooms.add(info.room)
        if info.away is not None:
            away = {nick.lower(): text for nick, text in info.away.items()}
            for member in info.members:
                if member.lower() in away:
                    self.away[member.lower()] = away[member.lower()]
                else:
                    self.away.pop(member.lower(), None)
        if info.read is not None and self.account:
            self._move_marker(conversation, info.read, changes)
        changes.rooms = True
        changes.details = True

    def _read_marker(self, event: ReadMarker, changes: Changes) -> None:
        """Another session of our account read up to `seq`: so did we."""
        if event.room is not None:
            conversation = self.conversations.by_key.get("#" + event.room)
        else:
            conversation = self.conversations.find_dm(event.with_ or "")
        if conversation is not None:
            self._move_marker(conversation, event.seq, changes)

    def _move_marker(self, conversation: Conversation, seq: int, changes: Changes) -> None:
        conversation.synced_seq = max(conversation.synced_seq, seq)
        if seq > conversation.line_seq:
            conversation.line_seq = seq
            changes.marker |= conversation.key == self.conversations.current
        if seq > conversation.read_seq:
            conversation.read_seq = seq
            if conversation.key != self.conversations.current:
                conversation.recount(self.nick)
            changes.rooms = True

    def _away_changed(self, nick: str, text: str | None, changes: Changes) -> None:
        if text:
            self.away[nick.lower()] = text
        else:
            self.away.pop(nick.lower(), None)
        if nick.lower() == self.nick.lower():
            self.status.away = text or None
            changes.status = True
        changes.details = True

    def _membership(self, event: Joined | Left, changes: Changes) -> None:
        conversation = self.conversations.by_key.get("#" + event.room)
        if conversation is None:
            return  # a room we have just left
        me = event.nick.lower() == self.nick.lower()
        others = [m for m in conversation.members if m.lower() != event.nick.lower()]
        changes.details = True
        if isinstance(event, Joined):
            conversation.set_members([*others, event.nick])
            if me:
                conversation.joined = conversation.ever_joined = True
                conversation.absorbing = False
                conversation.joined = True
                return  # the room's own line says we are in
            away = self._away_members.get(event.room, set())
            back_soon = (parse_ts(event.ts) - self._away_since).total_seconds() < RETURN_WINDOW
            if event.nick.lower() in away and back_soon:
                away.discard(event.nick.lower())
                return  # back after the server restarted: not news
            self._add(conversation, _event(event.ts, f"{event.nick} joined #{event.room}"), changes)
            return
        conversation.set_members(others)
        if event.reason == "shutdown":
            self._away_members.setdefault(event.room, set()).add(event.nick.lower())
            self._away_since = self._clock()
            return  # the server's restart gets one line of its own
        reason = f" ({event.reason})" if event.reason else ""
        self._add(
            conversation, _event(event.ts, f"{event.nick} left #{event.room}{reason}"), changes
        )

    def _nick_changed(self, event: NickChanged, changes: Changes) -> None:
        line = f"{event.old} is now known as {event.new}"
        if event.old.lower() == self.nick.lower():
            self.status.nick = event.new
            changes.status = True
        for conversation in self.conversations:
            if conversation.is_room and conversation.has_member(event.old):
                conversation.set_members(
                    event.new if m.lower() == event.old.lower() else m for m in conversation.members
                )
                self._add(conversation, _event(event.ts, line), changes)
                changes.details = True
        dm = self.conversations.find_dm(event.old)
        if dm is not None:
            self.conversations.rename(dm.key, "@" + event.new)
            self._add(dm, _event(event.ts, line), changes)
            changes.rooms = True
            changes.details = True

    def _connection(self, event: object, changes: Changes) -> None:
        status = self.status
        changes.status = True
        if isinstance(event, Connecting):
            status.retry_in = None
            status.text = f"connecting to {event.host}:{event.port}…"
        elif isinstance(event, Connected):
            status.retry_in = None
            status.connected = True
            status.nick = event.nick
            status.server = event.server
            status.text = f"connected to {event.server} as {event.nick}"
            self.account = event.account
            changes.connected = event
            self._told_nick_taken = False
            self.server_rooms.update(event.rooms)
            if self._was_connected:
                self._everywhere("reconnected", Kind.NOTICE, changes)
            self._was_connected = True
        elif isinstance(event, Disconnected):
            if status.connected:
                self._away_since = self._clock()
                for c in self.conversations:
                    if c.is_room:
                        self._away_members.setdefault(c.name, set()).update(
                            m.lower() for m in c.members
                        )
                self._everywhere(f"disconnected: {event.reason}", Kind.ERROR, changes)
                for conversation in self.conversations:
                    conversation.joined = not conversation.is_room
                changes.rooms = True
            elif not self._told_nick_taken and reason_code(event.reason) is ErrorCode.NICK_TAKEN:
                # Somebody took our nick while we were away (maybe on purpose): say so once,
                # also when the retries alternate with another node's refusal.
                self._told_nick_taken = True
                self._everywhere(
                    f"{event.reason}: held for the connection that dropped until the server "
                    f"sees it gone, or someone else is using {self.nick} now. Retrying; "
                    "/reconnect picks another nick",
                    Kind.ERROR,
                    changes,
                )
            status.connected = False
            status.rtt = None
            status.retry_in = event.retry_in
            if event.retry_in is None:
                status.text = f"disconnected: {event.reason}"
                changes.final = event
            else:
                status.text = f"reconnecting ({event.reason})"
        elif isinstance(event, RoundTrip):
            status.rtt = event.seconds

    # -- what the user does ------------------------------------------------

    def notice(
        self,
        text: str,
        kind: Kind = Kind.NOTICE,
        *,
        key: str | None = None,
        changes: Changes | None = None,
    ) -> Changes:
        """Local feedback in conversation `key` (default: the one in view)."""
        changes = changes if changes is not None else Changes()
        key = key or self.conversations.current
        if key is None:
            return changes
        self._add(self.conversations.get(key), Entry(kind, text, _now()), changes)
        return changes

    def typed(self, key: str, text: str, *, action: bool = False) -> Entry:
        """A line the user sent: pending until the server's copy comes back."""
        entry = Entry(Kind.ACTION if action else Kind.CHAT, text, _now(), self.nick, pending=True)
        self.conversations.get(key).pending.append(entry)
        return entry

    def acked(self, key: str, entry: Entry, seq: int | None) -> bool:
        """The server stored a pending line; True if it is still shown as pending."""
        entry.pending = False
        entry.seq = seq
        conversation = self.conversations.by_key.get(key)
        return conversation is not None and entry in conversation.pending

    def refused(self, key: str, entry: Entry, reason: str) -> Changes:
        """A pending line could not be sent: it becomes an error line in the log."""
        changes = Changes()
        conversation = self.conversations.by_key.get(key)
        if conversation is not None and entry in conversation.pending:
            conversation.pending.remove(entry)
            changes.pending = key == self.conversations.current
            failed = Entry(entry.kind, entry.text, entry.ts, entry.author, failed=True)
            self._add(conversation, failed, changes)
            self._add(conversation, Entry(Kind.ERROR, f"not sent: {reason}", _now()), changes)
        return changes

    def show(self, key: str) -> Conversation:
        return self.conversations.show(key)

    def clear(self, key: str) -> None:
        self.conversations.get(key).clear(Entry(Kind.MARK, "log cleared", _now()))

    def older_page(self, key: str, page: HistoryPage) -> list[Entry]:
        """Entries for a page of older history (already read: never unread)."""
        conversation = self.conversations.get(key)
        if not page.more:
            conversation.older_exhausted = True
        older = [self._entry(conversation, m) for m in page.messages]
        return conversation.prepend(older)

    def around_page(self, key: str, page: HistoryPage) -> list[Entry]:
        """A page fetched `around` a seq older than the log (to show a reply's original):
        it goes above the log, with a line saying what lies between is not loaded."""
        conversation = self.conversations.get(key)
        oldest = conversation.oldest_seq
        older = [
            self._entry(conversation, m) for m in page.messages if oldest is None or m.seq < oldest
        ]
        if not older:
            return []
        last = older[-1].seq or 0
        if oldest is None or last + 1 >= oldest:
            added = conversation.prepend(older)
        else:
            line = _gap_line(last + 1, oldest - 1)
            added = conversation.prepend([*older, line])
            if line in added and conversation.gap is None:
                conversation.open_gap(line, last + 1, oldest - 1)  # the screen fills it
        self._quote_replies_to(conversation, added)
        return added

    def gap_page(self, key: str, page: HistoryPage) -> list[Entry]:
        """A page fetched `after` the messages above the gap: into the gap it goes."""
        conversation = self.conversations.get(key)
        if conversation.gap is None:
            return []
        first, last = conversation.gap_seqs
        fill = [self._entry(conversation, m) for m in page.messages if first <= m.seq <= last]
        added = conversation.fill_gap(fill, ends=not page.more)
        if conversation.gap is not None:
            conversation.replace_gap_line(_gap_line(*conversation.gap_seqs))
        self._quote_replies_to(conversation, added)
        return added

    def quote_replies_to(self, key: str, loaded: list[Entry]) -> list[Entry]:
        """Replies in the log get the quote of their original once it is loaded; returns
        the replies whose quote changed (to be drawn again)."""
        return self._quote_replies_to(self.conversations.get(key), loaded)

    def _quote_replies_to(self, conversation: Conversation, loaded: list[Entry]) -> list[Entry]:
        changed: list[Entry] = []
        for original in loaded:
            if original.seq is None:
                continue
            for reply in conversation.replies_to(original.seq):
                quote = self._quote(original, original.seq)
                if reply.quote != quote:
                    reply.quote = quote
                    changed.append(reply)
        return changed

    # -- changes to messages (version 2) -------------------------------------

    def _entry(self, conversation: Conversation, message: ChatMessage) -> Entry:
        """The entry for a room message in its current state."""
        mine = message.sender.lower() == self.nick.lower()
        entry = Entry(
            Kind.ACTION if message.action else Kind.CHAT,
            message.text,
            parse_ts(message.ts),
            message.sender,
            message.seq,
            mention=not mine and not message.deleted and mentions(message.text, self.nick),
            file=message.file,
            reply_to=message.reply_to,
        )
        self._set_state(entry, message)
        if message.reply_to is not None:
            entry.quote = self._quote(conversation.find(message.reply_to), message.reply_to)
        return entry

    def _set_state(self, entry: Entry, message: ChatMessage) -> None:
        entry.text = message.text
        entry.edited = message.edited is not None
        entry.deleted = bool(message.deleted)
        if entry.deleted:
            entry.file = None
            entry.mention = False
        reactions = {e: list(n) for e, n in (message.reactions or {}).items() if n}
        entry.reactions = reactions or None
        entry.mine = self._own(reactions)

    def _own(self, reactions: dict[str, list[str]]) -> frozenset[str]:
        me = self.nick.lower()
        return frozenset(e for e, nicks in reactions.items() if me in (n.lower() for n in nicks))

    @staticmethod
    def _quote(original: Entry | None, seq: int) -> str:
        if original is None:
            return f"reply to message {seq} (not loaded: Alt+J shows it)"
        if original.deleted:
            return f"{original.author}: message deleted"
        return f"{original.author}: {original.text[:QUOTE_CHARS]}"

    def _message_changed(
        self, event: MessageEdited | MessageDeleted | ReactionChanged, changes: Changes
    ) -> None:
        conversation = self.conversations.by_key.get("#" + event.room)
        entry = conversation.find(event.seq) if conversation is not None else None
        if conversation is None or entry is None:
            return  # not in memory: history shows its current state when it is fetched
        if isinstance(event, MessageEdited):
            entry.text, entry.edited = event.text, True
            entry.mention = entry.author.lower() != self.nick.lower() and mentions(
                event.text, self.nick
            )
        elif isinstance(event, MessageDeleted):
            entry.text, entry.deleted, entry.edited = "", True, False
            entry.reactions, entry.file, entry.mention = None, None, False
            entry.mine = frozenset()
        else:
            reactions = dict(entry.reactions or {})
            nicks = [n for n in reactions.get(event.emoji, []) if n != event.nick]
            if not event.removed:
                nicks.append(event.nick)
            if nicks:
                reactions[event.emoji] = nicks
            else:
                reactions.pop(event.emoji, None)
            entry.reactions = reactions or None
            entry.mine = self._own(reactions)
        self._redraw(conversation, entry, changes)

    def _message_updated(self, message: ChatMessage, changes: Changes) -> None:
        """A resume reports the current state of a message that changed meanwhile."""
        conversation = self.conversations.by_key.get("#" + message.room)
        entry = conversation.find(message.seq) if conversation is not None else None
        if conversation is None or entry is None:
            return
        self._set_state(entry, message)
        self._redraw(conversation, entry, changes)

    def _redraw(self, conversation: Conversation, entry: Entry, changes: Changes) -> None:
        """`entry` changed: draw it (and the quotes of its replies) again."""
        in_view = conversation.key == self.conversations.current
        if in_view:
            changes.updated.append(entry)
        if entry.seq is None:
            return
        for reply in conversation.replies_to(entry.seq):
            reply.quote = self._quote(entry, entry.seq)
            if in_view:
                changes.updated.append(reply)

    def typed_reply(self, key: str, text: str, reply_to: int) -> Entry:
        """A reply the user sent, pending like any line, with its quote."""
        entry = self.typed(key, text)
        conversation = self.conversations.get(key)
        entry.reply_to = reply_to
        entry.quote = self._quote(conversation.find(reply_to), reply_to)
        return entry

    def last_own(self, key: str) -> Entry | None:
        """Our newest message in `key` the server has (what Up in an empty input edits)."""
        conversation = self.conversations.by_key.get(key)
        if conversation is None or not conversation.is_room:
            return None
        me = self.nick.lower()
        for entry in reversed(conversation.entries):
            if entry.is_message and entry.seq is not None and not entry.deleted:
                if entry.author.lower() == me:
                    return entry
        return None

    # -- moderation (version 2) ------------------------------------------------

    def _moderation(self, event: ModeChanged | Kicked | Banned, changes: Changes) -> None:
        conversation = self.conversations.by_key.get("#" + event.room)
        if conversation is None:
            return
        changes.details |= conversation.key == self.conversations.current
        me = event.nick.lower() == self.nick.lower()
        target = "you" if me else event.nick
        if isinstance(event, ModeChanged):
            ops = set(conversation.ops)
            (ops.add if event.op else ops.discard)(event.nick.lower())
            conversation.ops = frozenset(ops)
            what = "made {} an op" if event.op else "took op from {}"
            self._add(conversation, _event(event.ts, f"{event.by} {what.format(target)}"), changes)
            return
        reason = f": {event.reason}" if event.reason else ""
        if isinstance(event, Banned) and event.removed:
            line = f"{event.by} lifted the ban on {target}{reason}"
            self._add(conversation, _event(event.ts, line), changes)
            return
        verb = "kicked" if isinstance(event, Kicked) else "banned"
        conversation.set_members(m for m in conversation.members if m.lower() != event.nick.lower())
        if not me:
            line = f"{event.by} {verb} {event.nick} from #{event.room}{reason}"
            self._add(conversation, _event(event.ts, line), changes)
            return
        already = conversation.put_out
        conversation.put_out = f"{event.by} {verb} you from #{event.room}{reason}"
        conversation.joined = False
        again = "" if verb == "banned" else " (/join comes back)"
        if isinstance(event, Banned) and already:
            return  # the kick that came with the ban said it already
        text = f"you were {verb} from #{event.room} by {event.by}{reason}{again}"
        self._add(conversation, Entry(Kind.ERROR, text, parse_ts(event.ts)), changes)
        changes.put_out.append(conversation.key)
        changes.rooms = True

    # -- typing (version 2) ----------------------------------------------------

    def _typing(self, event: TypingNotice, changes: Changes) -> None:
        if event.room is not None:
            key = "#" + event.room
        else:
            found = self.conversations.find_dm(event.sender)
            key = found.key if found is not None else "@" + event.sender
        if event.state not in TYPING_EXPIRY:
            self._stopped_typing(key, event.sender, changes)
            return
        self.typing.setdefault(key, {})[event.sender] = (event.state, self.monotonic())
        changes.typing |= key == self.conversations.current

    def _stopped_typing(self, key: str, nick: str, changes: Changes) -> None:
        typing = self.typing.get(key)
        if typing and typing.pop(nick, None) is not None:
            changes.typing |= key == self.conversations.current

    def typing_line(self, key: str | None) -> str:
        """ "alice is typing…" for `key` now, dropping states past their expiry."""
        typing = self.typing.get(key or "")
        if not typing:
            return ""
        now = self.monotonic()
        for nick, (state, since) in list(typing.items()):
            if now - since > TYPING_EXPIRY[state]:
                del typing[nick]
        active = sorted((n for n, (s, _) in typing.items() if s == "active"), key=str.lower)
        paused = sorted((n for n, (s, _) in typing.items() if s == "paused"), key=str.lower)
        parts = []
        if active:
            parts.append(_names(active) + (" is typing…" if len(active) == 1 else " are typing…"))
        if paused:
            verb = " has stopped typing" if len(paused) == 1 else " have stopped typing"
            parts.append(_names(paused) + verb)
        return "; ".join(parts)

    def dm_page(self, page: DmHistoryPage) -> Changes:
        """A page of a stored DM conversation (fetched at start or after a reconnect).

        What is older than the log goes above it, what is newer below; DMs above
        the read marker count as unread but ring no bell.
        """
        changes = Changes()
        conversation = self.conversations.dm(page.with_)
        conversation.read_seq = max(conversation.read_seq, page.read)  # read elsewhere
        nick = self.nick.lower()
        entries = [
            Entry(Kind.CHAT, m.text, parse_ts(m.ts), m.sender, m.seq, file=m.file)
            for m in page.messages
        ]
        oldest, newest = conversation.oldest_seq, conversation.newest_seq
        older = [e for e in entries if oldest is not None and (e.seq or 0) < oldest]
        if conversation.prepend(older):
            changes.reload |= conversation.key == self.conversations.current
        for entry in entries:
            if newest is not None and (entry.seq or 0) <= newest:
                continue
            if not self._add(conversation, entry, changes):
                continue
            if entry.author.lower() == nick:
                conversation.read_seq = max(conversation.read_seq, entry.seq or 0)
            elif (entry.seq or 0) > conversation.read_seq:
                self._count(conversation, entry, changes, live=False)
        if conversation.key != self.conversations.current:
            conversation.recount(self.nick)
        changes.rooms = True
        return changes

    def seen(self, key: str) -> bool:
        """The user has seen the newest line of `key`; True if the server should be told
        (`read_seq` is above the marker it has)."""
        conversation = self.conversations.by_key.get(key)
        if conversation is None:
            return False
        conversation.mark_read()
        return conversation.read_seq > conversation.synced_seq

    def blurred(self) -> Changes:
        """The terminal lost focus: the line in view goes where reading stopped."""
        changes = Changes()
        key = self.conversations.current
        conversation = self.conversations.by_key.get(key or "")
        if conversation is not None and conversation.read_seq > conversation.line_seq:
            conversation.line_seq = conversation.read_seq
            changes.marker = True
        return changes

    # -- helpers -------------------------------------------------------------

    def _add(self, conversation: Conversation, entry: Entry, changes: Changes) -> bool:
        if not conversation.append(entry):
            return False
        if self.sink is not None and entry.kind in LOGGED:
            self.sink(conversation.key, entry)
        if conversation.key == self.conversations.current:
            changes.appended.append(entry)
        return True

    def _everywhere(self, text: str, kind: Kind, changes: Changes) -> None:
        for conversation in self.conversations:
            if conversation.is_room:
                self._add(conversation, Entry(kind, text, _now()), changes)

    @staticmethod
    def _settle_pending(conversation: Conversation, echo: Entry) -> bool:
        """Our own line came back: drop the pending copy it stands for."""
        for pending in conversation.pending:
            same = pending.seq == echo.seq if pending.seq is not None else False
            if same or (pending.text == echo.text and pending.kind == echo.kind):
                conversation.pending.remove(pending)
                return True
        return False


def _names(nicks: list[str]) -> str:
    if len(nicks) > 3:
        return f"{', '.join(nicks[:2])} and {len(nicks) - 2} others"
    if len(nicks) == 1:
        return nicks[0]
    return ", ".join(nicks[:-1]) + " and " + nicks[-1]


def _event(ts: str, text: str) -> Entry:
    return Entry(Kind.EVENT, text, parse_ts(ts))


def _now() -> datetime:
    return datetime.now(UTC)


def _gap_line(first: int, last: int) -> Entry:
    return Entry(Kind.NOTICE, f"messages {first} to {last} are not loaded here", None)
