"""The chat client: an asyncio library (`ChatClient`) and the Textual TUI (`chat-client`)."""

from __future__ import annotations

from .client import ChatClient, ClientSettings
from .events import (
    ChatClientError,
    ClientEvent,
    Connected,
    Connecting,
    Disconnected,
    Lagged,
    MessageUpdated,
    NotConnectedError,
    RequestError,
    RoundTrip,
)
from .message_view import MessageView

__all__ = [
    "ChatClient",
    "ChatClientError",
    "ClientEvent",
    "ClientSettings",
    "Connected",
    "Connecting",
    "Disconnected",
    "Lagged",
    "MessageUpdated",
    "MessageView",
    "NotConnectedError",
    "RequestError",
    "RoundTrip",
]
