"""File sharing on the wire (feature `files`): the `upload` request, its `upload_ready` reply
and the `file` object a `message` or `dm` carries.

The bytes themselves never travel on the chat connection: `upload_ready.url` is an HTTP
capability the client `PUT`s them to, and `file.url` one anybody who was sent the message
can `GET`. This module only describes the lines; it does no I/O.

Rules of a file name: 1-255 characters on one line (length and control characters are
`invalid_text`, as for every single-line string), and no `/`, no `\\`, no leading `.`
(`invalid_message`): the name is only ever shown, but a name that cannot be a path
component anywhere is one a careless receiver cannot misuse either.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from .fields import NickName, RequestId, RoomName
from .limits import LINE_CONTROL_CHARS

__all__ = [
    "FEATURE_FILES",
    "MAX_FILE_NAME",
    "FileInfo",
    "FileName",
    "Sha256Hex",
    "Upload",
    "UploadReady",
    "file_message_text",
    "format_size",
]

FEATURE_FILES = "files"
MAX_FILE_NAME = 255
MAX_FILE_SIZE = 2**53  # far beyond any --max-file; keeps sizes exact in every JSON reader

_SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")


def _check_file_name(value: str) -> str:
    if not value or len(value) > MAX_FILE_NAME:
        raise PydanticCustomError(
            "invalid_text", "a file name is 1-{limit} characters", {"limit": MAX_FILE_NAME}
        )
    if LINE_CONTROL_CHARS.search(value) is not None:
        raise PydanticCustomError(
            "invalid_text", "holds a control character (it must be a single line)"
        )
    if "/" in value or "\\" in value:
        raise PydanticCustomError("invalid_file_name", "a file name holds no / and no \\")
    if value.startswith("."):
        raise PydanticCustomError("invalid_file_name", "a file name does not start with .")
    return value


def _check_sha256(value: str) -> str:
    if _SHA256_RE.fullmatch(value) is None:
        raise PydanticCustomError("invalid_sha256", "sha256 is 64 hex digits")
    return value.lower()


FileName = Annotated[
    str,
    AfterValidator(_check_file_name),
    Field(
        json_schema_extra={
            "minLength": 1,
            "maxLength": MAX_FILE_NAME,
            "description": "one line; no / or \\; no leading .",
        }
    ),
]
Sha256Hex = Annotated[
    str,
    AfterValidator(_check_sha256),
    Field(json_schema_extra={"pattern": "^[0-9a-fA-F]{64}$", "description": "read as lower case"}),
]
FileSize = Annotated[int, Field(ge=1, le=MAX_FILE_SIZE)]


class Upload(BaseModel):
    """`upload`: announce a file for a room (`room`) or a person (`to`); exactly one of the two.

    The server answers `upload_ready` (or `error`: `file_too_large`, `limit_reached`,
    `not_in_room`, `no_such_user`); asking again for the same file resumes it.
    """

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")

    type: Literal["upload"] = "upload"
    id: RequestId | None = None
    room: RoomName | None = None
    to: NickName | None = None
    name: FileName
    size: FileSize
    sha256: Sha256Hex

    @model_validator(mode="after")
    def _one_target(self) -> Upload:
        if (self.room is None) == (self.to is None):
            raise ValueError("give `room` or `to`, exactly one")
        return self


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")


class UploadReady(_Event):
    """`upload_ready`: PUT the bytes from `offset` to `url` (a one-time capability)."""

    type: Literal["upload_ready"] = "upload_ready"
    file: str
    url: str
    offset: int
    re: str | None = None


class FileInfo(_Event):
    """`file` of a `message` or `dm`: `url` is a download capability; `expired` once gone."""

    id: str
    name: str
    size: int
    sha256: str
    url: str
    expired: Literal[True] | None = None


_UNITS = ("kB", "MB", "GB", "TB")


def format_size(size: int) -> str:
    """A size for people, in decimal units: `512 B`, `2.1 MB`, `17 GB`."""
    if size < 1000:
        return f"{size} B"
    value = float(size)
    for unit in _UNITS:
        value /= 1000
        if value < 999.95 or unit == _UNITS[-1]:
            return f"{value:.1f} {unit}" if value < 99.95 else f"{value:.0f} {unit}"
    raise AssertionError("unreachable")


def file_message_text(name: str, size: int) -> str:
    """The `text` of the message that shares a file: its name and its size."""
    return f"{name} ({format_size(size)})"
