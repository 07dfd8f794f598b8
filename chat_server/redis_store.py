"""The Redis store and message log: one chat shared by several server processes.

Keys (all under `PREFIX`):

- `chat` (hash): `id`, the server id every node of this chat announces;
- `rooms` (hash): room name -> topic; a room exists while its field does;
- `log:ROOM` (stream): the room's messages, entry id `SEQ-0`, field `v` its rev, and
  the changes of them, entry id `SEQ-N` (N >= 1) after the last message `SEQ`, fields
  `v` rev, `k` kind (e edit, d delete, x reaction, u a store `update`), `m` the
  changed seq, `b` by, `ts`, `em` emoji, `rm` removed (0/1): rev order, no texts;
- `state:ROOM` (hash): seq -> the message as it stands, `{"v":REV,...}` JSON with
  `s` sender, `t` text, `a` action, `ts` milliseconds, `f` the shared file, `r` the seq
  it replies to, `u` its author ("account:NAME", "guest:TOKEN"), `e` edit time, `d`
  deleted (first, so scripts see it), `x` reactions; a delete overwrites it without
  text, file and reactions (texts are kept only here, so a delete erases them);
- `rev:ROOM` the room's rev counter (messages and changes); `revs:ROOM` (sorted set)
  seq scored by its latest rev, for `changed_since`;
- `events` (stream, capped): what nodes tell each other (rooms, topics, joins,
  parts, nick changes), read by every node with the room logs (chat_server/cluster.py);
- `accounts` (hash): name key -> JSON {name, hash}; `dm:PAIR` (stream) a pair's DMs,
  `dm-last` (hash) pair -> last seq, `pending:KEY` (list) "PAIR SEQ" of DMs not
  delivered yet, `markers:KEY` (hash) target -> seq.

Seqs are numbered inside Redis: a Lua script reads the last entry of the room's
stream and adds the next one with `XADD` and an explicit id, atomically, so two
nodes never give out one seq, and Redis itself refuses an id at or below the
stream's last one. `SqliteStore`'s rule "a stored seq follows the last one" is
the same `XADD` with the id the caller gives (`append`).

History reads take seq ranges of the state hash (seqs run 1..last without a
gap) in one script. Changes made by nodes: chat_server/redis_changes.py; search
on a node: chat_server/redis_search.py. Ops and bans: chat_server/redis_moderation.py.

Every write goes through one writer task, which sends what queued meanwhile as
one pipeline (group commit) and calls the callbacks on the loop in order. A
failed pipeline (Redis gone) fails its writes with `StoreError`; the first
failure is logged once, and the recovery once. Redis must keep what it
acknowledged: `open` refuses to start unless it runs with `appendonly yes` and
`appendfsync always` (see docs/ARCHITECTURE.md, "Several nodes").
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from protocol import FileInfo, now_ms

from .account_store import Account, DmPage, StoredDm, key
from .eventlog import AppendDone, MessageLog
from .rooms import Room
from .search import SearchCursor, SearchIndex, SearchPage, Term
from .store import CommitCallback, HistoryPage, RoomRecord, Store, StoredMessage, StoreError

__all__ = [
    "PREFIX",
    "RedisLog",
    "RedisStore",
    "connect",
    "parse_entry",
    "run_script",
]

log = logging.getLogger(__name__)

PREFIX: Final = "lanchat:"
EVENTS_MAXLEN: Final = 10_000  # events kept for nodes that fall behind (approximate)

# The room's next rev (shared by new messages and changes); a room stored before revs were
# kept in Redis numbers on from its last seq. Used inside the scripts below.
_NEXT_REV = """
local function next_rev(key, seq)
  local now = redis.call('GET', key)
  local rev = (now and tonumber(now) or seq) + 1
  redis.call('SET', key, rev)
  return rev
end
"""

# The stream's last entry id as (seq, n): messages are `SEQ-0`, changes `SEQ-N` after them.
_LAST_ID = """
local function last_id(key)
  local last = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
  if #last == 0 then return 0, 0 end
  local a, b = string.match(last[1][1], '^(%d+)-(%d+)$')
  return tonumber(a), tonumber(b)
