"""Search on the wire (feature `search`): the `search` request and its `search_results` reply.

`query` is what a person typed (1-200 characters, one line). Every word must
match; `"a phrase"` matches exactly; `word*` is a prefix. Nothing a person can
type is an error beyond the field's own limits: the server takes search
operators of its index literally. `before` is the opaque `cursor` of a previous
reply; `with` searches the caller's own DM conversation with that nick.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from .fields import NickName, RequestId, RoomName, _single_line

__all__ = [
    "FEATURE_SEARCH",
    "MAX_CURSOR",
    "MAX_QUERY",
    "SEARCH_DEFAULT",
    "SEARCH_MAX",
    "Search",
]

FEATURE_SEARCH = "search"
MAX_QUERY = 200
MAX_CURSOR = 200
SEARCH_DEFAULT = 20
SEARCH_MAX = 100


def _not_empty(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("invalid_text", "a search query holds at least one character")
    return value


Query = Annotated[str, _single_line(MAX_QUERY), AfterValidator(_not_empty)]
Cursor = Annotated[str, _single_line(MAX_CURSOR)]


class Search(BaseModel):
    """`search`: messages matching `query`, newest first, in a room, every room or a DM."""

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore", validate_by_name=True)

    id: RequestId | None = None
    type: Literal["search"] = "search"
    query: Query
    room: RoomName | None = None
    with_: NickName | None = Field(default=None, alias="with")
    sender: NickName | None = Field(default=None, alias="from")
    limit: Annotated[int, Field(ge=1, le=SEARCH_MAX)] = SEARCH_DEFAULT
    before: Cursor | None = None

    @model_validator(mode="after")
    def _room_or_with(self) -> Search:
        if self.room is not None and self.with_ is not None:
            raise ValueError("give `room` or `with`, not both")
        return self
