"""One node of a chat kept in Redis: presence shared with the other nodes, the fan-out reader,
heartbeats, and the clean-up of nodes that died.

- Nicks: `nick:KEY` (hash) `kind` guest|account, `name`, and one `n:NODE` field per node
  holding it; `node-nicks:NODE` (set) the keys a node holds. A claim is one Lua script,
  so two nodes never both hand out a guest nick.
- Members: `members:ROOM` (hash) field "NICK\\tNODE"; `node-members:NODE` (set)
  "ROOM\\tNICK". Each node mirrors the other nodes' members in `Room.remote`.
- Events (`events` stream): `room`, `topic`, `joined`, `left`, `nick`, `account`;
  every node reads them in the same `XREAD` as the room logs it knows, so a new room's
  log is read from its first message on.
- Heartbeats: `alive:NODE` with a TTL (`HEARTBEAT_TTL`), refreshed every
  `HEARTBEAT_INTERVAL`; `nodes` (hash) node -> its address. Every node checks the others
  each `HEARTBEAT_INTERVAL`; the first to find one without its key reaps it in one
  script (its nicks freed, a `left` event for each of its members), so a dead node's
  presence is gone from every node within TTL + interval (about 4 s).
- Fencing: a node remembers the chat id and the last seq it delivered in every room.
  When Redis comes back with another id, or a room log behind what this node already
  sent, Redis lost acknowledged writes: the node refuses every write from then on and
  stops, rather than give a sent seq to another message.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from redis.exceptions import RedisError

from protocol import (
    DirectMessage,
    ErrorCode,
    FileInfo,
    Joined,
    Left,
    NickChanged,
    TopicChanged,
    TypingNotice,
    format_ts,
    now_ms,
)

from .errors import ChatError
from .outbox import Outgoing
from .presence import Presence
from .redis_changes import RedisChanges
from .redis_moderation import MODERATION_EVENTS
from .redis_sessions import CLOSE_SESSION, HELD, OPEN_SESSION, SESSIONS
from .redis_store import (
    EVENTS_MAXLEN,
    PREFIX,
    RedisLog,
    RedisStore,
    connect,
    run_script,
)
from .store import RoomRecord

if TYPE_CHECKING:
    from .hub import ChatHub
    from .redis_search import RedisSearch
    from .rooms import Member, Room

__all__ = ["HEARTBEAT_INTERVAL", "HEARTBEAT_TTL", "ClusterNode", "RedisPresence"]

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL: Final = 1.0  # seconds between two heartbeats (and two checks of the others)
HEARTBEAT_TTL: Final = 3.0  # a node without a heartbeat this long is dead
READ_BLOCK_MS: Final = 2000
EVENTS: Final = PREFIX + "events"

# KEYS: nick hash, node-nicks set, events, held key. ARGV: node, name, kind, key, maxlen,
# address. 1: claimed, 0: taken, negative: held for another address (minus the ms left).
_CLAIM = """
local kind = redis.call('HGET', KEYS[1], 'kind')
if kind and (kind == 'guest' or ARGV[3] == 'guest') then return 0 end
if ARGV[3] == 'guest' then
  local held = redis.call('GET', KEYS[4])
  if held and held ~= ARGV[6] then return -math.max(redis.call('PTTL', KEYS[4]), 1) end
  if held then redis.call('DEL', KEYS[4]) end
end
redis.call('HSET', KEYS[1], 'kind', ARGV[3], 'name', ARGV[2], 'n:' .. ARGV[1], 1)
if redis.call('SADD', KEYS[2], ARGV[4]) == 1 then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'k', 'online', 'u', ARGV[2],
    'n', ARGV[1])
end
return 1
"""

# KEYS: nick hash, node-nicks set, events. ARGV: node, key, maxlen.
_RELEASE = """
redis.call('HDEL', KEYS[1], 'n:' .. ARGV[1])
if redis.call('SREM', KEYS[2], ARGV[2]) == 1 then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'k', 'offline', 'u', ARGV[2],
    'n', ARGV[1])