end
"""

# Next seq of a room, numbered where every node numbers: in Redis. The message's state
# (its text too) goes to the room's state hash, the stream entry holds only seq and rev.
# KEYS: rooms hash, room log, state hash, rev key, revs zset.
# ARGV: room, state body (the JSON object after `{"v":REV,`).
_ASSIGN = (
    _NEXT_REV
    + _LAST_ID
    + """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return redis.error_reply('NOROOM the room is not stored')
end
local seq = last_id(KEYS[2]) + 1
local rev = next_rev(KEYS[4], seq - 1)
redis.call('HSET', KEYS[3], seq, '{"v":' .. rev .. ',' .. ARGV[2])
redis.call('ZADD', KEYS[5], rev, seq)
redis.call('XADD', KEYS[2], seq .. '-0', 'v', rev)
return {seq, rev}
"""
)

# A message numbered by the caller: refused unless it follows the room's last seq (and,
# when it brings a rev, unless that rev follows the room's last rev).
# KEYS: as _ASSIGN. ARGV: room, seq, rev (0: the next one), state body.
_APPEND = (
    _NEXT_REV
    + _LAST_ID
    + """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return redis.error_reply('NOROOM the room is not stored')
end
local seq = last_id(KEYS[2])
if tonumber(ARGV[2]) ~= seq + 1 then
  return redis.error_reply('GAP seq ' .. ARGV[2] .. ' does not follow ' .. seq)
end
seq = seq + 1
local rev = next_rev(KEYS[4], seq - 1)
if tonumber(ARGV[3]) ~= 0 and tonumber(ARGV[3]) ~= rev then
  return redis.error_reply('GAP rev ' .. ARGV[3] .. ' is not the next rev ' .. rev)
end
redis.call('HSET', KEYS[3], seq, '{"v":' .. rev .. ',' .. ARGV[4])
redis.call('ZADD', KEYS[5], rev, seq)
redis.call('XADD', KEYS[2], seq .. '-0', 'v', rev)
return seq
"""
)

# A change of a stored message: applied only if the message is still at the rev it was
# read at (`expected`, or -1 for any), taking the room's next rev (refused unless it is
# `wanted`, when given); the change entry `SEQ-N` goes after the stream's last entry, so
# every node's reader sees messages and changes in rev order. Returns the rev, or 0 when
# the message changed meanwhile (read it again and retry).
# KEYS: room log, state hash, rev key, revs zset.
# ARGV: seq, expected rev, new state body, kind (e, d, x, u), by, ts, emoji, removed, wanted.
_CHANGE = (
    _NEXT_REV
    + _LAST_ID
    + """
local now = redis.call('HGET', KEYS[2], ARGV[1])
if not now then return redis.error_reply('NOMSG no such message') end
if string.match(now, '^{"v":%d+,"d":1') then return redis.error_reply('NOMSG deleted') end
local at = tonumber(string.match(now, '^{"v":(%d+)'))
if tonumber(ARGV[2]) >= 0 and at ~= tonumber(ARGV[2]) then return 0 end
local seq, n = last_id(KEYS[1])
local rev = next_rev(KEYS[3], seq)
if ARGV[9] ~= '' and tonumber(ARGV[9]) ~= rev then
  return redis.error_reply('GAP rev ' .. ARGV[9] .. ' is not the next rev ' .. rev)
end
redis.call('HSET', KEYS[2], ARGV[1], '{"v":' .. rev .. ',' .. ARGV[3])
redis.call('ZADD', KEYS[4], rev, ARGV[1])
redis.call('XADD', KEYS[1], seq .. '-' .. (n + 1), 'v', rev, 'k', ARGV[4], 'm', ARGV[1],
  'b', ARGV[5], 'ts', ARGV[6], 'em', ARGV[7], 'rm', ARGV[8])
return rev
"""
)

# Messages of a room by seq range from its state hash (seqs run 1..last without a gap).
# KEYS: room log, state hash. ARGV: mode (latest, before, after), seq, limit.
# Returns {more, first seq, state...} oldest first.
_RANGE = (
    _LAST_ID
    + """
local last = last_id(KEYS[1])
local limit = tonumber(ARGV[3])
local low, high, more
if ARGV[1] == 'latest' then
  high = last; low = math.max(1, last - limit + 1); more = low > 1
elseif ARGV[1] == 'before' then
  high = math.min(tonumber(ARGV[2]) - 1, last); low = math.max(1, high - limit + 1)
  more = low > 1
