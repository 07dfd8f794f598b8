"""JSON Schema of both message unions, for people writing bots in other languages."""

from __future__ import annotations

from typing import Any

from .codec import CLIENT_ADAPTER, SERVER_ADAPTER

__all__ = ["json_schema"]


def json_schema() -> dict[str, Any]:
    """Return `{"client": schema, "server": schema}`: what each side may send."""
    return {
        "$comment": "chat wire protocol v1: one JSON object per line, discriminated on 'type'",
        "client": CLIENT_ADAPTER.json_schema(by_alias=True),
        "server": SERVER_ADAPTER.json_schema(by_alias=True),
    }
