"""The old import path of `ChatClient` (now in `client.py`); kept for existing code."""

from __future__ import annotations

from .client import ChatClient, ClientSettings, _plain_reason

__all__ = ["ChatClient", "ClientSettings", "_plain_reason"]
