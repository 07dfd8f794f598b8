"""The files index of every node of one chat, in Redis (`chat-server --redis URL`).

Keys (under `PREFIX`):

- `files` (hash): file id -> the record as JSON (the fields that never change);
- `file-tokens` (hash): download token -> file id;
- `file-seqs` (hash): file id -> the seq of the room message that shares it, and
  `file-msgs` (hash): "ROOM\\tSEQ" -> file id;
- `files-live` (sorted set): the ids of files whose bytes are kept, by creation time
  (ties by id): the order quota expiry takes; a record not in it is expired;
- `blob-refs` (hash): sha256 -> how many live records name it, and `files-used`: the
  bytes of the distinct live blobs, the figure the quota is kept against;
- `blob-del:SHA` (a TTL of `DOOM_TTL_MS`): a node is unlinking that blob; `add` of a
  record with that hash waits until the key is gone;
- `upload:KEY` (a TTL of `--upload-ttl`): an account's unfinished upload (its id and
  token), KEY the hash of "the same upload" (owner, target, name, size, sha256), so
  the account resumes it through any node from the bytes in the shared `partial/`.

Every decision is one Lua script, so it is atomic against every other node: adding
(with the quota's expiry of the oldest files), removing, linking a message. Each also
adds a `file` event to the `events` stream (`op` add, seq, exp or del, `id`, `j` the
record, `s` the seq), from which every other node keeps its view (`FileIndex.apply`,
called by the node's reader, chat_server/cluster.py). Downloads ask Redis (`by_token`),
never the view, so a file deleted or expired through any node opens nothing on any.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, replace
from typing import Any, Final

from redis.exceptions import RedisError

from ..redis_store import EVENTS_MAXLEN, PREFIX, connect
from ..store import StoreError
from .index import Change, FileIndex, FileRecord

__all__ = ["DOOM_TTL_MS", "RedisFileIndex"]

log = logging.getLogger("chat_server.files")

# How long a node may take to unlink a blob it doomed; past it (the node died) the hash
# is free again, and an orphan blob left behind is removed at the next node's start.
DOOM_TTL_MS: Final = 30_000
UPLOADS: Final = PREFIX + "upload:"

# ARGV: prefix, id, record JSON, token, sha256, size, created ms, quota, node, maxlen, ttl.
# Returns {1, expired records (JSON), doomed hashes}, or {0} while the hash is being deleted.
_ADD = """
local p, sha, size = ARGV[1], ARGV[5], tonumber(ARGV[6])
if redis.call('EXISTS', p .. 'blob-del:' .. sha) == 1 then return {0} end
local expired, doomed = {}, {}
if not redis.call('HGET', p .. 'blob-refs', sha) then
  local used = tonumber(redis.call('GET', p .. 'files-used') or '0')
  while used + size > tonumber(ARGV[8]) do
    local oldest = redis.call('ZRANGE', p .. 'files-live', 0, 0)
    if #oldest == 0 then break end
    local old = oldest[1]
    redis.call('ZREM', p .. 'files-live', old)
    redis.call('XADD', p .. 'events', 'MAXLEN', '~', ARGV[10], '*', 'k', 'file', 'op', 'exp',
      'id', old, 'n', ARGV[9])
    local j = redis.call('HGET', p .. 'files', old)
    if j then
      expired[#expired + 1] = j
      local rec = cjson.decode(j)
      if redis.call('HINCRBY', p .. 'blob-refs', rec.sha256, -1) <= 0 then
        redis.call('HDEL', p .. 'blob-refs', rec.sha256)
        used = used - rec.size
        redis.call('SET', p .. 'blob-del:' .. rec.sha256, ARGV[9], 'PX', ARGV[11])
        doomed[#doomed + 1] = rec.sha256
      end
    end
  end
  redis.call('SET', p .. 'files-used', math.max(used, 0) + size)
end
redis.call('HINCRBY', p .. 'blob-refs', sha, 1)
redis.call('HSET', p .. 'files', ARGV[2], ARGV[3])
redis.call('HSET', p .. 'file-tokens', ARGV[4], ARGV[2])
redis.call('ZADD', p .. 'files-live', ARGV[7], ARGV[2])
redis.call('XADD', p .. 'events', 'MAXLEN', '~', ARGV[10], '*', 'k', 'file', 'op', 'add',
  'id', ARGV[2], 'j', ARGV[3], 'n', ARGV[9])
return {1, expired, doomed}
"""

# ARGV: prefix, id ("": the one message ROOM/SEQ shares), room, seq, node, maxlen, ttl.
# Returns {record JSON or "", doomed hash or ""}.
_REMOVE = """
local p, id = ARGV[1], ARGV[2]
if id == '' then id = redis.call('HGET', p .. 'file-msgs', ARGV[3] .. '\\t' .. ARGV[4]) end
if not id then return {'', ''} end
local j = redis.call('HGET', p .. 'files', id)
if not j then return {'', ''} end
local rec = cjson.decode(j)
redis.call('HDEL', p .. 'files', id)
redis.call('HDEL', p .. 'file-tokens', rec.token)
local seq = redis.call('HGET', p .. 'file-seqs', id)
if seq then
  redis.call('HDEL', p .. 'file-seqs', id)
  if type(rec.room) == 'string' then
    redis.call('HDEL', p .. 'file-msgs', rec.room .. '\\t' .. seq)
  end
end
local doomed = ''
if redis.call('ZREM', p .. 'files-live', id) == 1 then
  if redis.call('HINCRBY', p .. 'blob-refs', rec.sha256, -1) <= 0 then
    redis.call('HDEL', p .. 'blob-refs', rec.sha256)
    redis.call('DECRBY', p .. 'files-used', rec.size)
    redis.call('SET', p .. 'blob-del:' .. rec.sha256, ARGV[5], 'PX', ARGV[7])
    doomed = rec.sha256
  end
end
redis.call('XADD', p .. 'events', 'MAXLEN', '~', ARGV[6], '*', 'k', 'file', 'op', 'del',
  'id', id, 'n', ARGV[5])
return {j, doomed}
"""

# ARGV: prefix, id, room, seq, node, maxlen.
_SET_SEQ = """
local p = ARGV[1]
if redis.call('HEXISTS', p .. 'files', ARGV[2]) == 0 then return 0 end
redis.call('HSET', p .. 'file-seqs', ARGV[2], ARGV[4])
redis.call('HSET', p .. 'file-msgs', ARGV[3] .. '\\t' .. ARGV[4], ARGV[2])
redis.call('XADD', p .. 'events', 'MAXLEN', '~', ARGV[6], '*', 'k', 'file', 'op', 'seq',
  'id', ARGV[2], 's', ARGV[4], 'n', ARGV[5])
return 1
"""

# ARGV: prefix, token. Returns {record JSON, seq or ""} for a live file, else nil.
_BY_TOKEN = """
local p = ARGV[1]
local id = redis.call('HGET', p .. 'file-tokens', ARGV[2])
if not id or not redis.call('ZSCORE', p .. 'files-live', id) then return false end
local j = redis.call('HGET', p .. 'files', id)
if not j then return false end
return {j, redis.call('HGET', p .. 'file-seqs', id) or ''}
"""

# ARGV: prefix, node, ttl, hashes... Returns the hashes no live record needs, now doomed.
_DOOM_UNUSED = """
local p, doomed = ARGV[1], {}
for i = 4, #ARGV do
  local sha = ARGV[i]
  if redis.call('HEXISTS', p .. 'blob-refs', sha) == 0
      and redis.call('SET', p .. 'blob-del:' .. sha, ARGV[2], 'NX', 'PX', ARGV[3]) then
    doomed[#doomed + 1] = sha
  end
end
return doomed
"""

_FIELDS = ("id", "token", "name", "size", "sha256", "sender", "room", "to", "created_ms", "host")


def record_json(record: FileRecord) -> str:
    data = asdict(record)
    return json.dumps({name: data[name] for name in _FIELDS}, separators=(",", ":"))


def record_from_json(text: str, seq: int | None = None, expired: bool = False) -> FileRecord:
    data = json.loads(text)
    return FileRecord(**{name: data[name] for name in _FIELDS}, seq=seq, expired=expired)


class RedisFileIndex(FileIndex):
    """The records in Redis; the view a copy, kept by this node's writes and the events.

    Args:
        url: the chat's Redis.
        node: this node's id (its own events are not applied twice).
    """

    def __init__(self, url: str, node: str) -> None:
        super().__init__()
        self.url = url
        self.node = node
        self._client: Any = connect(url)
        self._add = self._client.register_script(_ADD)
        self._remove = self._client.register_script(_REMOVE)
        self._set_seq = self._client.register_script(_SET_SEQ)
        self._by_token_script = self._client.register_script(_BY_TOKEN)
        self._doom = self._client.register_script(_DOOM_UNUSED)
        self._writes: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        try:
            records = await self._client.hgetall(PREFIX + "files")
            seqs = await self._client.hgetall(PREFIX + "file-seqs")
            live = set(await self._client.zrange(PREFIX + "files-live", 0, -1))
        except (RedisError, OSError) as exc:
            raise StoreError(f"cannot read the files index in Redis at {self.url}: {exc}") from exc
        for file_id, text in records.items():
            seq = seqs.get(file_id)
            self._put(record_from_json(text, int(seq) if seq else None, file_id not in live))

    async def close(self) -> None:
        for task in list(self._writes):
            await task
        await self._client.aclose()

    # --- the view, from the events -------------------------------------------------------

    def apply(self, fields: dict[str, str]) -> None:
        op, file_id = fields.get("op"), fields.get("id", "")
        record = self._by_id.get(file_id)
        if op == "add" and "j" in fields:
            self._put(record_from_json(fields["j"]))
        elif op == "seq" and record is not None:
            self._put(replace(record, seq=int(fields["s"])))
        elif op == "exp" and record is not None:
            self._put(replace(record, expired=True))
        elif op == "del":
            self._drop(file_id)

    def _persist_seq(self, record: FileRecord, seq: int) -> None:
        if record.room is None:
            return
        args = [PREFIX, record.id, record.room, seq, self.node, EVENTS_MAXLEN]
        task = asyncio.get_running_loop().create_task(self._write_seq(args))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write_seq(self, args: list[Any]) -> None:
        try:
            await self._set_seq(args=args)
        except (RedisError, OSError) as exc:
            # The message is out; only deleting it through another node will miss the file
            # (this node still deletes it with its message, from its view).
            log.warning("could not link file %s to its message in Redis: %s", args[1], exc)

    # --- the decisions -------------------------------------------------------------------

    async def by_token(self, token: str) -> FileRecord | None:
        found = await self._ask(self._by_token_script, [PREFIX, token])
        if not found:
            return None
        text, seq = found
        record = record_from_json(text, int(seq) if seq else None)
        return None if record.id in self._hidden else record

    async def add(self, record: FileRecord, quota: int) -> Change | None:
        args = [
            PREFIX,
            record.id,
            record_json(record),
            record.token,
            record.sha256,
            record.size,
            record.created_ms,
            quota,
            self.node,
            EVENTS_MAXLEN,
            DOOM_TTL_MS,
        ]
        answer = await self._ask(self._add, args)
        if not int(answer[0]):
            return None
        change = Change(doomed=list(answer[2]))
        for text in answer[1]:
            old = record_from_json(text, expired=True)
            known = self._by_id.get(old.id)
            if known is not None:
                old = replace(known, expired=True)
                self._put(old)
            change.expired.append(old)
        self._put(record)
        return change

    async def remove(self, file_id: str) -> Change:
        return await self._removing([file_id, "", ""])

    async def remove_for_message(self, room: str, seq: int) -> Change:
        return await self._removing(["", room, seq])

    async def _removing(self, target: list[Any]) -> Change:
        args = [PREFIX, *target, self.node, EVENTS_MAXLEN, DOOM_TTL_MS]
        text, doomed = await self._ask(self._remove, args)
        if not text:
            return Change()
        removed = record_from_json(text)
        self._drop(removed.id)
        return Change(removed=removed, doomed=[doomed] if doomed else [])

    async def blobs_deleted(self, hashes: Iterable[str]) -> None:
        keys = [PREFIX + "blob-del:" + sha256 for sha256 in hashes]
        if keys:
            try:
                await self._client.delete(*keys)
            except (RedisError, OSError) as exc:  # the keys expire by themselves
                log.warning("could not clear the blob deletion marks: %s", exc)

    async def doom_unused(self, hashes: Iterable[str]) -> list[str]:
        wanted = list(hashes)
        if not wanted:
            return []
        return list(await self._ask(self._doom, [PREFIX, self.node, DOOM_TTL_MS, *wanted]))

    async def expire_missing(self, stored: set[str]) -> None:
        """Not on nodes: another node may have added a record whose blob it is renaming
        into place right now. A live record whose blob is gone answers 404 (http.py)."""

    # --- unfinished uploads -------------------------------------------------------------

    async def find_upload(self, key: str) -> dict[str, str] | None:
        try:
            found = await self._client.get(UPLOADS + key)
        except (RedisError, OSError) as exc:
            raise StoreError(f"Redis is unavailable ({exc})") from exc
        return dict(json.loads(found)) if found else None

    async def keep_upload(self, key: str, ticket: dict[str, str], ttl: float) -> None:
        try:
            await self._client.set(UPLOADS + key, json.dumps(ticket), px=max(1, int(ttl * 1000)))
        except (RedisError, OSError) as exc:  # it resumes on this node still
            log.warning("could not keep an upload for other nodes: %s", exc)

    async def drop_upload(self, key: str) -> None:
        try:
            await self._client.delete(UPLOADS + key)
        except (RedisError, OSError) as exc:  # it expires by itself
            log.warning("could not drop a finished upload's ticket: %s", exc)

    async def _ask(self, script: Any, args: list[Any]) -> Any:
        try:
            return await script(args=args)
        except (RedisError, OSError) as exc:
            raise StoreError(f"Redis is unavailable ({exc})") from exc
