"""The two screens: where to connect, and the chat itself."""

from __future__ import annotations

from .chat import ChatScreen
from .connect import ConnectRequest, ConnectScreen, Problem, parse_address

__all__ = ["ChatScreen", "ConnectRequest", "ConnectScreen", "Problem", "parse_address"]
