"""Errors of the wire protocol.

Hierarchy::

    ProtocolError            a line from the peer broke the contract; carries an ErrorCode
      └── LineTooLong        the framer discarded a line over the length limit

`ErrorCode` values are the exact strings sent in `error.code` on the wire.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ErrorCode", "LineTooLong", "ProtocolError"]


class ErrorCode(StrEnum):
    """Every `code` an `error` message may carry."""

    BAD_ENCODING = "bad_encoding"
    BAD_JSON = "bad_json"
    INVALID_MESSAGE = "invalid_message"
    INVALID_TEXT = "invalid_text"
    INVALID_NICK = "invalid_nick"
    INVALID_ROOM = "invalid_room"
    LINE_TOO_LONG = "line_too_long"
    NICK_TAKEN = "nick_taken"
    AUTH_FAILED = "auth_failed"
    NOT_REGISTERED = "not_registered"
    ALREADY_REGISTERED = "already_registered"
    NO_SUCH_USER = "no_such_user"
    NO_SUCH_ROOM = "no_such_room"
    NOT_IN_ROOM = "not_in_room"
    RATE_LIMITED = "rate_limited"
    LIMIT_REACHED = "limit_reached"
    NO_SUCH_MESSAGE = "no_such_message"
    NOT_ALLOWED = "not_allowed"
    FILE_CORRUPT = "file_corrupt"
    FILE_TOO_LARGE = "file_too_large"
    UNAVAILABLE = "unavailable"
    # version 2: accounts and sessions
    AUTH_REQUIRED = "auth_required"
    ACCOUNT_EXISTS = "account_exists"
    TOO_MANY_SESSIONS = "too_many_sessions"
    # version 2: moderation
    BANNED = "banned"
    INTERNAL = "internal"


class ProtocolError(Exception):
    """A line from the peer could not be accepted.

    Args:
        code: the wire error code to answer with.
        message: a plain-words explanation naming the offending field.
        re: the line's `id` when it could be read, so the reply can carry it.
    """

    def __init__(self, code: ErrorCode, message: str, re: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.re = re

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.value!r}, {self.message!r}, re={self.re!r})"


class LineTooLong(ProtocolError):
    """A line exceeded the length limit and was discarded up to its newline."""

    def __init__(self, limit: int) -> None:
        super().__init__(ErrorCode.LINE_TOO_LONG, f"line longer than {limit} bytes was discarded")
        self.limit = limit
