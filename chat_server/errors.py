"""Errors of the chat server core.

Hierarchy::

    ChatError        a request was refused; carries the wire ErrorCode to answer with

Protocol-level errors (bad lines) are `protocol.ProtocolError`; store errors are
`chat_server.store.StoreError`.
"""

from __future__ import annotations

from protocol import ErrorCode

__all__ = ["ChatError"]


class ChatError(Exception):
    """A request was refused and had no effect."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