end
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(f, 1, 2) == 'n:' then return 1 end
end
redis.call('DEL', KEYS[1])
return 1
"""

# A guest's nick became an account: held by this node, it may now be held by others too.
# KEYS: nick hash. ARGV: node.
_UPGRADE = """
if redis.call('HEXISTS', KEYS[1], 'n:' .. ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 'kind', 'account')
end
return 1
"""

# ARGV: prefix, dead node, events maxlen. Only one node wins (HDEL), so one `left` each.
_REAP = """
local p, node = ARGV[1], ARGV[2]
if redis.call('EXISTS', p .. 'alive:' .. node) == 1 then return 0 end
if redis.call('HDEL', p .. 'nodes', node) == 0 then return 0 end
for _, k in ipairs(redis.call('SMEMBERS', p .. 'node-nicks:' .. node)) do
  local h = p .. 'nick:' .. k
  redis.call('HDEL', h, 'n:' .. node)
  local others = 0
  for _, f in ipairs(redis.call('HKEYS', h)) do
    if string.sub(f, 1, 2) == 'n:' then others = others + 1 end
  end
  if others == 0 then redis.call('DEL', h) end
  redis.call('XADD', p .. 'events', 'MAXLEN', '~', ARGV[3], '*', 'k', 'offline', 'u', k,
    'n', node)
end
redis.call('DEL', p .. 'node-nicks:' .. node)
for _, m in ipairs(redis.call('SMEMBERS', p .. 'node-members:' .. node)) do
  local tab = string.find(m, '\\t', 1, true)
  local room, nick = string.sub(m, 1, tab - 1), string.sub(m, tab + 1)
  redis.call('HDEL', p .. 'members:' .. room, nick .. '\\t' .. node)
  redis.call('XADD', p .. 'events', 'MAXLEN', '~', ARGV[3], '*', 'k', 'left', 'r', room,
    'u', nick, 'n', node, 'why', 'disconnected')