else
  low = tonumber(ARGV[2]) + 1; high = math.min(last, low + limit - 1); more = high < last
end
if high < low then return {0, 0} end
local seqs = {}
for s = low, high do seqs[#seqs + 1] = s end
local found = redis.call('HMGET', KEYS[2], unpack(seqs))
table.insert(found, 1, low)
table.insert(found, 1, more and 1 or 0)
return found
"""
)

# Messages whose latest rev is above ARGV[1], in rev order, at most ARGV[2] (and `more`).
# KEYS: revs zset, state hash. Returns {more, seq, state, seq, state...}.
_CHANGED = """
local seqs = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'LIMIT', 0,
  tonumber(ARGV[2]) + 1)
local more = 0
if #seqs > tonumber(ARGV[2]) then more = 1; table.remove(seqs) end
local out = {more}
if #seqs == 0 then return out end
local found = redis.call('HMGET', KEYS[2], unpack(seqs))
for i, s in ipairs(seqs) do out[#out + 1] = s; out[#out + 1] = found[i] end
return out
"""

# A room created once; the first creator tells the other nodes.
# KEYS: rooms hash, events. ARGV: room, node, maxlen.
_CREATE_ROOM = """
if redis.call('HSETNX', KEYS[1], ARGV[1], '') == 1 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'k', 'room', 'r', ARGV[1], 'n', ARGV[2])
  return 1
end
return 0
"""

# An account made once; the other nodes learn its name (a guest can never take it).
# KEYS: accounts hash, events. ARGV: key, value, name, node, maxlen.
_CREATE_ACCOUNT = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'k', 'account', 'u', ARGV[3],
  'n', ARGV[4])
return 1
"""

# KEYS: rooms hash. ARGV: room, topic.
_SET_TOPIC = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return redis.error_reply('NOROOM the room is not stored')
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

# KEYS: dm stream, dm-last hash, pending list. ARGV: pair, seq, sender, to, text, ts, pending.
_APPEND_DM = """
local last = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if tonumber(ARGV[2]) ~= last + 1 then
  return redis.error_reply('GAP DM seq ' .. ARGV[2] .. ' does not follow ' .. last)
end
redis.call('XADD', KEYS[1], ARGV[2] .. '-0', 's', ARGV[3], 'to', ARGV[4], 't', ARGV[5],
  'ts', ARGV[6])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if ARGV[7] == '1' then redis.call('RPUSH', KEYS[3], ARGV[1] .. ' ' .. ARGV[2]) end
return 1
"""

# KEYS: markers hash. ARGV: target, seq. A marker only moves forward.
_SET_MARKER = """
local now = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > now then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1
"""

Build = Callable[[Any], object]  # adds one write's commands to a pipeline
Finish = Callable[[list[Any] | None, BaseException | None], None]


def connect(url: str, *, blocking: bool = False, retries: int = 0) -> Any:
    """A client for `url` that fails fast (no retries: a node says `unavailable` at once).

    Typed `Any`: redis-py's stubs type every reply as a union of bytes and str, and
    these clients decode replies (`decode_responses`), so every reply is str.
    """
    return aioredis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=2.0,
        socket_timeout=None if blocking else 5.0,
        retry=Retry(NoBackoff(), retries),
        retry_on_error=[RedisConnectionError] if retries else [],
    )


class RedisHealth:
    """Whether this node reaches Redis: the loss is logged once, the recovery once,
    whichever of the writer and the reader notices first."""

    def __init__(self) -> None:
        self.down = False

    def failed(self, exc: BaseException) -> None:
        if not self.down:
            self.down = True
            log.error("Redis unavailable: refusing writes until it is back (%s)", exc)

    def works(self) -> None:
        if self.down:
            self.down = False
            log.warning("Redis works again: taking writes")


@dataclass(slots=True)
class _Write:
    build: Build
    commands: int  # how many results `build` adds
    finish: Finish


