"""Messages a client sends to the server, one pydantic model per wire `type`.

Models are strict (a JSON string is never coerced to an int or a bool), frozen,
and ignore unknown fields so newer clients can talk to this server.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .fields import (
    AccountPassword,
    AwayText,
    ChatText,
    ClientName,
    Emoji,
    FeatureNames,
    LoginPassword,
    NickName,
    Password,
    Reason,
    RequestId,
    RoomName,
    Seq,
    Token,
    TopicText,
)
from .files import Upload
from .limits import HISTORY_DEFAULT, HISTORY_MAX
from .moderation import Ban, GetBans, Kick, SetOp, Unban
from .search import Search

__all__ = [
    "ChangeNick",
    "ClientMessage",
    "DeleteMessage",
    "EditMessage",
    "GetHistory",
    "Join",
    "ListRooms",
    "MarkRead",
    "Part",
    "Ping",
    "Pong",
    "Quit",
    "React",
    "Register",
    "RegisterAccount",
    "Say",
    "SendDm",
    "SetAway",
    "SetTopic",
    "Typing",
    "Who",
]


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")

    id: RequestId | None = None


class Register(_Request):
    """`hello`: register a nick (once per connection); `features` asks for version-2 ones."""

    type: Literal["hello"] = "hello"
    nick: NickName
    password: Password | None = None
    client: ClientName | None = None
    features: FeatureNames | None = None
    account_password: LoginPassword | None = None  # version 2: the nick is an account


class Join(_Request):
    """`join`: enter a room, creating it; `since` asks for the messages after that seq.

    `changed_since` (version 2) asks instead for every message changed after that rev.
    """

    type: Literal["join"] = "join"
    room: RoomName
    since: Seq | None = None
    changed_since: Seq | None = None

    @model_validator(mode="after")
    def _one_catch_up(self) -> Join:
        if self.since is not None and self.changed_since is not None:
            raise ValueError("give `since` or `changed_since`, not both")
        return self


class Part(_Request):
    """`part`: leave a room."""

    type: Literal["part"] = "part"
    room: RoomName
    reason: Reason | None = None


class Say(_Request):
    """`say`: send text to a room the client has joined."""

    type: Literal["say"] = "say"
    room: RoomName
    text: ChatText
    action: bool = False
    reply_to: Seq | None = None  # version 2: the seq of the message this answers


class SendDm(_Request):
    """`dm`: send a private message to a nick that is online."""

    type: Literal["dm"] = "dm"
    to: NickName
    text: ChatText


class ChangeNick(_Request):
    """`nick`: change one's nick."""

    type: Literal["nick"] = "nick"
    nick: NickName


class SetTopic(_Request):
    """`topic`: set a room's topic ("" clears it)."""

    type: Literal["topic"] = "topic"
    room: RoomName
    topic: TopicText


class Who(_Request):
    """`who`: ask for a room's members."""

    type: Literal["who"] = "who"
    room: RoomName


class ListRooms(_Request):
    """`rooms`: ask for every room with its topic and member count."""

    type: Literal["rooms"] = "rooms"


class GetHistory(_Request):
    """`history`: page through a room's stored messages, or (`with`) a DM conversation.

    At most one of `before`, `after`, `around` (seqs) and `changed_since` (a rev).
    """

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore", validate_by_name=True)

    type: Literal["history"] = "history"
    room: RoomName | None = None
    with_: NickName | None = Field(default=None, alias="with")
    before: Seq | None = None
    after: Seq | None = None
    around: Seq | None = None
    changed_since: Seq | None = None
    limit: Annotated[int, Field(ge=1, le=HISTORY_MAX)] = HISTORY_DEFAULT

    @model_validator(mode="after")
    def _one_direction(self) -> GetHistory:
        given = [self.before, self.after, self.around, self.changed_since]
        if sum(value is not None for value in given) > 1:
            raise ValueError("give at most one of `before`, `after`, `around`, `changed_since`")
        if (self.room is None) == (self.with_ is None):
            raise ValueError("give `room` or `with`")
        if self.with_ is not None and (self.around is not None or self.changed_since is not None):
            raise ValueError("`around` and `changed_since` page rooms, not DM conversations")
        return self


class EditMessage(_Request):
    """`edit`: replace the text of one's own message (version 2, feature `edit`)."""

    type: Literal["edit"] = "edit"
    room: RoomName
    seq: Seq
    text: ChatText


class DeleteMessage(_Request):
    """`delete`: erase a message (its author, a room op or a server admin)."""

    type: Literal["delete"] = "delete"
    room: RoomName
    seq: Seq


class React(_Request):
    """`react`: add (or with `remove`, take back) one's reaction to a message."""

    type: Literal["react"] = "react"
    room: RoomName
    seq: Seq
    emoji: Emoji
    remove: bool = False


class Typing(_Request):
    """`typing`: tell a room (or with `to`, a user) that one is typing; never stored."""

    type: Literal["typing"] = "typing"
    room: RoomName | None = None
    to: NickName | None = None
    state: Literal["active", "paused", "done"]

    @model_validator(mode="after")
    def _one_target(self) -> Typing:
        if (self.room is None) == (self.to is None):
            raise ValueError("give exactly one of `room` or `to`")
        return self


class RegisterAccount(_Request):
    """`register` (version 2): make the registered nick an account with this password."""

    type: Literal["register"] = "register"
    password: AccountPassword


class MarkRead(_Request):
    """`mark_read` (version 2): read up to `seq` in a room or a DM conversation (`with`)."""

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore", validate_by_name=True)

    type: Literal["mark_read"] = "mark_read"
    room: RoomName | None = None
    with_: NickName | None = Field(default=None, alias="with")
    seq: Seq

    @model_validator(mode="after")
    def _one_target(self) -> MarkRead:
        if (self.room is None) == (self.with_ is None):
            raise ValueError("give `room` or `with`")
        return self


class SetAway(_Request):
    """`away` (version 2): be away with `text`; empty or absent means back."""

    type: Literal["away"] = "away"
    text: AwayText | None = None


class Ping(_Request):
    """`ping`: the server answers `pong` with the same token."""

    type: Literal["ping"] = "ping"
    token: Token | None = None


class Pong(_Request):
    """`pong`: answers the server's `ping`; never answered, never an error."""

    type: Literal["pong"] = "pong"
    token: Token | None = None


class Quit(_Request):
    """`quit`: leave every room; the server answers `bye` and closes."""

    type: Literal["quit"] = "quit"
    reason: Reason | None = None


ClientMessage = Annotated[
    Register
    | Join
    | Part
    | Say
    | SendDm
    | ChangeNick
    | SetTopic
    | Who
    | ListRooms
    | GetHistory
    | EditMessage
    | DeleteMessage
    | React
    | Typing
    | RegisterAccount
    | MarkRead
    | SetAway
    | Ping
    | Pong
    | Quit
    | Upload
    | Search
    | SetOp
    | Kick
    | Ban
    | Unban
    | GetBans,
    Field(discriminator="type"),
]