end
redis.call('DEL', p .. 'node-members:' .. node)
return 1
"""


class RedisPresence(Presence):
    """Nicks and members in Redis, written in order with the node's messages."""

    clustered = True

    def __init__(self, store: RedisStore, node: str) -> None:
        self.store = store
        self.node = node
        self._claim = store.client.register_script(_CLAIM)
        self._release = store.client.register_script(_RELEASE)
        self._upgrade = store.client.register_script(_UPGRADE)
        self._open_session = store.client.register_script(OPEN_SESSION)
        self._close_session = store.client.register_script(CLOSE_SESSION)
        # Who is online on the other nodes: nick key -> (name, the nodes it is on).
        self.elsewhere: dict[str, tuple[str, set[str]]] = {}
        # Away states on the other nodes: nick key -> node -> text.
        self.away: dict[str, dict[str, str]] = {}
        # Which away text is the latest, this node's or the others' (counters of changes).
        self._away_ticks: dict[str, tuple[int, int]] = {}  # nick key -> (here, elsewhere)
        self._tick = 0

    async def claim(self, nick: str, account: bool, ip: str = "") -> None:
        k = nick.lower()
        keys = [PREFIX + "nick:" + k, PREFIX + "node-nicks:" + self.node, EVENTS, HELD + k]
        args = [self.node, nick, "account" if account else "guest", k, EVENTS_MAXLEN, ip]
        results, error = await self._ask(self._claim, keys, args)
        if results is None:
            raise ChatError(
                ErrorCode.UNAVAILABLE, f"the shared store cannot take the nick now ({error})"
            )
        if int(results[0]) < 0:
            left = -int(results[0]) / 1000
            raise ChatError(
                ErrorCode.NICK_TAKEN,
                f"the nick {nick} is held for {left:.0f} s for its user, who was disconnected",
            )
        if not results[0]:
            raise ChatError(ErrorCode.NICK_TAKEN, f"the nick {nick} is taken")

    async def _ask(
        self, script: Any, keys: list[str], args: list[Any]
    ) -> tuple[list[Any] | None, BaseException | None]:
        """Run a script through the store's writer (in order with this node's writes)."""
        answer: asyncio.Future[tuple[list[Any] | None, BaseException | None]]
        answer = asyncio.get_running_loop().create_future()

        def finish(results: list[Any] | None, error: BaseException | None) -> None:
            if not answer.done():
                answer.set_result((results, error))

        self.store.put(lambda pipe: run_script(pipe, script, keys, args), 1, finish)
        return await answer

    def hold(self, nick: str, ip: str, seconds: float) -> None:
        held, ms = HELD + nick.lower(), max(1, int(seconds * 1000))
        self.store.put(lambda pipe: pipe.set(held, ip, px=ms), 1, _ignore)

    async def open_session(self, name: str, limit: int) -> None:
        keys = [SESSIONS + name.lower(), PREFIX + "nodes"]
        results, error = await self._ask(self._open_session, keys, [PREFIX, self.node, limit])
        if results is None:
            raise ChatError(
                ErrorCode.UNAVAILABLE, f"the shared store cannot count the sessions now ({error})"
            )
        if int(results[0]) < 0:
            raise ChatError(
                ErrorCode.TOO_MANY_SESSIONS,
                f"{name} has {-int(results[0])} sessions, the maximum",
            )

    def session_closed(self, name: str) -> None:
        keys = [SESSIONS + name.lower()]
        build = lambda pipe: run_script(pipe, self._close_session, keys, [self.node])  # noqa: E731
        self.store.put(build, 1, _ignore)

    def release(self, nick: str) -> None:
        k = nick.lower()
        keys = [PREFIX + "nick:" + k, PREFIX + "node-nicks:" + self.node, EVENTS]
        args = [self.node, k, EVENTS_MAXLEN]
        self.store.put(lambda pipe: run_script(pipe, self._release, keys, args), 1, _ignore)

    def account_made(self, nick: str) -> None:
        k = nick.lower()
        keys = [PREFIX + "nick:" + k]
        self.store.put(lambda pipe: run_script(pipe, self._upgrade, keys, [self.node]), 1, _ignore)
        # The guest's session is now one of the account's (the hub closes it if it is gone).
        self.store.put(lambda pipe: pipe.hincrby(SESSIONS + k, self.node, 1), 1, _ignore)

    def joined(self, room: str, nick: str) -> None:
        def build(pipe: Any) -> None:
            pipe.hset(PREFIX + "members:" + room, f"{nick}\t{self.node}", 1)
            pipe.sadd(PREFIX + "node-members:" + self.node, f"{room}\t{nick}")
            pipe.xadd(
                EVENTS, {"k": "joined", "r": room, "u": nick, "n": self.node}, maxlen=EVENTS_MAXLEN
            )

        self.store.put(build, 3, _ignore)

    def left(self, room: str, nick: str, reason: str | None) -> None:
        def build(pipe: Any) -> None:
            pipe.hdel(PREFIX + "members:" + room, f"{nick}\t{self.node}")
            pipe.srem(PREFIX + "node-members:" + self.node, f"{room}\t{nick}")
            event = {"k": "left", "r": room, "u": nick, "n": self.node, "why": reason or ""}
            pipe.xadd(EVENTS, event, maxlen=EVENTS_MAXLEN)

        self.store.put(build, 3, _ignore)

    def nick_changed(self, old: str, new: str, rooms: list[str]) -> None:
        def build(pipe: Any) -> None:
            for room in rooms:
                pipe.hdel(PREFIX + "members:" + room, f"{old}\t{self.node}")
                pipe.hset(PREFIX + "members:" + room, f"{new}\t{self.node}", 1)
                pipe.srem(PREFIX + "node-members:" + self.node, f"{room}\t{old}")
                pipe.sadd(PREFIX + "node-members:" + self.node, f"{room}\t{new}")
            pipe.xadd(EVENTS, {"k": "nick", "old": old, "u": new, "n": self.node})

        self.store.put(build, 4 * len(rooms) + 1, _ignore)

    def topic_changed(self, room: str, topic: str, by: str) -> None:
        event = {"k": "topic", "r": room, "t": topic, "u": by, "n": self.node}
        self.store.put(lambda pipe: pipe.xadd(EVENTS, event, maxlen=EVENTS_MAXLEN), 1, _ignore)

    def online_elsewhere(self, nick: str) -> str | None:
        found = self.elsewhere.get(nick.lower())
        return found[0] if found is not None and found[1] else None

    def dm_sent(self, dm: DirectMessage, pair: str | None) -> None:
        event = {"k": "dm", "f": dm.sender, "u": dm.to, "t": dm.text, "ts": dm.ts, "n": self.node}
        if pair is not None and dm.seq is not None:
            event.update(pair=pair, seq=str(dm.seq))
        if dm.file is not None:  # a shared file (files/sharing.py): its record is in Redis
            event["file"] = dm.file.model_dump_json(exclude_none=True)
        self.store.put(lambda pipe: pipe.xadd(EVENTS, event, maxlen=EVENTS_MAXLEN), 1, _ignore)

    def away_changed(self, nick: str, text: str | None) -> None:
        if text:
            self._tick += 1
            ticks = self._away_ticks.get(nick.lower(), (0, 0))
            self._away_ticks[nick.lower()] = (self._tick, ticks[1])
        event = {"k": "away", "u": nick, "t": text or "", "n": self.node}
        self.store.put(lambda pipe: pipe.xadd(EVENTS, event, maxlen=EVENTS_MAXLEN), 1, _ignore)

    def away_elsewhere(self, nick: str) -> str | None:
        """Away when every other node holding `nick` says so (the latest text)."""
        k = nick.lower()
        states = self.away.get(k)
        holders = self.elsewhere.get(k, ("", set()))[1]
        if not states or not holders or not holders <= states.keys():
            return None
        return next(reversed(states.values()))

    def combine_away(self, nick: str, here: str | None, local: bool) -> str | None:
        """Away only while every session on every node is: this node's (when it has
        sessions) and each other node holding `nick`; the text is the latest set."""
        k = nick.lower()
        holders = self.elsewhere.get(k, ("", set()))[1]
        states = self.away.get(k, {})
        if (local and here is None) or not (local or holders):
            return None
        if not holders <= states.keys():
            return None
        elsewhere = next(reversed(states.values())) if holders and states else None
        if here is None or elsewhere is None:
            return here or elsewhere
        mine, theirs = self._away_ticks.get(k, (0, 0))
        return here if mine >= theirs else elsewhere

    def set_away(self, nick: str, node: str, text: str) -> None:
        states = self.away.setdefault(nick.lower(), {})
        states.pop(node, None)
        if text:
            states[node] = text
            self._tick += 1
            ticks = self._away_ticks.get(nick.lower(), (0, 0))
            self._away_ticks[nick.lower()] = (ticks[0], self._tick)
        elif not states:
            del self.away[nick.lower()]

    def typing(self, notice: TypingNotice, to: str | None) -> None:
        event = {"k": "typing", "f": notice.sender, "s": notice.state, "n": self.node}
        if notice.room is not None:
            event["r"] = notice.room
        if to is not None:
            event["u"] = to
        self.store.put(lambda pipe: pipe.xadd(EVENTS, event, maxlen=EVENTS_MAXLEN), 1, _ignore)

    def online(self, name: str, node: str) -> None:
        entry = self.elsewhere.setdefault(name.lower(), (name, set()))
        self.elsewhere[name.lower()] = (name, {*entry[1], node})

    def offline(self, nick_key: str, node: str) -> None:
        states = self.away.get(nick_key)
        if states is not None:
            states.pop(node, None)
            if not states:
                del self.away[nick_key]
        entry = self.elsewhere.get(nick_key)
        if entry is not None:
            entry[1].discard(node)
            if not entry[1]:
                del self.elsewhere[nick_key]
                self._away_ticks.pop(nick_key, None)


