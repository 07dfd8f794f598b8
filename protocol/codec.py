"""Encoding and decoding of protocol lines.

`encode(message)` gives one compact UTF-8 JSON line ending in `\\n`. It is on
the broadcast hot path: encode once, write the same bytes to every member.

`decode_client_line(line)` and `decode_server_line(line)` take one framed line
(no newline) and return a model, or raise `ProtocolError` with the contract's
code: `bad_encoding` (not UTF-8), `bad_json` (not JSON), `invalid_nick`,
`invalid_room`, `invalid_text` (a field's own rule) or `invalid_message`
(anything else), with a message that names the field. Bytes go straight to
pydantic's JSON validator; there is no `json.loads` on the good path.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from .client_messages import ClientMessage
from .errors import ErrorCode, ProtocolError
from .limits import MAX_ID, MAX_TEXT_CHARS
from .server_messages import ServerMessage

__all__ = [
    "CLIENT_ADAPTER",
    "SERVER_ADAPTER",
    "decode_client_line",
    "decode_server_line",
    "encode",
    "encode_ack",
    "encode_chat_message",
    "encode_reaction",
    "validation_error",
]

CLIENT_ADAPTER: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)
SERVER_ADAPTER: TypeAdapter[ServerMessage] = TypeAdapter(ServerMessage)

_FIELD_CODES = {
    "invalid_nick": ErrorCode.INVALID_NICK,
    "invalid_room": ErrorCode.INVALID_ROOM,
    "invalid_text": ErrorCode.INVALID_TEXT,
}
_DEFAULT_CONTEXT = {"max_text": MAX_TEXT_CHARS}
_T = TypeVar("_T")


def encode(message: BaseModel) -> bytes:
    """Serialise a message as one JSON line (UTF-8, compact, `\\n`-terminated)."""
    return (
        message.__pydantic_serializer__.to_json(message, by_alias=True, exclude_none=True) + b"\n"
    )


def encode_ack(request_id: str, seq: int | None = None) -> bytes:
    """`encode(Ack(re=request_id, seq=seq))`, without building a model: one per `say`."""
    re_json = encode_basestring(request_id).encode()
    if seq is None:
        return b'{"type":"ack","re":%s}\n' % re_json
    return b'{"type":"ack","re":%s,"seq":%d}\n' % (re_json, seq)


def encode_chat_message(
    room: str,
    seq: int,
    sender: str,
    text: str,
    action: bool,
    ts: str,
    rev: int,
    reply_to: int | None = None,
) -> bytes:
    """`encode(ChatMessage(...))` of a new message without building a model: once per message.

    `room`, `sender` and `ts` are validated names and timestamps (nothing to escape).
    A new message is never edited, deleted or reacted to, so those fields are absent.
    """
    args = (
        room.encode(),
        seq,
        sender.encode(),
        encode_basestring(text).encode(),  # what json.dumps(text, ensure_ascii=False) calls
        b"true" if action else b"false",
        ts.encode(),
        rev,
    )
    if reply_to is None:
        return _NEW_MESSAGE % args
    return _NEW_REPLY % (*args, reply_to)


_NEW_MESSAGE = (
    b'{"type":"message","room":"%s","seq":%d,"from":"%s","text":%s,"action":%s,"ts":"%s",'
    b'"rev":%d}\n'
)
_NEW_REPLY = _NEW_MESSAGE[:-2] + b',"reply_to":%d}\n'


def encode_reaction(
    room: str, seq: int, emoji: str, nick: str, removed: bool, ts: str, rev: int
) -> bytes:
    """`encode(ReactionChanged(...))` without building a model: once per reaction.

    `room`, `nick` and `ts` are validated names and timestamps; the emoji is escaped.
    """
    return _REACTION % (
        room.encode(),
        seq,
        encode_basestring(emoji).encode(),
        nick.encode(),
        b"true" if removed else b"false",
        ts.encode(),
        rev,
    )


_REACTION = (
    b'{"type":"reaction","room":"%s","seq":%d,"emoji":%s,"nick":"%s","removed":%s,'
    b'"ts":"%s","rev":%d}\n'
)


def decode_client_line(line: bytes, *, max_text: int = MAX_TEXT_CHARS) -> ClientMessage:
    """Decode one line a client sent.

    Args:
        line: a framed line, without its newline.
        max_text: the longest chat text this server accepts, in characters.

    Raises:
        ProtocolError: the line is not a valid client message; `re` is set when
            the line's `id` could be read.
    """
    context = _DEFAULT_CONTEXT if max_text == MAX_TEXT_CHARS else {"max_text": max_text}
    return _decode(CLIENT_ADAPTER, line, context)


def decode_server_line(line: bytes) -> ServerMessage:
    """Decode one line a server sent (for clients); raises `ProtocolError`."""
    return _decode(SERVER_ADAPTER, line, None)


def _decode(adapter: TypeAdapter[_T], line: bytes, context: dict[str, Any] | None) -> _T:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(
            ErrorCode.BAD_ENCODING, f"line is not valid UTF-8 (byte {exc.start})"
        ) from None
    try:
        return adapter.validate_json(text, context=context)
    except ValidationError as exc:
        raise _to_protocol_error(exc, text) from None


def _to_protocol_error(exc: ValidationError, text: str) -> ProtocolError:
    first = exc.errors(include_url=False)[0]
    if first["type"] == "json_invalid":
        return ProtocolError(ErrorCode.BAD_JSON, "line is not valid JSON")
    code = _FIELD_CODES.get(first["type"], ErrorCode.INVALID_MESSAGE)
    return ProtocolError(code, _describe(first, tagged=True), re=_read_id(text))


def validation_error(exc: ValidationError) -> ProtocolError:
    """The wire code and plain-words message for a model built directly (not from a line).

    A client building a request (`Say(room=..., text=...)`) gets the same code and
    message the server would answer with, so it can refuse the request locally.
    """
    first = exc.errors(include_url=False)[0]
    code = _FIELD_CODES.get(first["type"], ErrorCode.INVALID_MESSAGE)
    return ProtocolError(code, _describe(first, tagged=False))


def _describe(error: ErrorDetails, *, tagged: bool) -> str:
    kind = error["type"]
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "a message must be a JSON object"
    if kind == "union_tag_not_found":
        return "field 'type' is missing"
    if kind == "union_tag_invalid":
        found = error.get("ctx", {}).get("tag", "?")
        return f"field 'type': unknown message type {found!r}"
    # Through the union the location starts with the tag: drop it to name the field.
    path = [str(part) for part in error["loc"][1 if tagged else 0 :]]
    field = ".".join(path) if path else "message"
    message = error["msg"].removeprefix("Value error, ")
    if kind == "missing":
        return f"field '{field}' is required"
    return f"field '{field}': {message}" if path else message


def _read_id(text: str) -> str | None:
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    found = obj.get("id") if isinstance(obj, dict) else None
    return found if isinstance(found, str) and len(found) <= MAX_ID else None
