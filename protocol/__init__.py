"""The chat wire protocol (version 2): pure models, codec, framing, discovery records (no I/O).

See docs/PROTOCOL.md for the user-facing reference.
"""

from __future__ import annotations

from .client_messages import (
    ChangeNick,
    ClientMessage,
    GetHistory,
    Join,
    ListRooms,
    Part,
    Ping,
    Pong,
    Quit,
    Register,
    Say,
    SendDm,
    SetTopic,
    Who,
)
from .codec import (
    decode_client_line,
    decode_server_line,
    encode,
    encode_ack,
    encode_chat_message,
    validation_error,
)
from .discovery import SERVICE_TYPE, Announcement, instance_name, parse_txt, server_name_of
from .errors import ErrorCode, LineTooLong, ProtocolError
from .features import Feature, grant
from .fields import normalize_room
from .files import FEATURE_FILES, FileInfo, Upload, UploadReady, file_message_text, format_size
from .fingerprints import InvalidFingerprint, fingerprint_of, normalize_fingerprint
from .framing import LineFramer
from .limits import PROTOCOL_VERSION
from .server_messages import (
    Ack,
    Bye,
    ChatMessage,
    DirectMessage,
    ErrorReply,
    HistoryPage,
    Joined,
    Left,
    Members,
    NickChanged,
    RoomInfo,
    RoomList,
    RoomSummary,
    ServerHello,
    ServerMessage,
    ServerPing,
    ServerPong,
    TopicChanged,
    Welcome,
)
from .timestamps import format_ts, now_ms, parse_ts

__all__ = [
    "FEATURE_FILES",
    "PROTOCOL_VERSION",
    "SERVICE_TYPE",
    "Ack",
    "Announcement",
    "Bye",
    "ChangeNick",
    "ChatMessage",
    "ClientMessage",
    "DirectMessage",
    "ErrorCode",
    "ErrorReply",
    "Feature",
    "FileInfo",
    "GetHistory",
    "HistoryPage",
    "InvalidFingerprint",
    "Join",
    "Joined",
    "Left",
    "LineFramer",
    "LineTooLong",
    "ListRooms",
    "Members",
    "NickChanged",
    "Part",
    "Ping",
    "Pong",
    "ProtocolError",
    "Quit",
    "Register",
    "RoomInfo",
    "RoomList",
    "RoomSummary",
    "Say",
    "SendDm",
    "ServerHello",
    "ServerMessage",
    "ServerPing",
    "ServerPong",
    "SetTopic",
    "TopicChanged",
    "Upload",
    "UploadReady",
    "Welcome",
    "Who",
    "decode_client_line",
    "decode_server_line",
    "encode",
    "encode_ack",
    "encode_chat_message",
    "file_message_text",
    "fingerprint_of",
    "format_size",
    "format_ts",
    "grant",
    "instance_name",
    "normalize_fingerprint",
    "normalize_room",
    "now_ms",
    "parse_ts",
    "parse_txt",
    "server_name_of",
    "validation_error",
]
