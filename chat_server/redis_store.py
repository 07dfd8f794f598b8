"""The Redis store and message log: one chat shared by several server processes.

Keys (all under `PREFIX`):

- `chat` (hash): `id`, the server id every node of this chat announces;
- `rooms` (hash): room name -> topic; a room exists while its field does;
- `log:ROOM` (stream): the room's messages, entry id `SEQ-0`, fields `s` sender,
  `t` text, `a` action (0/1), `ts` milliseconds, `f` the shared file (JSON or ""),
  `r` the seq it replies to (or ""), `u` its author ("account:NAME", "guest:TOKEN");
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

Edits, deletes and reactions are not kept in Redis yet: a message's rev is its
seq (no change ever takes a rev), `changed_since` is the messages after that
seq, and `update` is refused; a node does not offer `edit`/`react` and refuses
those requests (`supports_changes`). Ops, bans and search are not kept or indexed
here either: a node offers neither `moderation` nor `search` and refuses them.

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
from dataclasses import dataclass
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
from .store import CommitCallback, HistoryPage, RoomRecord, Store, StoredMessage, StoreError

__all__ = [
    "CHANGES_UNSUPPORTED",
    "PREFIX",
    "RedisLog",
    "RedisStore",
    "connect",
    "parse_entry",
    "run_script",
]

log = logging.getLogger(__name__)

PREFIX: Final = "lanchat:"
CHANGES_UNSUPPORTED: Final = (
    "this server is one node of several on Redis (--redis): edits, deletes and "
    "reactions are not supported there"
)
EVENTS_MAXLEN: Final = 10_000  # events kept for nodes that fall behind (approximate)

# Next seq of a room, numbered where every node numbers: in Redis.
# KEYS: rooms hash, room log. ARGV: room, sender, text, action, ts, file, reply_to, author.
_ASSIGN = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return redis.error_reply('NOROOM the room is not stored')
end
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local seq = 1
if #last > 0 then seq = tonumber(string.match(last[1][1], '^(%d+)')) + 1 end
redis.call('XADD', KEYS[2], seq .. '-0', 's', ARGV[2], 't', ARGV[3], 'a', ARGV[4],
  'ts', ARGV[5], 'f', ARGV[6], 'r', ARGV[7], 'u', ARGV[8])
return seq
"""

# A message numbered by the caller: refused unless it follows the room's last seq.
# KEYS: rooms hash, room log. ARGV: room, seq, sender, text, action, ts, file, reply_to,
# author.
_APPEND = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return redis.error_reply('NOROOM the room is not stored')
end
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local seq = 0
if #last > 0 then seq = tonumber(string.match(last[1][1], '^(%d+)')) end
if tonumber(ARGV[2]) ~= seq + 1 then
  return redis.error_reply('GAP seq ' .. ARGV[2] .. ' does not follow ' .. seq)
end
redis.call('XADD', KEYS[2], ARGV[2] .. '-0', 's', ARGV[3], 't', ARGV[4], 'a', ARGV[5],
  'ts', ARGV[6], 'f', ARGV[7], 'r', ARGV[8], 'u', ARGV[9])
return seq + 1
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


def parse_entry(room: str, entry_id: str, fields: dict[str, str]) -> StoredMessage:
    """A room log entry as a stored message (its seq is the entry id's first part)."""
    file_json = fields.get("f", "")
    reply_to = fields.get("r", "")
    seq = int(entry_id.partition("-")[0])
    return StoredMessage(
        room,
        seq,
        fields["s"],
        fields["t"],
        fields.get("a") == "1",
        int(fields["ts"]),
        FileInfo.model_validate_json(file_json) if file_json else None,
        seq,  # no change takes a rev on Redis (see the module's docstring)
        int(reply_to) if reply_to else None,
        author=fields.get("u", ""),
    )


def _file_json(file: FileInfo | None) -> str:
    return "" if file is None else file.model_dump_json()


