"""Limits and name rules of the wire protocol (version 2; version 1's rules all hold).

Every number here is the contract's default; the server may be configured
with other values for the ones it exposes as flags (line and text length).
"""

from __future__ import annotations

import re

__all__ = [
    "CONTROL_CHARS",
    "HISTORY_DEFAULT",
    "HISTORY_MAX",
    "JOIN_HISTORY",
    "LINE_CONTROL_CHARS",
    "MAX_ACCOUNT_PASSWORD",
    "MAX_AWAY",
    "MAX_CLIENT_NAME",
    "MAX_EMOJI",
    "MAX_FEATURES",
    "MAX_ID",
    "MAX_LINE_BYTES",
    "MAX_NICK",
    "MAX_PASSWORD",
    "MAX_REACTIONS",
    "MAX_REASON",
    "MAX_ROOM",
    "MAX_SEQ",
    "MAX_TEXT_CHARS",
    "MAX_TOKEN",
    "MAX_TOPIC",
    "MIN_ACCOUNT_PASSWORD",
    "NICK_RE",
    "PROTOCOL_VERSION",
    "REPLAY_MAX",
    "ROOM_RE",
    "WHITESPACE",
]

PROTOCOL_VERSION = 2

MAX_LINE_BYTES = 65_536
MAX_TEXT_CHARS = 4_000
MAX_NICK = 32
MAX_ROOM = 64
MAX_TOPIC = 300
MAX_REASON = 300
MAX_CLIENT_NAME = 100
MAX_TOKEN = 64
MAX_ID = 64
MAX_PASSWORD = 1_024
MIN_ACCOUNT_PASSWORD = 8  # version 2: an account password, one line
MAX_ACCOUNT_PASSWORD = 128
MAX_AWAY = 100  # characters of an away text
MAX_SEQ = 2**63 - 1  # seqs are SQLite integers; a larger `since`/`before`/`after` is refused
MAX_FEATURES = 32  # names in a client `hello`'s `features` (version 2)
MAX_EMOJI = 32  # characters of a reaction's `emoji` (version 2)
MAX_REACTIONS = 20  # distinct emoji on one message (version 2)

JOIN_HISTORY = 50  # messages sent after a join without `since`
REPLAY_MAX = 500  # messages sent after a join with `since`
HISTORY_DEFAULT = 50
HISTORY_MAX = 500

NICK_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
ROOM_RE = re.compile(r"[a-z0-9_-]{1,64}")

# Chat text may hold \t and \n; every other C0 control, DEL and C1 is refused.
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Single-line strings refuse every control character, \t and \n included.
LINE_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# An emoji (or `:name:`) holds no whitespace at all.
WHITESPACE = re.compile(r"\s")
