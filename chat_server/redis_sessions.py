"""Sessions and held nicks of a chat of nodes, counted in Redis for every node at once.

Keys (under `PREFIX`):

- `sessions:KEY` (hash): node -> how many sessions of account KEY that node has. A
  login counts the fields of live nodes only (those whose `alive:NODE` heartbeat key
  exists), so a dead node's sessions stop counting the moment its heartbeat expires;
  the fields of nodes already reaped (gone from `nodes`) are deleted on the way.
- `held:KEY` (string, with a TTL of `--nick-grace`): the address of a dropped guest
  whose nick is held for it; the nick claim script (chat_server/cluster.py) refuses
  the nick to other addresses until it expires, and its user's address takes it back.
"""

from __future__ import annotations

from typing import Final

from .redis_store import PREFIX

__all__ = ["CLOSE_SESSION", "HELD", "OPEN_SESSION", "SESSIONS"]

SESSIONS: Final = PREFIX + "sessions:"
HELD: Final = PREFIX + "held:"

# KEYS: sessions hash, nodes hash. ARGV: prefix, node, limit. The count after, or
# minus the count found when it is at the limit.
OPEN_SESSION: Final = """
local total = 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local n, c = fields[i], tonumber(fields[i + 1])
  if n == ARGV[2] or redis.call('EXISTS', ARGV[1] .. 'alive:' .. n) == 1 then
    total = total + c
  elseif redis.call('HEXISTS', KEYS[2], n) == 0 then
    redis.call('HDEL', KEYS[1], n)
  end
end
if total >= tonumber(ARGV[3]) then return -total end
redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
return total + 1
"""

# KEYS: sessions hash. ARGV: node.
CLOSE_SESSION: Final = """
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1
"""