class _Writer:
    """One task that sends queued writes as pipelines, in order, and calls back on the loop."""

    def __init__(self, client: Any, after_batch: Callable[[], None], health: RedisHealth) -> None:
        self._client = client
        self._after_batch = after_batch
        self._health = health
        self._queue: list[_Write] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.closing = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="redis-writer")

    def put(self, write: _Write) -> None:
        if self.closing or self._task is None:
            write.finish(None, StoreError("the Redis store is closed"))
            return
        self._queue.append(write)
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._queue = self._queue, []
            if not batch:
                if self.closing:
                    return
                continue
            await self._send(batch)
            self._after_batch()

    async def _send(self, batch: list[_Write]) -> None:
        pipe = self._client.pipeline(transaction=False)
        for write in batch:
            write.build(pipe)
        try:
            results = await pipe.execute(raise_on_error=False)
        except (RedisError, OSError) as exc:
            self._health.failed(exc)
            error = StoreError(f"Redis is unavailable ({exc})")
            for write in batch:
                _finish(write, None, error)
            return
        self._health.works()
        position = 0
        for write in batch:
            mine = list(results[position : position + write.commands])
            position += write.commands
            failure = next((r for r in mine if isinstance(r, Exception)), None)
            if failure is not None:
                _finish(write, None, StoreError(str(failure)))
            else:
                _finish(write, mine, None)

    async def close(self) -> None:
        self.closing = True
        self._wake.set()
        if self._task is not None:
            await self._task


def run_script(pipe: Any, script: Any, keys: Sequence[Any], args: Sequence[Any]) -> None:
    """Queue a registered Lua script on a pipeline (loaded by the pipeline if Redis lacks it)."""
    pipe.scripts.add(script)
    pipe.evalsha(script.sha, len(keys), *keys, *args)


def _finish(write: _Write, results: list[Any] | None, error: BaseException | None) -> None:
    try:
        write.finish(results, error)
    except Exception:
        log.exception("Redis write callback failed")


def state_body(message: StoredMessage) -> str:
    """A message's state as stored in the room's state hash, without its leading `{"v":REV,`
    (the scripts put the rev there). A deleted message keeps no text, file or reactions."""
    state: dict[str, Any] = {}
    if message.deleted:
        state["d"] = 1  # first, so the scripts can tell a deleted message from its head
    state.update(s=message.sender, u=message.author, ts=message.ts_ms)
    if not message.deleted:
        state["t"] = message.text
    if message.action:
        state["a"] = 1
    if message.reply_to is not None:
        state["r"] = message.reply_to
    if message.file is not None and not message.deleted:
        state["f"] = json.loads(message.file.model_dump_json())
    if message.edited_ms is not None:
        state["e"] = message.edited_ms
    if message.reactions and not message.deleted:
        state["x"] = [[emoji, list(nicks)] for emoji, nicks in message.reactions]
    return json.dumps(state, ensure_ascii=False, separators=(",", ":"))[1:]


def parse_state(room: str, seq: int, value: str) -> StoredMessage:
    """A message of the room's state hash (`{"v":REV,...}`) as a stored message."""
    state = json.loads(value)
    file = state.get("f")
    reply_to = state.get("r")
    return StoredMessage(
        room,
        seq,
        state["s"],
        state.get("t", ""),
        bool(state.get("a")),
        int(state["ts"]),
        FileInfo.model_validate(file) if file else None,
        int(state["v"]),
        None if reply_to is None else int(reply_to),
        edited_ms=state.get("e"),
        deleted=bool(state.get("d")),
        reactions=tuple((e, tuple(n)) for e, n in state.get("x", ())),
        author=state.get("u", ""),
    )


def parse_entry(room: str, entry_id: str, fields: dict[str, str], state: str) -> StoredMessage:
    """A room log's message entry (`SEQ-0`, its rev in `v`) with its state, as it was sent.

    The state may be newer (its changes follow in the stream, each its own entry): the
    rev is the entry's, and reactions, which a message never has when it is sent, are
    left to those entries, so a node that reads late still gives each one once, in rev
    order. An edit made meanwhile shows in the text (the first text is gone: only the
    state holds texts, so that a delete can erase them)."""
    seq = int(entry_id.partition("-")[0])
    message = parse_state(room, seq, state)
    rev = int(fields["v"])
    if message.rev > rev and message.reactions:
        message = replace(message, reactions=())
    return replace(message, rev=rev)


def _file_json(file: FileInfo | None) -> str:
    return "" if file is None else file.model_dump_json()


