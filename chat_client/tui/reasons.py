"""Why something failed, in words a person can act on (no Python reprs)."""

from __future__ import annotations

import re

from protocol import ErrorCode

__all__ = ["account_problem", "plain_reason", "reason_code"]

_CODE = re.compile(r"\((\w+)\)\s*$")


def reason_code(reason: str) -> ErrorCode | None:
    """The protocol error code a library reason ends with, as in `... (auth_failed)`."""
    found = _CODE.search(reason)
    if found is None:
        return None
    try:
        return ErrorCode(found.group(1))
    except ValueError:
        return None


def account_problem(code: ErrorCode, account_password_given: bool) -> bool:
    """Is this refusal about the account password (so the password prompt answers it)?

    `auth_required`: the nick is an account. `auth_failed` without an account
    password given is about the server password; `rate_limited` after account
    passwords means too many wrong ones.
    """
    if code is ErrorCode.AUTH_REQUIRED:
        return True
    return account_password_given and code in (ErrorCode.AUTH_FAILED, ErrorCode.RATE_LIMITED)


def plain_reason(exc: BaseException) -> str:
    """Why a connection attempt failed."""
    if isinstance(exc, ConnectionRefusedError):
        return "the server is not accepting connections"
    if isinstance(exc, TimeoutError):
        return "the server did not answer"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    if isinstance(exc, ValueError):
        return "the server sent a line too long to read"
    return str(exc) or type(exc).__name__
