"""Validated string types shared by the message models.

Each check raises a pydantic custom error whose type is the wire error code
(`invalid_nick`, `invalid_room`, `invalid_text`), so the codec can map a
validation failure to its code without knowing which field it came from.
Lengths are counted in characters, not bytes.

The chat text limit is configurable per server: pass
``context={"max_text": N}`` to validation; without it the contract's 4,000
applies.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field, ValidationInfo
from pydantic_core import PydanticCustomError

from .limits import (
    CONTROL_CHARS,
    LINE_CONTROL_CHARS,
    MAX_ACCOUNT_PASSWORD,
    MAX_AWAY,
    MAX_CLIENT_NAME,
    MAX_EMOJI,
    MAX_FEATURES,
    MAX_ID,
    MAX_PASSWORD,
    MAX_REASON,
    MAX_SEQ,
    MAX_TEXT_CHARS,
    MAX_TOKEN,
    MAX_TOPIC,
    MIN_ACCOUNT_PASSWORD,
    NICK_RE,
    ROOM_RE,
    WHITESPACE,
)

__all__ = [
    "AccountPassword",
    "AwayText",
    "ChatText",
    "ClientName",
    "Emoji",
    "FeatureNames",
    "LoginPassword",
    "NickName",
    "Password",
    "Reason",
    "RequestId",
    "RoomName",
    "Seq",
    "Token",
    "TopicText",
    "normalize_room",
]


def _check_nick(value: str) -> str:
    if NICK_RE.fullmatch(value) is None:
        raise PydanticCustomError(
            "invalid_nick", "a nick is 1-32 characters: ASCII letters, digits, _ or -"
        )
    return value


def normalize_room(value: str) -> str:
    """Strip one leading `#`; raise the `invalid_room` error if the rest is no room name."""
    name = value[1:] if value.startswith("#") else value
    if ROOM_RE.fullmatch(name) is None:
        raise PydanticCustomError(
            "invalid_room",
            "a room name is 1-64 characters: lowercase ASCII letters, digits, _ or -",
        )
    return name


def _check_chat_text(value: str, info: ValidationInfo) -> str:
    context: Any = info.context
    limit = context.get("max_text", MAX_TEXT_CHARS) if isinstance(context, dict) else MAX_TEXT_CHARS
    if not value:
        raise PydanticCustomError("invalid_text", "text is empty")
    if len(value) > limit:
        raise PydanticCustomError(
            "invalid_text", "text is longer than {limit} characters", {"limit": limit}
        )
    if CONTROL_CHARS.search(value) is not None:
        raise PydanticCustomError(
            "invalid_text", "text holds a control character (only newline and tab are allowed)"
        )
    return value


def _single_line(limit: int) -> AfterValidator:
    def check(value: str) -> str:
        if len(value) > limit:
            raise PydanticCustomError(
                "invalid_text", "longer than {limit} characters", {"limit": limit}
            )
        if LINE_CONTROL_CHARS.search(value) is not None:
            raise PydanticCustomError(
                "invalid_text", "holds a control character (it must be a single line)"
            )
        return value

    return AfterValidator(check)


def _check_emoji(value: str) -> str:
    if not value or len(value) > MAX_EMOJI:
        raise PydanticCustomError(
            "invalid_text", "an emoji is 1-{limit} characters", {"limit": MAX_EMOJI}
        )
    if LINE_CONTROL_CHARS.search(value) is not None or WHITESPACE.search(value) is not None:
        raise PydanticCustomError(
            "invalid_text", "an emoji holds no whitespace or control character"
        )
    return value


def _schema(**extra: Any) -> Any:
    # The checks above run in Python and do not show in JSON Schema; state them for bot writers.
    return Field(json_schema_extra=extra)


NickName = Annotated[
    str,
    AfterValidator(_check_nick),
    _schema(pattern="^" + NICK_RE.pattern + "$", maxLength=32, minLength=1),
]
RoomName = Annotated[
    str,
    AfterValidator(normalize_room),
    _schema(pattern="^#?" + ROOM_RE.pattern + "$", description="a leading # is stripped"),
]
ChatText = Annotated[
    str,
    AfterValidator(_check_chat_text),
    _schema(
        minLength=1, maxLength=MAX_TEXT_CHARS, description="no control characters but \\n, \\t"
    ),
]
TopicText = Annotated[str, _single_line(MAX_TOPIC), _schema(maxLength=MAX_TOPIC)]
Reason = Annotated[str, _single_line(MAX_REASON), _schema(maxLength=MAX_REASON)]
ClientName = Annotated[str, _single_line(MAX_CLIENT_NAME), _schema(maxLength=MAX_CLIENT_NAME)]
Token = Annotated[str, _single_line(MAX_TOKEN), _schema(maxLength=MAX_TOKEN)]
Emoji = Annotated[
    str, AfterValidator(_check_emoji), _schema(minLength=1, maxLength=MAX_EMOJI, pattern=r"^\S+$")
]
Password = Annotated[str, Field(max_length=MAX_PASSWORD)]


def _long_enough(value: str) -> str:
    if len(value) < MIN_ACCOUNT_PASSWORD:
        raise PydanticCustomError(
            "invalid_text", "shorter than {limit} characters", {"limit": MIN_ACCOUNT_PASSWORD}
        )
    return value


# Version 2: a new account password (`register`), and the one given at login, which
# is only compared (a too-short one is simply wrong, so the rule is not disclosed twice).
AccountPassword = Annotated[
    str,
    _single_line(MAX_ACCOUNT_PASSWORD),
    AfterValidator(_long_enough),
    _schema(minLength=MIN_ACCOUNT_PASSWORD, maxLength=MAX_ACCOUNT_PASSWORD),
]
LoginPassword = Annotated[
    str, _single_line(MAX_ACCOUNT_PASSWORD), _schema(maxLength=MAX_ACCOUNT_PASSWORD)
]
AwayText = Annotated[str, _single_line(MAX_AWAY), _schema(maxLength=MAX_AWAY)]
# Version 2 feature names a client asks for; unknown names are ignored by the server.
FeatureNames = Annotated[list[Token], Field(max_length=MAX_FEATURES)]
RequestId = Annotated[str, Field(max_length=MAX_ID)]
Seq = Annotated[int, Field(ge=0, le=MAX_SEQ)]