class RedisStore(Store, SearchIndex):
    """Rooms, topics, messages, accounts, DMs and markers in one Redis (a chat of nodes)."""

    supports_moderation = False  # ops and bans would be one node's only
    supports_search = False  # True once a node's index is attached (`search_index`)

    def __init__(self, url: str, *, node: str = "", check_persistence: bool = True) -> None:
        self.url = url
        self.node = node
        self.check_persistence = check_persistence
        self.client: Any = connect(url)
        # Reads may be sent twice (a pooled connection Redis closed when it restarted);
        # writes never are: a write that may have gone through is refused, not repeated.
        self.reads: Any = connect(url, retries=1)
        self.health = RedisHealth()
        self._writer = _Writer(self.client, self._after_batch, self.health)
        self._assign = self.client.register_script(_ASSIGN)
        self._append = self.client.register_script(_APPEND)
        self._create_room = self.client.register_script(_CREATE_ROOM)
        self._set_topic = self.client.register_script(_SET_TOPIC)
        self._append_dm = self.client.register_script(_APPEND_DM)
        self._set_marker = self.client.register_script(_SET_MARKER)
        self._create_account = self.client.register_script(_CREATE_ACCOUNT)
        self.change_script = self.client.register_script(_CHANGE)
        self._range = self.reads.register_script(_RANGE)
        self._changed = self.reads.register_script(_CHANGED)
        self.chat_id = ""
        # The node's search index (chat_server/redis_search.py), when it has one.
        self.search_index: SearchIndex | None = None

    # -- opening ------------------------------------------------------------------

    async def open(self) -> dict[str, RoomRecord]:
        try:
            if self.check_persistence:
                await check_persistence(self.client, self.url)
            await self.client.hsetnx(PREFIX + "chat", "id", _new_id())
            self.chat_id = str(await self.client.hget(PREFIX + "chat", "id"))
            rooms = await self.client.hgetall(PREFIX + "rooms")
            records: dict[str, RoomRecord] = {}
            for name, topic in rooms.items():
                last = await self.last_seq(name)
                if last and not await self.client.exists(_state(name)):
                    raise StoreError(
                        f"#{name} in Redis at {self.url} was written by an earlier version "
                        "(texts in the stream, no state hash): clear the chat's keys"
                    )
                rev = await self.client.get(PREFIX + "rev:" + name)
                records[name] = RoomRecord(name, topic, last, int(rev) if rev else last)
        except RedisError as exc:
            raise StoreError(f"cannot use Redis at {self.url}: {exc}") from exc
        self._writer.start()
        return records

    async def last_seq(self, room: str) -> int:
        last = await self.client.xrevrange(PREFIX + "log:" + room, count=1)
        return int(last[0][0].partition("-")[0]) if last else 0

    def _after_batch(self) -> None:
        if self.after_commits is not None:
            self.after_commits()

    def put(self, build: Build, commands: int, finish: Finish) -> None:
        """Queue a write of `commands` commands (used by the log and the cluster too)."""
        self._writer.put(_Write(build, commands, finish))

    def _put(self, build: Build, done: CommitCallback | None) -> None:
        def finish(_results: list[Any] | None, error: BaseException | None) -> None:
            if done is not None:
                done(error)

        self.put(build, 1, finish)

    # -- rooms and messages -------------------------------------------------------

    def create_room(self, room: str, done: CommitCallback | None = None) -> None:
        keys = [PREFIX + "rooms", PREFIX + "events"]
        args = [room, self.node, EVENTS_MAXLEN]
        self._put(lambda pipe: run_script(pipe, self._create_room, keys, args), done)

    def delete_room(self, room: str) -> None:
        """Rooms are not forgotten in Redis: another node may be using the room."""
        return None

    def sync(self, done: CommitCallback) -> None:
        self._put(lambda pipe: pipe.ping(), done)

    def append(self, message: StoredMessage, done: CommitCallback) -> None:
        keys = _message_keys(message.room)
        args = [message.room, message.seq, message.rev, state_body(message)]
        self._put(lambda pipe: run_script(pipe, self._append, keys, args), done)

    def update(self, message: StoredMessage, done: CommitCallback) -> None:
        """Store a change whose rev the caller took (`message.rev` must be the next one).

        Nodes do not use this: they change messages through `chat_server/redis_changes.py`,
        which takes the rev in Redis and checks the state it was computed from.
        """
        room = message.room
        keys = [_log(room), _state(room), PREFIX + "rev:" + room, PREFIX + "revs:" + room]
        kind = "d" if message.deleted else "u"
        args = [message.seq, -1, state_body(message), kind, "", now_ms(), "", 0, message.rev]
        self._put(lambda pipe: run_script(pipe, self.change_script, keys, args), done)

    async def message(self, room: str, seq: int) -> StoredMessage | None:
        if seq < 1:
            return None
        found = await self._read(self.reads.hget(_state(room), str(seq)))
        return None if found is None else parse_state(room, seq, found)

    async def changed_since(self, room: str, rev: int, limit: int) -> HistoryPage:
        keys = [PREFIX + "revs:" + room, _state(room)]
        got = await self._read(self._changed(keys=keys, args=[max(rev, 0), limit]))
        pairs = zip(got[1::2], got[2::2], strict=True)
        found = [parse_state(room, int(seq), value) for seq, value in pairs if value is not None]
        return HistoryPage(found, bool(got[0]))

    def set_topic(self, room: str, topic: str, done: CommitCallback) -> None:
        keys = [PREFIX + "rooms"]
        self._put(lambda pipe: run_script(pipe, self._set_topic, keys, [room, topic]), done)

    async def latest(self, room: str, limit: int) -> HistoryPage:
        return await self._page(room, "latest", 0, limit)

    async def before(self, room: str, seq: int, limit: int) -> HistoryPage:
        if seq <= 1:
            return HistoryPage([], False)
        return await self._page(room, "before", seq, limit)

    async def after(self, room: str, seq: int, limit: int) -> HistoryPage:
        return await self._page(room, "after", max(seq, 0), limit)

    async def _page(self, room: str, mode: str, seq: int, limit: int) -> HistoryPage:
        if limit <= 0:
            return HistoryPage([], False)
        got = await self._read(
            self._range(keys=[_log(room), _state(room)], args=[mode, seq, limit])
        )
        first, values = int(got[1]), got[2:]
        messages = [parse_state(room, first + i, value) for i, value in enumerate(values) if value]
        return HistoryPage(messages, bool(got[0]))

    async def search(
        self,
        terms: list[Term],
        rooms: list[str] | None,
        sender: str | None,
        limit: int,
        before: SearchCursor | None,
    ) -> SearchPage:
        index = self.search_index
        if index is None:
            raise StoreError("this node has no search index")
        return await index.search(terms, rooms, sender, limit, before)

    async def _read(self, call: Any) -> Any:
        try:
            return await call
        except (RedisError, OSError) as exc:
            raise StoreError(f"Redis is unavailable ({exc})") from exc

    async def close(self) -> None:
        await self._writer.close()
        await self.client.aclose()
        await self.reads.aclose()

    # -- accounts, stored DMs, markers ------------------------------------------------

    async def account(self, name: str) -> Account | None:
        found = await self._read(self.reads.hget(PREFIX + "accounts", key(name)))
        if found is None:
            return None
        data = json.loads(found)
        return Account(data["name"], data["hash"])

    async def account_names(self) -> list[str]:
        found = await self._read(self.reads.hgetall(PREFIX + "accounts"))
        return [json.loads(found[k])["name"] for k in sorted(found)]

    def create_account(self, account: Account, done: CommitCallback) -> None:
        value = json.dumps({"name": account.name, "hash": account.password_hash})

        def finish(results: list[Any] | None, error: BaseException | None) -> None:
            if error is None and results is not None and not results[0]:
                error = StoreError(f"{account.name} is already an account")
            done(error)

        keys = [PREFIX + "accounts", PREFIX + "events"]
        args = [key(account.name), value, account.name, self.node, EVENTS_MAXLEN]
        self.put(lambda pipe: run_script(pipe, self._create_account, keys, args), 1, finish)

    async def dm_seqs(self) -> dict[str, int]:
        found = await self._read(self.reads.hgetall(PREFIX + "dm-last"))
        return {pair: int(seq) for pair, seq in found.items()}

    def append_dm(self, dm: StoredDm, pending: bool, done: CommitCallback) -> None:
        keys = [PREFIX + "dm:" + dm.pair, PREFIX + "dm-last", PREFIX + "pending:" + key(dm.to)]
        args = [dm.pair, dm.seq, dm.sender, dm.to, dm.text, dm.ts_ms, int(pending)]
        self._put(lambda pipe: run_script(pipe, self._append_dm, keys, args), done)

    async def pending_dms(self, name: str) -> list[StoredDm]:
        refs = await self._read(self.reads.lrange(PREFIX + "pending:" + key(name), 0, -1))
        found: list[StoredDm] = []
        for ref in refs:
            pair, _, seq = ref.rpartition(" ")
            entries = await self._read(
                self.reads.xrange(PREFIX + "dm:" + pair, min=f"{seq}-0", max=f"{seq}-0")
            )
            found.extend(_dm(pair, entry_id, fields) for entry_id, fields in entries)
        return found

    def dms_delivered(self, name: str, dms: list[StoredDm], done: CommitCallback) -> None:
        pending = PREFIX + "pending:" + key(name)

        def build(pipe: Any) -> None:
            for dm in dms:
                pipe.lrem(pending, 0, f"{dm.pair} {dm.seq}")

        def finish(_results: list[Any] | None, error: BaseException | None) -> None:
            done(error)

        if not dms:
            done(None)
            return
        self.put(build, len(dms), finish)

    async def dm_history(
        self, pair: str, before: int | None, after: int | None, limit: int
    ) -> DmPage:
        stream = PREFIX + "dm:" + pair
        if after is not None:
            entries = await self._read(
                self.reads.xrange(stream, min=f"({after}-0", max="+", count=limit + 1)
            )
            rows = entries[:limit]
        else:
            top = "+" if before is None else f"({before}-0"
            if before is not None and before <= 1:
                return DmPage([], False)
            entries = await self._read(self.reads.xrevrange(stream, max=top, count=limit + 1))
            rows = entries[:limit][::-1]
        return DmPage([_dm(pair, i, f) for i, f in rows], len(entries) > limit)

    async def markers(self, name: str) -> dict[str, int]:
        found = await self._read(self.reads.hgetall(PREFIX + "markers:" + key(name)))
        return {target: int(seq) for target, seq in found.items()}

    def set_marker(self, name: str, target: str, seq: int, done: CommitCallback) -> None:
        keys = [PREFIX + "markers:" + key(name)]
        self._put(lambda pipe: run_script(pipe, self._set_marker, keys, [target, seq]), done)


