"""Messages the server sends to clients, one pydantic model per wire `type`.

Direct replies carry `re` (the request's `id`); broadcasts never do.
Fields are plain strings here: the server builds these from values it has
already validated, and a client must sanitise what it displays anyway.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SerializerFunctionWrapHandler,
    Tag,
    model_serializer,
)

from .files import FileInfo, UploadReady
from .limits import PROTOCOL_VERSION
from .moderation import BanList, Banned, Kicked, ModeChanged

__all__ = [
    "Ack",
    "AnyHistoryPage",
    "AwayChanged",
    "Bye",
    "ChatMessage",
    "DirectMessage",
    "DmHistoryPage",
    "ErrorReply",
    "HistoryPage",
    "Joined",
    "Left",
    "Members",
    "MessageDeleted",
    "MessageEdited",
    "NickChanged",
    "ReactionChanged",
    "ReadMarker",
    "RoomInfo",
    "RoomList",
    "RoomSummary",
    "SearchResults",
    "ServerHello",
    "ServerMessage",
    "ServerPing",
    "ServerPong",
    "TopicChanged",
    "TypingNotice",
    "Welcome",
]


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, strict=True, extra="ignore", validate_by_name=True)


class ServerHello(_Event):
    """`hello`: the server's greeting, sent first on every connection."""

    type: Literal["hello"] = "hello"
    server: str
    protocol: int = PROTOCOL_VERSION
    motd: str = ""
    password_required: bool = False
    # Version 2: what the server supports, and where its TLS listener is (null when off).
    features: list[str] = Field(default_factory=list)
    tls_port: int | None = None
    fingerprint: str | None = None

    @model_serializer(mode="wrap")
    def _null_when_off(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # The contract says `null` when TLS is off, not absent; `encode` drops other Nones.
        data: dict[str, Any] = handler(self)
        data.setdefault("tls_port", None)
        data.setdefault("fingerprint", None)
        return data


class Welcome(_Event):
    """`welcome`: registration succeeded; `rooms` names every existing room.

    Version 2 adds `features` (the ones granted: requested and supported) and
    `account` (the nick is a logged-in account).
    """

    type: Literal["welcome"] = "welcome"
    nick: str
    rooms: list[str]
    features: list[str] = Field(default_factory=list)
    account: bool = False
    re: str | None = None


class RoomInfo(_Event):
    """`room`: sent to a joiner before its history."""

    type: Literal["room"] = "room"
    room: str
    topic: str
    members: list[str]
    read: int | None = None  # version 2 (`read`): the caller's marker, 0 when none
    away: dict[str, str] | None = None  # version 2 (`away`): members who are away, and why
    ops: list[str] | None = None  # version 2 (`moderation`): the room's ops among its members
    re: str | None = None


class ChatMessage(_Event):
    """`message`: a stored room message; `seq` counts from 1 per room.

    Version 2: `rev` is the room's change counter at the message's latest change
    (every message from a version-2 server carries it); the other new fields are
    present only where set: `reply_to`, `edited` (ts of the last edit), `deleted`
    (then `text` is ""), `reactions` (emoji to nicks, in the order they reacted).
    """

    type: Literal["message"] = "message"
    room: str
    seq: int
    sender: str = Field(alias="from")
    text: str
    action: bool = False
    ts: str
    rev: int | None = None
    reply_to: int | None = None
    edited: str | None = None
    deleted: bool | None = None
    reactions: dict[str, list[str]] | None = None
    file: FileInfo | None = None


class DirectMessage(_Event):
    """`dm`: a private message, to its recipient and as an echo to its sender.

    `seq` (version 2) numbers a stored conversation between two accounts, from 1.
    """

    type: Literal["dm"] = "dm"
    sender: str = Field(alias="from")
    to: str
    text: str
    ts: str
    seq: int | None = None
    file: FileInfo | None = None


class Joined(_Event):
    """`joined`: somebody entered a room."""

    type: Literal["joined"] = "joined"
    room: str
    nick: str
    ts: str


class Left(_Event):
    """`left`: somebody left a room (part, quit or disconnect)."""

    type: Literal["left"] = "left"
    room: str
    nick: str
    reason: str | None = None
    ts: str


class NickChanged(_Event):
    """`nick`: somebody changed nick."""

    type: Literal["nick"] = "nick"
    old: str
    new: str
    ts: str


class TopicChanged(_Event):
    """`topic`: a room's topic was set."""

    type: Literal["topic"] = "topic"
    room: str
    topic: str
    by: str
    ts: str


class Members(_Event):
    """`members`: the answer to `who`."""

    type: Literal["members"] = "members"
    room: str
    members: list[str]
    away: dict[str, str] | None = None  # version 2 (`away`)
    re: str | None = None


class RoomSummary(BaseModel):
    """One entry of `room_list`."""

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")

    room: str
    topic: str
    members: int


class RoomList(_Event):
    """`room_list`: the answer to `rooms`."""

    type: Literal["room_list"] = "room_list"
    rooms: list[RoomSummary]
    re: str | None = None


class MessageEdited(_Event):
    """`edited`: a message's author changed its text (feature `edit`)."""

    type: Literal["edited"] = "edited"
    room: str
    seq: int
    text: str
    by: str
    ts: str
    rev: int


class MessageDeleted(_Event):
    """`deleted`: a message was erased (to connections granted `edit`)."""

    type: Literal["deleted"] = "deleted"
    room: str
    seq: int
    by: str
    ts: str
    rev: int


class ReactionChanged(_Event):
    """`reaction`: somebody added or (`removed`) took back a reaction (feature `react`)."""

    type: Literal["reaction"] = "reaction"
    room: str
    seq: int
    emoji: str
    nick: str
    removed: bool
    ts: str
    rev: int


class TypingNotice(_Event):
    """`typing`: somebody is typing in `room` (absent: to you); never stored."""

    type: Literal["typing"] = "typing"
    room: str | None = None
    sender: str = Field(alias="from")
    state: str


class HistoryPage(_Event):
    """`history`: stored messages, oldest first; `more` says further ones exist that way."""

    type: Literal["history"] = "history"
    room: str
    messages: list[ChatMessage]
    more: bool
    re: str | None = None


class DmHistoryPage(_Event):
    """`history` with `with` (version 2): a page of the caller's stored DM conversation."""

    type: Literal["history"] = "history"
    with_: str = Field(alias="with")
    messages: list[DirectMessage]
    more: bool
    # The caller's read marker in this conversation (0: none), as `read` in a `room`
    # reply: how a client counts unread DMs at login.
    read: int = 0
    re: str | None = None


def _history_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "with" if "with" in value else "room"
    return "with" if isinstance(value, DmHistoryPage) else "room"


# Both `history` replies share the wire type; a `with` field tells them apart.
AnyHistoryPage = Annotated[
    Annotated[HistoryPage, Tag("room")] | Annotated[DmHistoryPage, Tag("with")],
    Discriminator(_history_kind),
]


class ReadMarker(_Event):
    """`read` (version 2): another session of the same account moved a read marker."""

    type: Literal["read"] = "read"
    room: str | None = None
    with_: str | None = Field(default=None, alias="with")
    seq: int


class AwayChanged(_Event):
    """`away` (version 2): a user sharing a room went away (`text`) or came back (null)."""

    type: Literal["away"] = "away"
    nick: str
    text: str | None = None

    @model_serializer(mode="wrap")
    def _null_when_back(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        data.setdefault("text", None)
        return data


class Ack(_Event):
    """`ack`: a request with an `id` succeeded; for `say`, `seq` is the message's seq."""

    type: Literal["ack"] = "ack"
    re: str
    seq: int | None = None


class ErrorReply(_Event):
    """`error`: a request was refused (it had no effect) or a line was unreadable."""

    type: Literal["error"] = "error"
    code: str
    message: str
    re: str | None = None


class ServerPing(_Event):
    """`ping`: the server checks a silent client is alive; answer with `pong`."""

    type: Literal["ping"] = "ping"
    token: str | None = None


class ServerPong(_Event):
    """`pong`: the answer to a client's `ping`."""

    type: Literal["pong"] = "pong"
    token: str | None = None
    re: str | None = None


class Bye(_Event):
    """`bye`: the server is closing this connection, and why."""

    type: Literal["bye"] = "bye"
    reason: str


SearchHit = Annotated[ChatMessage | DirectMessage, Field(discriminator="type")]


class SearchResults(_Event):
    """`search_results` (feature `search`): hits newest first, room `message` objects (or `dm`
    objects for a search `with` a nick); `more` says older hits exist, `cursor` pages on."""

    type: Literal["search_results"] = "search_results"
    query: str
    results: list[SearchHit]
    more: bool
    cursor: str | None = None
    with_: str | None = Field(default=None, alias="with")
    re: str | None = None


ServerMessage = Annotated[
    ServerHello
    | Welcome
    | RoomInfo
    | ChatMessage
    | DirectMessage
    | Joined
    | Left
    | NickChanged
    | TopicChanged
    | MessageEdited
    | MessageDeleted
    | ReactionChanged
    | TypingNotice
    | Members
    | RoomList
    | AnyHistoryPage
    | ReadMarker
    | AwayChanged
    | Ack
    | ErrorReply
    | ServerPing
    | ServerPong
    | Bye
    | UploadReady
    | SearchResults
    | ModeChanged
    | Kicked
    | Banned
    | BanList,
    Field(discriminator="type"),
]
