"""The chat screen's widgets; each gets its data from the screen, none touches the network."""

from __future__ import annotations

from .composer import Composer
from .member_list import MemberList
from .message_log import MessageLog
from .room_list import RoomList
from .status_bar import StatusBar

__all__ = ["Composer", "MemberList", "MessageLog", "RoomList", "StatusBar"]