class RedisLog(MessageLog):
    """Seqs and revs numbered in Redis; the fan-out is fed by the node's stream reader.

    An append's `done` runs once both are true: Redis answered with the seq, and
    this node's reader delivered that seq to the subscriber (so a sender always
    sees its `message` before its ack, as with one process). A room's stream holds
    its messages (`SEQ-0`) and the changes of them (`SEQ-N`, N >= 1) in rev order;
    the reader hands change entries to `change_entry` (chat_server/redis_changes.py).
    """

    def __init__(self, store: RedisStore) -> None:
        super().__init__()
        self.store = store
        self.fenced: str | None = None  # why this node must not write any more
        self._waiting: dict[tuple[str, int], tuple[AppendDone, StoredMessage]] = {}
        # The reader's position in each room's stream (the last entry id it handled).
        self.positions: dict[str, str] = {}
        # A change entry of a room with the changed message's state (None if it is gone).
        self.change_entry: Callable[[Room, dict[str, str], str | None], None] | None = None

    def append(
        self,
        room: Room,
        sender: str,
        text: str,
        action: bool,
        file: FileInfo | None,
        done: AppendDone,
        reply_to: int | None = None,
        author: str = "",
    ) -> None:
        if self.fenced is not None:
            done(None, StoreError(self.fenced))
            return
        name, ts_ms = room.name, now_ms()
        keys = _message_keys(name)
        made = StoredMessage(name, 0, sender, text, action, ts_ms, file, 0, reply_to, author=author)
        args = [name, state_body(made)]

        def finish(results: list[Any] | None, error: BaseException | None) -> None:
            if results is None:
                done(None, error)
                return
            seq, rev = (int(n) for n in results[0])
            message = replace(made, seq=seq, rev=rev)
            if room.delivered_seq >= message.seq:  # the reader was first
                done(message, None)
            else:
                self._waiting[(name, message.seq)] = (done, message)

        self.store.put(lambda pipe: run_script(pipe, self.store._assign, keys, args), 1, finish)

    async def pump(
        self, client: Any, rooms: Iterable[Room], others: dict[str, str], block_ms: int
    ) -> list[tuple[str, list[tuple[str, dict[str, str]]]]]:
        """One blocking `XREAD` of every room's log after the reader's position, and of
        `others` (stream -> last id read); deliver the room entries in order, return the rest.

        `client` is a connection of its own (`connect(url, blocking=True)`): a blocking
        read must not hold up the writes. The states of the messages read (texts are kept
        out of the streams, see `RedisStore`) come in one more round trip, after the
        `XREAD`. Raises what redis-py raises when Redis is gone.
        """
        by_stream = {_log(room.name): room for room in rooms}
        streams: dict[str, str] = dict(others)
        for stream, room in by_stream.items():
            streams[stream] = self.positions.get(room.name) or f"{room.delivered_seq}-0"
        if not streams:
            await asyncio.sleep(block_ms / 1000)
            return []
        got = await client.xread(streams, count=1000, block=block_ms)
        rest: list[tuple[str, list[tuple[str, dict[str, str]]]]] = []
        mine: list[tuple[Room, list[tuple[str, dict[str, str]]]]] = []
        for stream, entries in got or []:
            target = by_stream.get(stream)
            if target is None:
                rest.append((stream, entries))
            elif entries:
                mine.append((target, entries))
        if not mine:
            return rest
        pipe = client.pipeline(transaction=False)
        for room, entries in mine:
            seqs = [fields.get("m") or entry_id.partition("-")[0] for entry_id, fields in entries]
            pipe.hmget(_state(room.name), seqs)
        states = await pipe.execute()
        for (room, entries), found in zip(mine, states, strict=True):
            for (entry_id, fields), state in zip(entries, found, strict=True):
                if "m" in fields:
                    if int(fields["v"]) > room.delivered_rev and self.change_entry is not None:
                        self.change_entry(room, fields, state)
                elif state is not None:
                    self.deliver(room, parse_entry(room.name, entry_id, fields, state))
                self.positions[room.name] = entry_id
        return rest

    def deliver(self, room: Room, message: StoredMessage) -> None:
        """The reader's next message of `room` (seqs in order): fan out, then ack."""
        if message.seq <= room.delivered_seq:
            return
        self.subscriber(room, message)
        waiting = self._waiting.pop((room.name, message.seq), None)
        if waiting is not None:
            done, _ = waiting
            done(message, None)

    async def latest(self, room: str, limit: int) -> HistoryPage:
        return await self.store.latest(room, limit)

    async def before(self, room: str, seq: int, limit: int) -> HistoryPage:
        return await self.store.before(room, seq, limit)

    async def after(self, room: str, seq: int, limit: int) -> HistoryPage:
        return await self.store.after(room, seq, limit)


