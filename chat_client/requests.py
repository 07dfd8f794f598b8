"""Requests on the wire, by id: each one gets exactly one outcome.

The first reply carrying a request's id as `re` settles it: the reply type the
request expects goes to `on_reply`, an `error` to `on_error` as a
`RequestError` with its `ErrorCode`, any other type to `on_error` as an
`internal` error. The entry is then gone, so a second reply is ignored. When
the connection ends, `drop_all` calls every `on_drop` (by default a failure
with `NotConnectedError`; a say instead waits to be matched or resent).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

from protocol import ErrorCode, ErrorReply

from .events import ChatClientError, NotConnectedError, RequestError

__all__ = ["RequestTable"]

M = TypeVar("M", bound=BaseModel)


@dataclass(slots=True)
class _Waiting:
    expects: type[BaseModel]
    on_reply: Callable[[Any], None]
    on_error: Callable[[ChatClientError], None]
    on_drop: Callable[[], None]


class RequestTable:
    """What each request id on the current connection waits for."""

    def __init__(self) -> None:
        self._waiting: dict[str, _Waiting] = {}

    def expect(
        self,
        request_id: str,
        expects: type[M],
        on_reply: Callable[[M], None],
        on_error: Callable[[ChatClientError], None],
        on_drop: Callable[[], None] | None = None,
    ) -> None:
        dropped = on_drop or (lambda: on_error(NotConnectedError("the connection dropped")))
        self._waiting[request_id] = _Waiting(expects, on_reply, on_error, dropped)

    def settle(self, request_id: str, reply: BaseModel) -> bool:
        """Hand `reply` to its request; False when no request waits for that id."""
        waiting = self._waiting.pop(request_id, None)
        if waiting is None:
            return False
        if isinstance(reply, ErrorReply):
            waiting.on_error(RequestError.from_reply(reply))
        elif isinstance(reply, waiting.expects):
            waiting.on_reply(reply)
        else:
            kind = getattr(reply, "type", type(reply).__name__)
            waiting.on_error(RequestError(ErrorCode.INTERNAL, f"unexpected {kind} reply"))
        return True

    def drop_all(self) -> None:
        """The connection ended: every request hears so, once."""
        waiting, self._waiting = self._waiting, {}
        for request in waiting.values():
            request.on_drop()

    def clear(self) -> list[str]:
        """Forget every request; return their ids."""
        ids = list(self._waiting)
        self._waiting.clear()
        return ids
