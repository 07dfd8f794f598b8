"""What a `ChatClient` reports besides the server's own messages, and its errors."""

from __future__ import annotations

from dataclasses import dataclass

from protocol import (
    Bye,
    ChatMessage,
    DirectMessage,
    ErrorReply,
    Joined,
    Left,
    NickChanged,
    RoomInfo,
    TopicChanged,
)

__all__ = [
    "ChatClientError",
    "ClientEvent",
    "Connected",
    "Connecting",
    "Disconnected",
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


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The connection ended; `retry_in` seconds until the next try, or None for good."""

    reason: str
    retry_in: float | None


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """A keep-alive ping came back after `seconds`."""

    seconds: float


ClientEvent = (
    ChatMessage
    | DirectMessage
    | Joined
    | Left
    | NickChanged
    | TopicChanged
    | RoomInfo
    | ErrorReply
    | Bye
    | Connecting
    | Connected
    | Disconnected
    | RoundTrip
)


class ChatClientError(Exception):
    """Base of the client library's errors."""


class RequestError(ChatClientError):
    """The server refused a request; `code` is the contract's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{message} ({code})")
        self.code = code
        self.message = message


class NotConnectedError(ChatClientError):
    """The connection dropped before the reply came, or the client is closed."""
