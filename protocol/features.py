"""Feature negotiation (protocol version 2): which optional parts a connection gets.

The server's `hello` lists what it supports; a client's `hello` names what it
wants (unknown names are ignored, so a newer client can ask for features this
server has never heard of); `welcome` carries the intersection. Features only
govern what the server pushes: requests are accepted from any registered
connection.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

__all__ = ["Feature", "grant"]


class Feature(StrEnum):
    """Every feature name of the contract (the wire strings)."""

    ACCOUNTS = "accounts"
    REPLY = "reply"
    EDIT = "edit"
    REACT = "react"
    TYPING = "typing"
    READ = "read"
    SEARCH = "search"
    MODERATION = "moderation"
    FILES = "files"
    AWAY = "away"


def grant(requested: Iterable[str] | None, supported: Iterable[str]) -> list[str]:
    """The features to put in `welcome`: requested and supported, in the server's order.

    Unknown and duplicate names in `requested` are ignored; None (a version-1
    client, which sends no `features`) gets none.
    """
    if requested is None:
        return []
    wanted = set(requested)
    return [name for name in supported if name in wanted]