async def check_persistence(client: Any, url: str) -> None:
    """Refuse a Redis that could forget an acknowledged write (and so reissue a seq)."""
    try:
        config = await client.config_get("append*")
    except ResponseError as exc:
        raise StoreError(
            f"cannot read the persistence settings of Redis at {url} ({exc}); "
            "the chat needs appendonly yes and appendfsync always"
        ) from exc
    appendonly = config.get("appendonly")
    fsync = config.get("appendfsync")
    if appendonly != "yes" or fsync != "always":
        raise StoreError(
            f"Redis at {url} runs with appendonly {appendonly} and appendfsync {fsync}: "
            "it could forget acknowledged messages and hand their seqs out again; "
            "set `appendonly yes` and `appendfsync always` (redis.conf or CONFIG SET)"
        )


def _new_id() -> str:
    import secrets

    return secrets.token_hex(4)


def _log(room: str) -> str:
    return PREFIX + "log:" + room


def _state(room: str) -> str:
    return PREFIX + "state:" + room


def _message_keys(room: str) -> list[str]:
    """The keys of `_ASSIGN` and `_APPEND`."""
    return [
        PREFIX + "rooms",
        _log(room),
        _state(room),
        PREFIX + "rev:" + room,
        PREFIX + "revs:" + room,
    ]


def _dm(pair: str, entry_id: str, fields: dict[str, str]) -> StoredDm:
    return StoredDm(
        pair,
        int(entry_id.partition("-")[0]),
        fields["s"],
        fields["to"],
        fields["t"],
        int(fields["ts"]),
    )