class RedisStore(Store):
    """Rooms, topics, messages, accounts, DMs and markers in one Redis (a chat of nodes)."""

    supports_changes = False  # edits, deletes, reactions: see the module's docstring
    supports_moderation = False  # ops and bans would be one node's only
    supports_search = False  # no index of the chat in Redis

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
        self.chat_id = ""

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
                records[name] = RoomRecord(name, topic, await self.last_seq(name))
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
        keys = [PREFIX + "rooms", PREFIX + "log:" + message.room]
        args = [
            message.room,
            message.seq,
            message.sender,
            message.text,
            int(message.action),
            message.ts_ms,
            _file_json(message.file),
            "" if message.reply_to is None else message.reply_to,
            message.author,
        ]
        self._put(lambda pipe: run_script(pipe, self._append, keys, args), done)

    def update(self, message: StoredMessage, done: CommitCallback) -> None:
        done(StoreError(CHANGES_UNSUPPORTED))

    async def message(self, room: str, seq: int) -> StoredMessage | None:
        if seq < 1:
            return None
        entries = await self._read(
            self.reads.xrange(_log(room), min=f"{seq}-0", max=f"{seq}-0", count=1)
        )
        return parse_entry(room, *entries[0]) if entries else None

    async def changed_since(self, room: str, rev: int, limit: int) -> HistoryPage:
        # A message's rev is its seq here: the messages changed after `rev` are those after it.
        return await self.after(room, max(rev, 0), limit)

    def set_topic(self, room: str, topic: str, done: CommitCallback) -> None:
        keys = [PREFIX + "rooms"]
        self._put(lambda pipe: run_script(pipe, self._set_topic, keys, [room, topic]), done)

    async def latest(self, room: str, limit: int) -> HistoryPage:
        entries = await self._read(self.reads.xrevrange(_log(room), count=limit + 1))
        return _page(room, entries[:limit][::-1], len(entries) > limit)

    async def before(self, room: str, seq: int, limit: int) -> HistoryPage:
        if seq <= 1:
            return HistoryPage([], False)
        entries = await self._read(
            self.reads.xrevrange(_log(room), max=f"({seq}-0", min="-", count=limit + 1)
        )
        return _page(room, entries[:limit][::-1], len(entries) > limit)

    async def after(self, room: str, seq: int, limit: int) -> HistoryPage:
        entries = await self._read(
            self.reads.xrange(_log(room), min=f"({seq}-0", max="+", count=limit + 1)
        )
        return _page(room, entries[:limit], len(entries) > limit)

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
    """Seqs numbered in Redis; the fan-out is fed by the node's stream reader (`deliver`).

    An append's `done` runs once both are true: Redis answered with the seq, and
    this node's reader delivered that seq to the subscriber (so a sender always
    sees its `message` before its ack, as with one process).
    """

    def __init__(self, store: RedisStore) -> None:
        super().__init__()
        self.store = store
        self.fenced: str | None = None  # why this node must not write any more
        self._waiting: dict[tuple[str, int], tuple[AppendDone, StoredMessage]] = {}

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
        keys = [PREFIX + "rooms", _log(name)]
        args = [
            name,
            sender,
            text,
            int(action),
            ts_ms,
            _file_json(file),
            "" if reply_to is None else reply_to,
            author,
        ]

        def finish(results: list[Any] | None, error: BaseException | None) -> None:
            if results is None:
                done(None, error)
                return
            seq = int(results[0])
            message = StoredMessage(
                name, seq, sender, text, action, ts_ms, file, seq, reply_to, author=author
            )
            if room.delivered_seq >= message.seq:  # the reader was first
                done(message, None)
            else:
                self._waiting[(name, message.seq)] = (done, message)

        self.store.put(lambda pipe: run_script(pipe, self.store._assign, keys, args), 1, finish)

    async def pump(
        self, client: Any, rooms: Iterable[Room], others: dict[str, str], block_ms: int
    ) -> list[tuple[str, list[tuple[str, dict[str, str]]]]]:
        """One blocking `XREAD` of every room's log after its delivered seq, and of `others`
        (stream -> last id read); deliver the room messages in order, return the rest.

        `client` is a connection of its own (`connect(url, blocking=True)`): a blocking
        read must not hold up the writes. Raises what redis-py raises when Redis is gone.
        """
        by_stream = {_log(room.name): room for room in rooms}
        streams: dict[str, str] = dict(others)
        for stream, room in by_stream.items():
            streams[stream] = f"{room.delivered_seq}-0"
        if not streams:
            await asyncio.sleep(block_ms / 1000)
            return []
        got = await client.xread(streams, count=1000, block=block_ms)
        rest: list[tuple[str, list[tuple[str, dict[str, str]]]]] = []
        for stream, entries in got or []:
            target = by_stream.get(stream)
            if target is None:
                rest.append((stream, entries))
                continue
            for entry_id, fields in entries:
                self.deliver(target, parse_entry(target.name, entry_id, fields))
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


def _page(room: str, entries: Sequence[tuple[str, dict[str, str]]], more: bool) -> HistoryPage:
    return HistoryPage([parse_entry(room, i, f) for i, f in entries], more)


def _dm(pair: str, entry_id: str, fields: dict[str, str]) -> StoredDm:
    return StoredDm(
        pair,
        int(entry_id.partition("-")[0]),
        fields["s"],
        fields["to"],
        fields["t"],
        int(fields["ts"]),
    )
