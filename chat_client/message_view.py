"""`MessageView`: the current state of every room message a client has seen, from its events.

Pure bookkeeping for programs (and tests) that show messages: feed it every
event (`apply`) and it keeps each message as it stands now, with edits,
deletes and reactions applied, and the state a resume reports
(`MessageUpdated`) put in place. Events for messages it never saw are ignored.
"""

from __future__ import annotations

from protocol import ChatMessage, MessageDeleted, MessageEdited, ReactionChanged

from .events import MessageUpdated

__all__ = ["MessageView"]


class MessageView:
    """Room messages by room and seq, as they stand after every event applied."""

    def __init__(self) -> None:
        self.rooms: dict[str, dict[int, ChatMessage]] = {}

    def messages(self, room: str) -> list[ChatMessage]:
        """The room's messages in seq order."""
        found = self.rooms.get(room, {})
        return [found[seq] for seq in sorted(found)]

    def apply(self, event: object) -> ChatMessage | None:
        """Apply one event; return the message it added or changed (None: not a message's)."""
        if isinstance(event, ChatMessage):
            return self._put(event)
        if isinstance(event, MessageUpdated):
            return self._put(event.message)
        if isinstance(event, MessageEdited | MessageDeleted | ReactionChanged):
            message = self.rooms.get(event.room, {}).get(event.seq)
            if message is None:
                return None
            return self._put(_changed(message, event))
        return None

    def _put(self, message: ChatMessage) -> ChatMessage:
        self.rooms.setdefault(message.room, {})[message.seq] = message
        return message


def _changed(
    message: ChatMessage, event: MessageEdited | MessageDeleted | ReactionChanged
) -> ChatMessage:
    if isinstance(event, MessageEdited):
        return message.model_copy(update={"text": event.text, "edited": event.ts, "rev": event.rev})
    if isinstance(event, MessageDeleted):
        update = {"text": "", "deleted": True, "reactions": None, "file": None, "rev": event.rev}
        return message.model_copy(update=update)
    reactions = {emoji: list(nicks) for emoji, nicks in (message.reactions or {}).items()}
    nicks = reactions.setdefault(event.emoji, [])
    if event.removed:
        if event.nick in nicks:
            nicks.remove(event.nick)
    elif event.nick not in nicks:
        nicks.append(event.nick)
    kept = {emoji: nicks for emoji, nicks in reactions.items() if nicks}
    return message.model_copy(update={"reactions": kept or None, "rev": event.rev})