def _ignore(_results: list[Any] | None, _error: BaseException | None) -> None:
    return None


class ClusterNode:
    """This process as one node: reads every room log and the events, beats, reaps."""

    def __init__(
        self, url: str, address: str = "", on_fatal: Callable[[str], None] | None = None
    ) -> None:
        self.url = url
        self.node = secrets.token_hex(4)
        self.address = address
        self.store = RedisStore(url, node=self.node)
        self.log = RedisLog(self.store)
        self.changes = RedisChanges(self.log)  # edits, deletes, reactions (redis_changes.py)
        self.search: RedisSearch | None = None  # the node's search index (redis_search.py)
        self.presence = RedisPresence(self.store, self.node)
        self._on_fatal = on_fatal
        self._hub: ChatHub | None = None
        self._events_id = "0-0"
        self._tasks: list[asyncio.Task[None]] = []
        self._reader = connect(url, blocking=True)
        self._beater = connect(url)
        self._reap = self._beater.register_script(_REAP)
        self._down = False
        self._closing = False

    async def prepare(self) -> None:
        """Before the store opens: where this node starts reading the events."""
        try:
            last = await self._beater.xrevrange(EVENTS, count=1)
        except RedisError as exc:
            from .store import StoreError

            raise StoreError(f"cannot use Redis at {self.url}: {exc}") from exc
        self._events_id = last[0][0] if last else "0-0"

    async def open_search(self, path: str | None) -> None:
        """After the store opened: the node's search index (a copy at `path`, or a temp file)."""
        from .redis_search import RedisSearch

        index = self.search = RedisSearch(self.store, path)
        await index.open()
        self.store.search_index = index
        self.store.supports_search = True

    async def start(self, hub: ChatHub) -> None:
        """After the hub loaded the rooms: mirror the other nodes' members, start the tasks."""
        self._hub = hub
        for node in await self._beater.hkeys(PREFIX + "nodes"):
            if node == self.node:
                continue
            for k in await self._beater.smembers(PREFIX + "node-nicks:" + node):
                name = await self._beater.hget(PREFIX + "nick:" + k, "name")
                if name is not None:
                    self.presence.online(name, node)
        for room in hub.rooms:
            members = await self._beater.hgetall(PREFIX + "members:" + room.name)
            for field in members:
                nick, _, node = field.partition("\t")
                room.remote_add(nick, node)
        await self._beat()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._read_loop(), name="redis-reader"),
            loop.create_task(self._heartbeat_loop(), name="redis-heartbeat"),
        ]

    async def close(self) -> None:
        self._closing = True
        await self.changes.eraser.close()
        if self.search is not None:
            await self.search.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        try:  # leave at once rather than wait for the TTL
            await self._beater.delete(PREFIX + "alive:" + self.node)
            await self._reap(args=[PREFIX, self.node, EVENTS_MAXLEN])
        except (RedisError, OSError):
            pass
        await self._reader.aclose()
        await self._beater.aclose()

    # -- heartbeats and the dead ----------------------------------------------------

    async def _beat(self) -> None:
        pipe = self._beater.pipeline(transaction=False)
        pipe.set(PREFIX + "alive:" + self.node, 1, px=int(HEARTBEAT_TTL * 1000))
        pipe.hset(PREFIX + "nodes", self.node, self.address)
        _, added = await pipe.execute()
        if added and self._hub is not None and self._tasks:
            log.warning("this node was taken for dead (no heartbeat for a while); rejoining")
            await self._republish()

    async def _heartbeat_loop(self) -> None:
        while not self._closing:
            await asyncio.sleep(HEARTBEAT_INTERVAL)
            try:
                await self._beat()
                for node in await self._beater.hkeys(PREFIX + "nodes"):
                    if node != self.node and not await self._beater.exists(
                        PREFIX + "alive:" + node
                    ):
                        if await self._reap(args=[PREFIX, node, EVENTS_MAXLEN]):
                            log.warning("node %s stopped beating: its sessions are gone", node)
            except (RedisError, OSError):
                continue  # the reader logs Redis going away

    async def _republish(self) -> None:
        """After being reaped: claim this node's nicks and members again."""
        hub = self._hub
        assert hub is not None
        for sessions in list(hub._online.values()):
            if sessions:
                try:
                    await self.presence.claim(sessions[0].nick, sessions[0].account)
                except ChatError as exc:
                    log.warning("could not claim %s again: %s", sessions[0].nick, exc.message)
        for room in hub.rooms:
            for nick in dict.fromkeys(member.nick for member in room.members):
                self.presence.joined(room.name, nick)

    # -- the reader -----------------------------------------------------------------

    async def _read_loop(self) -> None:
        hub = self._hub
        assert hub is not None
        while not self._closing:
            try:
                got = await self.log.pump(
                    self._reader, list(hub.rooms), {EVENTS: self._events_id}, READ_BLOCK_MS
                )
                if self._down:
                    await self._check_fence(hub)
            except (RedisError, OSError) as exc:
                self._down = True
                self.store.health.failed(exc)
                await asyncio.sleep(0.3)
                continue
            if self._down:
                self._down = False
                self.store.health.works()
                log.info("reading the room logs again from where this node was")
            for _stream, entries in got:  # the events: the room logs were delivered
                for entry_id, fields in entries:
                    self._events_id = entry_id
                    self._apply(hub, fields)
            flush = self.store.after_commits
            if flush is not None:
                flush()

    async def _check_fence(self, hub: ChatHub) -> None:
        """Redis came back: refuse to go on if it lost what this node already sent."""
        chat_id = await self._beater.hget(PREFIX + "chat", "id")
        reason = None
        if chat_id != self.store.chat_id:
            reason = f"Redis came back without this chat (id {chat_id}, was {self.store.chat_id})"
        else:
            for room in hub.rooms:
                if room.delivered_seq and await self.store.last_seq(room.name) < room.delivered_seq:
                    reason = (
                        f"Redis came back with #{room.name} behind seq {room.delivered_seq}, "
                        "which was already sent"
                    )
                    break
        if reason is not None:
            self.fence(reason)

    def fence(self, reason: str) -> None:
        message = f"{reason}: it lost acknowledged writes; this node stops rather than reissue seqs"
        log.critical("%s", message)
        self.log.fenced = message
        self._closing = True
        if self._on_fatal is not None:
            self._on_fatal(message)

    def _apply(self, hub: ChatHub, fields: dict[str, str]) -> None:
        """One event from any node (this one's own are skipped where they were done here)."""
        kind, node = fields.get("k"), fields.get("n")
        if kind == "room":
            name = fields["r"]
            if hub.rooms.get(name) is None:
                hub.rooms.load([RoomRecord(name)])
            return
        if node == self.node:
            return
        if kind in MODERATION_EVENTS:
            hub.moderator.from_elsewhere(fields)
            return
        if kind == "file":  # the files index (chat_server/files/redis_index.py)
            if hub.files is not None:
                hub.files.from_elsewhere(fields)
            return
        if kind == "account":
            hub.accounts.names[fields["u"].lower()] = fields["u"]
            return
        if kind == "online":
            self.presence.online(fields["u"], str(node))
            hub.away_shown(fields["u"])  # a new session is here
            return
        if kind == "offline":
            self.presence.offline(fields["u"], str(node))
            hub.away_shown(fields["u"])  # the sessions still on are all away, maybe
            return
        if kind == "dm":
            seq = fields.get("seq")
            shared = fields.get("file")
            dm = DirectMessage(
                sender=fields["f"],
                to=fields["u"],
                text=fields["t"],
                ts=fields["ts"],
                seq=int(seq) if seq else None,
                file=FileInfo.model_validate_json(shared) if shared else None,
            )
            hub.dm_from_elsewhere(dm, fields.get("pair"))
            return
        room = hub.rooms.get(fields.get("r", ""))
        if kind == "away":
            self.presence.set_away(fields["u"], str(node), fields["t"])
            hub.away_shown(fields["u"])
            return
        if kind == "typing":
            if room is not None:
                notice = TypingNotice(room=room.name, sender=fields["f"], state=fields["s"])
                hub.typing_from_elsewhere(notice, room.members)
            elif "u" in fields:
                notice = TypingNotice(sender=fields["f"], state=fields["s"])
                hub.typing_from_elsewhere(notice, hub.sessions_of(fields["u"]))
            return
        ts = format_ts(now_ms())
        if kind == "topic" and room is not None:
            room.topic = fields["t"]
            room.broadcast(
                Outgoing(TopicChanged(room=room.name, topic=room.topic, by=fields["u"], ts=ts))
            )
        elif kind == "joined" and room is not None:
            nick = fields["u"]
            present = _present(room, nick)
            room.remote_add(nick, str(node))
            if not present and not hub.crowded(room):  # --presence-limit, as for a local join
                room.broadcast(Outgoing(Joined(room=room.name, nick=nick, ts=ts)))
        elif kind == "left" and room is not None:
            nick = fields["u"]
            crowded = hub.crowded(room)  # counted with the leaver, as for a local part
            if room.remote_remove(nick, str(node)) and not crowded and not _present(room, nick):
                reason = fields.get("why") or None
                room.broadcast(Outgoing(Left(room=room.name, nick=nick, reason=reason, ts=ts)))
        elif kind == "nick":
            self._renamed(hub, fields["old"], fields["u"], str(node), ts)

    def _renamed(self, hub: ChatHub, old: str, new: str, node: str, ts: str) -> None:
        out = Outgoing(NickChanged(old=old, new=new, ts=ts))
        told: set[Member] = set()
        for room in hub.rooms:
            nodes = room.remote.get(old)
            if nodes is None or node not in nodes:
                continue
            room.remote_remove(old, node)
            room.remote_add(new, node)
            room.seal()
            for member in room.members:
                if member not in told:
                    told.add(member)
                    member.send(out)


def _present(room: Room, nick: str) -> bool:
    return room.has_nick(nick)
