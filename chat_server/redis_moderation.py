"""Ops and bans of a chat of nodes, kept in Redis and told to every node.

Keys (under `PREFIX`):

- `ops` (hash): field "ROOM\\tACCOUNT_KEY" for each op kept by account;
- `bans` (hash): field "ROOM\\tNICK_KEY" -> JSON {nick, by, reason, ts};
- `creators` (hash): room -> the key of its first joiner ("guest:NICK" for a guest):
  whoever sets it first is the room's creator, so a room made at once on two nodes
  has one creator op.

Every change is one Lua script that writes the state and adds the event to the
`events` stream every node reads (chat_server/cluster.py) in the same step, so a
node that sees the event finds the state stored, and a node started later reads
the state at start. Events: `mod-op` (r, key, on, u the nick shown, by, ts,
quiet "1" for a creator's op, which is not announced), `mod-ban` (r, key, b the
ban as JSON or "" when lifted, u, by, why, ts), `mod-kick` (r, u, by, why, ts).
A kick is only an event: what it changes is membership, which each node
removes for its own sessions when it reads the event.

Writes go through the store's one writer (`RedisStore.put`), in order with the
node's messages and presence, and their callbacks run once Redis answered.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from .moderation import BanRecord, ModerationRecords
from .redis_store import EVENTS_MAXLEN, PREFIX, RedisStore, run_script
from .store import CommitCallback

__all__ = ["MODERATION_EVENTS", "RedisModeration", "ban_from_json"]

EVENTS: Final = PREFIX + "events"
OPS: Final = PREFIX + "ops"
BANS: Final = PREFIX + "bans"
CREATORS: Final = PREFIX + "creators"
MODERATION_EVENTS: Final = frozenset({"mod-op", "mod-ban", "mod-kick"})

# KEYS: ops, events. ARGV: room, key, on (1/0), nick, by, ts, node, maxlen, quiet.
_SAVE_OP = """
local f = ARGV[1] .. '\\t' .. ARGV[2]
if ARGV[3] == '1' then redis.call('HSET', KEYS[1], f, 1) else redis.call('HDEL', KEYS[1], f) end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[8], '*', 'k', 'mod-op', 'r', ARGV[1],
  'key', ARGV[2], 'on', ARGV[3], 'u', ARGV[4], 'by', ARGV[5], 'ts', ARGV[6], 'n', ARGV[7],
  'quiet', ARGV[9])
return 1
"""

# KEYS: bans, events. ARGV: room, key, ban JSON ("" lifts it), nick, by, reason, ts, node,
# maxlen.
_SAVE_BAN = """
local f = ARGV[1] .. '\\t' .. ARGV[2]
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], f, ARGV[3])
else redis.call('HDEL', KEYS[1], f) end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[9], '*', 'k', 'mod-ban', 'r', ARGV[1],
  'key', ARGV[2], 'b', ARGV[3], 'u', ARGV[4], 'by', ARGV[5], 'why', ARGV[6], 'ts', ARGV[7],
  'n', ARGV[8])
return 1
"""

# The first joiner of a new room is its creator (one per room, whichever node asks first);
# an account creator is stored as op at once and the other nodes are told.
# KEYS: creators, ops, events. ARGV: room, creator key, account key or "", nick, ts, node,
# maxlen.
_CLAIM_CREATOR = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[2], ARGV[1] .. '\\t' .. ARGV[3], 1)
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], '*', 'k', 'mod-op', 'r', ARGV[1],
    'key', ARGV[3], 'on', '1', 'u', ARGV[4], 'by', '', 'ts', ARGV[5], 'n', ARGV[6],
    'quiet', '1')
end
return 1
"""


def ban_to_json(ban: BanRecord) -> str:
    return json.dumps({"nick": ban.nick, "by": ban.by, "reason": ban.reason, "ts": ban.ts_ms})


def ban_from_json(room: str, text: str) -> BanRecord:
    data = json.loads(text)
    return BanRecord(room, data["nick"], data["by"], data["reason"], int(data["ts"]))


class RedisModeration:
    """The moderation state of every node of one chat, in Redis."""

    def __init__(self, store: RedisStore, node: str) -> None:
        self.store = store
        self.node = node
        self._save_op = store.client.register_script(_SAVE_OP)
        self._save_ban = store.client.register_script(_SAVE_BAN)
        self._claim = store.client.register_script(_CLAIM_CREATOR)

    async def load(self) -> ModerationRecords:
        """Every op and ban kept in Redis (read once when the node starts)."""
        records = ModerationRecords()
        ops = await self.store._read(self.store.reads.hgetall(OPS))
        for field in ops:
            room, _, account_key = field.partition("\t")
            records.set_op(room, account_key, True)
        bans = await self.store._read(self.store.reads.hgetall(BANS))
        found = []
        for field, text in bans.items():
            room, _, nick_key = field.partition("\t")
            found.append((nick_key, ban_from_json(room, text)))
        for nick_key, ban in sorted(found, key=lambda item: item[1].ts_ms):
            records.set_ban(ban.room, nick_key, ban)
        return records

    def save_op(
        self,
        room: str,
        account_key: str,
        op: bool,
        nick: str,
        by: str,
        ts_ms: int,
        done: CommitCallback,
    ) -> None:
        keys = [OPS, EVENTS]
        args = [room, account_key, int(op), nick, by, ts_ms, self.node, EVENTS_MAXLEN, ""]
        self._put(lambda pipe: run_script(pipe, self._save_op, keys, args), done)

    def save_ban(
        self,
        room: str,
        nick_key: str,
        ban: BanRecord | None,
        nick: str,
        by: str,
        reason: str | None,
        ts_ms: int,
        done: CommitCallback,
    ) -> None:
        keys = [BANS, EVENTS]
        text = "" if ban is None else ban_to_json(ban)
        args = [room, nick_key, text, nick, by, reason or "", ts_ms, self.node, EVENTS_MAXLEN]
        self._put(lambda pipe: run_script(pipe, self._save_ban, keys, args), done)

    def kick(
        self, room: str, nick: str, by: str, reason: str | None, ts_ms: int, done: CommitCallback
    ) -> None:
        event = {
            "k": "mod-kick",
            "r": room,
            "u": nick,
            "by": by,
            "why": reason or "",
            "ts": str(ts_ms),
            "n": self.node,
        }
        self._put(lambda pipe: pipe.xadd(EVENTS, event, maxlen=EVENTS_MAXLEN), done)

    def claim_creator(
        self,
        room: str,
        nick: str,
        account: bool,
        ts_ms: int,
        done: Callable[[bool, BaseException | None], None],
    ) -> None:
        """Become the creator of `room` unless a joiner on any node was first."""
        creator = nick.lower() if account else "guest:" + nick.lower()
        keys = [CREATORS, OPS, EVENTS]
        args = [
            room,
            creator,
            nick.lower() if account else "",
            nick,
            ts_ms,
            self.node,
            EVENTS_MAXLEN,
        ]

        def finish(results: list[Any] | None, error: BaseException | None) -> None:
            done(bool(results and results[0]), error)

        self.store.put(lambda pipe: run_script(pipe, self._claim, keys, args), 1, finish)

    def _put(self, build: Callable[[Any], object], done: CommitCallback) -> None:
        def finish(_results: list[Any] | None, error: BaseException | None) -> None:
            done(error)

        self.store.put(build, 1, finish)
