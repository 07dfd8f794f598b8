"""What a `ChatClient` reports besides the server's own messages, and its errors.

Errors::

    ChatClientError
      ├── RequestError        the server (or the local check of the same rule) refused
      └── NotConnectedError   no connection to send on, or it dropped before the reply
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol import (
    AwayChanged,
    Banned,
    Bye,
    ChatMessage,
    DirectMessage,
    ErrorCode,
    ErrorReply,
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
)

__all__ = [
    "ChatClientError",
    "ClientEvent",
    "Connected",
    "Connecting",
    "Disconnected",
    "Lagged",
    "MessageUpdated",
    "NotConnectedError",
    "RequestError",
    "RoundTrip",
]


@dataclass(frozen=True, slots=True)
class Connecting:
    """A connection attempt is starting (`attempt` 1 is the first)."""

    host: str
    port: int
    attempt: int


@dataclass(frozen=True, slots=True)
class Connected:
    """Registered with the server; rooms are being rejoined."""

    nick: str
    server: str
    motd: str
    rooms: tuple[str, ...]  # every room that exists on the server
    features: frozenset[str] = frozenset()  # version-2 features the server granted
    account: bool = False  # version 2: the nick is a logged-in account


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The connection ended; `retry_in` seconds until the next try, or None for good."""

    reason: str
    retry_in: float | None


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """A keep-alive ping came back after `seconds`."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Lagged:
    """The program read events too slowly: the `dropped` oldest ones were thrown away.

    The event queue is bounded (`ClientSettings.event_queue_size`). Like a
    broadcast channel, it keeps the newest events, and this marker stands where
    the dropped ones were. Resync what you show: e.g. `history(room, after=...)`
    from the last seq you have, `who(room)` for members.
    """

    dropped: int


@dataclass(frozen=True, slots=True)
class MessageUpdated:
    """After a reconnect: an older message changed while the client was away.

    `message` is its current state (text, `edited`, `deleted`, `reactions`, `rev`):
    replace what is shown for its seq. New messages come as `ChatMessage` as usual,
    and changes seen live as `edited`, `deleted` and `reaction` events.
    """

    message: ChatMessage


ClientEvent = (
    ChatMessage
    | DirectMessage
    | ReadMarker
    | AwayChanged
    | Joined
    | Left
    | NickChanged
    | TopicChanged
    | MessageEdited
    | MessageDeleted
    | ReactionChanged
    | TypingNotice
    | MessageUpdated
    | ModeChanged
    | Kicked
    | Banned
    | RoomInfo
    | ErrorReply
    | Bye
    | Connecting
    | Connected
    | Disconnected
    | RoundTrip
    | Lagged
)


class ChatClientError(Exception):
    """Base of the client library's errors."""


class RequestError(ChatClientError):
    """The server refused a request; `code` is the contract's error code.

    A code this library does not know (from a newer server) arrives as
    `ErrorCode.INTERNAL`; `wire_code` always holds the server's own string.
    """

    def __init__(self, code: ErrorCode, message: str, *, wire_code: str | None = None) -> None:
        self.wire_code = wire_code or str(code)
        super().__init__(f"{message} ({self.wire_code})")
        self.code = code
        self.message = message

    @classmethod
    def from_reply(cls, reply: ErrorReply) -> RequestError:
        """The error a refused request raises: the reply's code as an `ErrorCode`."""
        try:
            code = ErrorCode(reply.code)
        except ValueError:
            code = ErrorCode.INTERNAL
        return cls(code, reply.message, wire_code=reply.code)


class NotConnectedError(ChatClientError):
    """The connection dropped before the reply came, or the client is closed."""
