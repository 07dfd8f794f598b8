"""Client side of the fan-out load benchmark: one worker process driving many connections.

Clients that must react at once (senders, latency probes, IRC's completion listeners) are
raw `asyncio.Protocol`s on uvloop. While clients register and join, lines are read one at
a time (that phase is not measured); during the run a chunk is never split into lines: a
`re.findall` over the whole chunk pulls out only what the client needs (the room `seq`,
or the sender id `s=`, its counter `n=` and the send time `t=`). Receive-only clients are
plain non-blocking sockets polled every few milliseconds; they do not parse at all but
keep a CRC-32 of their stream, compared at the end with a probe's (same room, same bytes).

Each message's text is `s=<sender> n=<counter> t=<time.monotonic_ns()> xxx…`. The clock
is CLOCK_MONOTONIC, the same in every process, so a receiver in another process computes
the latency directly.

With `features` (chat-server only, `bench.load --features`: a subset of `USES`) the
clients use version 2. Each asks for `FEATURES` in `hello`. With `accounts` it registers
an account on a connection of its own first and then logs in with it; with `typing` a
sender sends `typing` `active` before every message (the server lets one through per
2 s); with `reply` every `REPLY_EVERY`-th message is a reply to the latest seq the sender
has seen; with `react` it reacts to the latest seq it has seen after every
`REACT_EVERY`-th message (once per seq). The probes then follow the room's `rev`, which
every message and every reaction takes with no gap, so one check covers both; each must
receive every reaction and every reply exactly once, and `typing` from every sender. The
senders check their message seqs as without features and count the lines that carry a
rev: as many as messages and reactions sent. (Those checks are what the load generator
pays most for with features on, and the senders share a process and the machine's two
cores with the server: the full check once, at the probes, keeps the instrument light.)

The worker talks to the orchestrating process (`bench.load`) over a pipe:
parent -> ("settle", idle_s, give_up_s) | ("go", start_ns, end_ns) |
("expect", {sender: sent}, give_up_s, reactions, replies) | ("close",); worker ->
("ready", s) | ("failed", why) | ("settled", s) | ("stopped", ({sender: sent}, reactions,
replies)) | ("result", WorkerResult); reactions and replies are 0 without features.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import resource
import socket
import time
import zlib
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Final, Literal, cast

__all__ = ["USES", "Kind", "WorkerPlan", "WorkerResult", "raise_fd_limit", "run_worker"]

Kind = Literal["chat", "irc", "ceiling"]

ROOM: Final = "bench"
CHANNEL: Final = "#bench"

# Fast-path patterns, applied to whole chunks of complete lines.
SEQ_RE: Final = re.compile(rb'"seq":(\d+)')
CHAT_PROBE_RE: Final = re.compile(rb'"seq":(\d+),"from":"[^"]*","text":"s=(\d+) n=(\d+) t=(\d+)')
PAIR_RE: Final = re.compile(rb"s=(\d+) n=(\d+) ")
TRIPLE_RE: Final = re.compile(rb"s=(\d+) n=(\d+) t=(\d+)")
# With features: messages and reactions only (`"type":"reaction"` also carries a "seq").
MESSAGE_SEQ_RE: Final = re.compile(rb'"type":"message","room":"[^"]*","seq":(\d+)')
REV_RE: Final = re.compile(rb'"rev":(\d+)')
TYPING_FROM_RE: Final = re.compile(rb'"type":"typing","room":"[^"]*","from":"c(\d+)"')
REACTION_MARK: Final = b'"type":"reaction"'
REPLY_MARK: Final = b',"reply_to":'
FEATURES: Final = ("accounts", "reply", "edit", "react", "typing")  # asked for in `hello`
USES: Final = ("accounts", "typing", "reply", "react")  # what `bench.load --features` can use
PASSWORD: Final = b"bench-password"
REPLY_EVERY: Final = 4  # every 4th message of a sender is a reply
REACT_EVERY: Final = 10  # a reaction after every 10th message of a sender
TYPING_LINE: Final = b'{"type":"typing","room":"%s","state":"active"}\n' % ROOM.encode()
REACT_LINE: Final = b'{"type":"react","room":"%s","seq":%%d,"emoji":"%s"}\n' % (
    ROOM.encode(),
    "\N{THUMBS UP SIGN}".encode(),
)
MAX_SAMPLES: Final = 4_000_000  # latency samples kept per worker
MAX_ERRORS: Final = 20  # integrity problems kept per worker
POLL_SLICE: Final = 32  # polled sockets read per loop pass
POLLED_RCVBUF: Final = 4 << 20  # SO_RCVBUF of a polled socket (capped by net.core.rmem_max)
KEEPALIVE_S: Final = 10.0


def nick_of(index: int) -> str:
    return f"c{index:05d}"


def raise_fd_limit() -> int:
    """Raise RLIMIT_NOFILE to the hard limit; return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@dataclass(frozen=True)
class WorkerPlan:
    """What one worker process does; built by `bench.load`."""

    kind: Kind
    host: str
    port: int
    clients: tuple[int, ...]  # global client indexes handled by this worker
    senders: tuple[int, ...]  # global indexes of every sender (all workers)
    probes: frozenset[int]  # clients that record the latency of every message
    active: frozenset[int]  # clients read as soon as data arrives; the others are polled
    mirrors: tuple[tuple[int, int], ...]  # IRC closed loop: (sender, client that reports it)
    window: int  # closed loop: messages in flight per sender; 0 means open loop
    rate: float  # open loop: messages per second per sender
    text_len: int  # characters of chat text per message
    join: bool  # join the room (scenario d only registers)
    connect_concurrency: int
    setup_timeout: float
    poll_interval: float  # seconds between reads of receive-only clients; 0: event-driven
    features: frozenset[str] = frozenset()  # chat-server: out of `USES` (see above)


@dataclass
class WorkerResult:
    """What one worker measured, sent back to the orchestrator."""

    completed: int = 0  # closed loop: own messages come back during the window
    messages_checked: int = 0  # deliveries checked one by one (senders and probes)
    checked_clients: int = 0  # clients that verified every message themselves
    # (index, crc32, bytes, is_reference): receive-only clients, and the probes whose
    # streams they must equal (for IRC, probes that are not senders)
    digests: list[tuple[int, int, int, bool]] = field(default_factory=list)
    latencies: bytes = b""  # array('q') of ns samples from the probes
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    reactions: int = 0  # with features: reactions received, all probes together
    typing: int = 0  # with features: typing notices received, all probes together


class Worker:
    """The clients of one process, their counters, and the run's clock."""

    def __init__(self, plan: WorkerPlan) -> None:
        self.plan = plan
        self.loop = asyncio.get_running_loop()
        self.clients: list[Client] = []
        self.senders: list[Client] = []
        self.polled: list[Client] = []
        self.closing = False
        self.hashing = False
        self.rx_bytes = 0
        self.sending = False
        self.recording = False
        self.samples = array("q")
        self.errors: list[str] = []
        self.error_count = 0
        self.reactions_expected = 0  # with features: reactions sent by every sender
        self.replies_expected = 0  # with features: replies sent by every sender

    def error(self, text: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(text)

    def record(self, values: list[int]) -> None:
        if len(self.samples) < MAX_SAMPLES:
            self.samples.extend(values)


class Client(asyncio.Protocol):
    """One connection. Subclasses know a server's greeting and how to read its messages."""

    def __init__(self, worker: Worker, index: int, sender: bool, probe: bool) -> None:
        self.worker = worker
        self.index = index
        self.nick = nick_of(index)
        self.sid = b"%d" % index
        self.is_sender = sender
        self.probe = probe
        self.transport: asyncio.Transport | None = None
        self.sock: socket.socket | None = None  # polled clients (see `PolledReader`)
        self.buf = b""
        self.setup = True
        self.ready: asyncio.Future[None] = worker.loop.create_future()
        self.delivered = 0
        self.bad = False
        # Receive-only clients do not parse: they keep a CRC-32 and a byte count of what
        # they got from the start of the run, compared at the end with a probe's, which
        # checked every message (every member of a room gets the same bytes).
        self.digest_only = False
        self.crc = 0
        self.nbytes = 0
        # sending
        self.counter = 0
        self.inflight = 0
        self.completed = 0
        self.completed_in_window = 0
        self.line_format = b""
        self.timer: asyncio.TimerHandle | None = None
        # closed loop: sender id -> the sender whose message this client's receipt completes
        self.completes: dict[bytes, Client] = {}
        # with features (chat-server only)
        self.reply_format = b""
        self.reacted_seq = 0  # the latest seq this sender reacted to
        self.reactions_sent = 0
        self.replies_sent = 0

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.connected()

    def connected(self) -> None:
        """The connection is up (a transport, or a polled socket): start registering."""
        self.line_format = self.make_line_format()

    def data_received(self, data: bytes) -> None:
        worker = self.worker
        worker.rx_bytes += len(data)
        if self.buf:
            data = self.buf + data
        end = data.rfind(b"\n") + 1
        if end == 0:
            self.buf = data
            return
        if end == len(data):
            self.buf = b""
        else:
            self.buf = data[end:]
            data = data[:end]
        if self.setup:
            data = self.setup_lines(data)
            if not data:
                return
        if worker.hashing:
            self.crc = zlib.crc32(data, self.crc)
            self.nbytes += len(data)
        if not self.digest_only:
            self.consume(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"{self.nick}: connection lost ({exc})"))
        elif self.worker.sending or self.worker.recording:
            self.fail(f"connection lost ({exc})")

    # -- per-kind behaviour ------------------------------------------------------------------

    def make_line_format(self) -> bytes:
        raise NotImplementedError

    def setup_lines(self, data: bytes) -> bytes:
        """Handle complete registration lines; return what is left once registered."""
        raise NotImplementedError

    def consume(self, chunk: bytes) -> None:
        """Read a chunk of complete lines during the run."""
        raise NotImplementedError

    def expected_ok(self, sent: dict[int, int], total: int) -> bool:
        raise NotImplementedError

    def shortfall(self, sent: dict[int, int], total: int) -> str:
        raise NotImplementedError

    # -- helpers ---------------------------------------------------------------------------

    def registered(self) -> None:
        self.setup = False
        if not self.ready.done():
            self.ready.set_result(None)

    def fail_setup(self, line: bytes) -> None:
        if not self.ready.done():
            text = line.decode(errors="replace").strip()
            self.ready.set_exception(RuntimeError(f"{self.nick}: {text}"))

    def fail(self, text: str) -> None:
        if not self.bad:
            self.bad = True
            self.worker.error(f"{self.nick}: {text}")

    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)
        else:
            # A polled client only writes short registration lines and PONGs.
            assert self.sock is not None
            self.sock.sendall(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()
        if self.sock is not None:
            self.sock.close()

    def send(self, count: int) -> None:
        """Send `count` messages stamped now, in one write."""
        fmt = self.line_format
        now = time.monotonic_ns()
        first = self.counter + 1
        self.counter += count
        self.inflight += count
        if self.worker.plan.features:
            line = self.featured_line
            self.write(b"".join([line(n, now) for n in range(first, first + count)]))
            return
        self.write(b"".join([fmt % (n, now) for n in range(first, first + count)]))

    def send_at(self, stamp: int) -> None:
        """Open loop: one message stamped with its scheduled time."""
        self.counter += 1
        if self.worker.plan.features:
            self.write(self.featured_line(self.counter, stamp))
            return
        self.write(self.line_format % (self.counter, stamp))

    def featured_line(self, n: int, stamp: int) -> bytes:
        """With features: `typing`, message `n` (a reply every `REPLY_EVERY`), maybe a `react`."""
        uses = self.worker.plan.features
        latest = self.delivered  # the latest seq this sender has seen
        if n % REPLY_EVERY == 0 and latest > 0 and "reply" in uses:
            self.replies_sent += 1
            line = self.reply_format % (n, stamp, latest)
        else:
            line = self.line_format % (n, stamp)
        if "typing" in uses:
            line = TYPING_LINE + line
        if n % REACT_EVERY == 0 and latest > self.reacted_seq and "react" in uses:
            self.reacted_seq = latest
            self.reactions_sent += 1
            line += REACT_LINE % latest
        return line

    def done(self, count: int) -> None:
        """Closed loop: `count` of this sender's messages have come back."""
        self.inflight -= count
        self.completed += count
        if self.worker.sending and self.worker.plan.window:
            room = self.worker.plan.window - self.inflight
            if room > 0:
                self.send(room)

    def pad(self, head_len: int) -> bytes:
        return b"x" * max(1, self.worker.plan.text_len - head_len)


class ChatClient(Client):
    """chat-server (JSON lines): membership is confirmed by the `room` reply."""

    def __init__(self, worker: Worker, index: int, sender: bool, probe: bool) -> None:
        super().__init__(worker, index, sender, probe)
        self.own_marker = b'"from":"%s","text":"s=' % self.nick.encode()
        self.last: dict[bytes, int] = {}  # probes: last counter seen per sender
        self.featured = bool(worker.plan.features)
        self.account = "accounts" in worker.plan.features
        self.seq_re = MESSAGE_SEQ_RE if self.featured else SEQ_RE
        self.checks_changes = self.featured and probe  # with features: the full check
        self.rev = 0  # with features, probes: the room's latest rev seen
        self.rev_lines = 0  # with features, other checked clients: lines with a rev
        self.reactions = 0  # with features: reactions received
        self.replies = 0  # with features: replies received
        self.typing = 0  # with features: typing notices received
        self.typing_from: set[int] = set()  # with features: senders seen typing

    def make_line_format(self) -> bytes:
        head = b"s=%d n=%%d t=%%d " % self.index
        text = head + self.pad(len(head) + 16)
        self.reply_format = b'{"type":"say","room":"%s","text":"%s","reply_to":%%d}\n' % (
            ROOM.encode(),
            text,
        )
        return b'{"type":"say","room":"%s","text":"%s"}\n' % (ROOM.encode(), text)

    def hello_line(self) -> bytes:
        nick = self.nick.encode()
        if not self.featured:
            return b'{"type":"hello","nick":"%s","client":"bench"}\n' % nick
        if not self.account:
            return b'{"type":"hello","nick":"%s","client":"bench",%s}\n' % (nick, FEATURES_FIELD)
        return b'{"type":"hello","nick":"%s","client":"bench","account_password":"%s",%s}\n' % (
            nick,
            PASSWORD,
            FEATURES_FIELD,
        )

    def setup_lines(self, data: bytes) -> bytes:
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            line = data[start : end + 1]
            start = end + 1
            if b'"type":"hello"' in line:
                self.write(self.hello_line())
            elif b'"type":"welcome"' in line:
                if self.account and b'"account":true' not in line:
                    self.fail_setup(line)
                    return b""
                if not self.worker.plan.join:
                    self.registered()
                    return data[start:]
                self.write(b'{"type":"join","room":"%s"}\n' % ROOM.encode())
            elif b'"type":"room"' in line:
                self.registered()
                return data[start:]
            elif b'"type":"error"' in line or b'"type":"bye"' in line:
                self.fail_setup(line)
        return b""

    def consume(self, chunk: bytes) -> None:
        if b'"type":"error"' in chunk or b'"type":"bye"' in chunk:
            self._report_server_line(chunk)
        if self.checks_changes:
            self._check_changes(chunk)
        elif self.featured:
            self.rev_lines += chunk.count(b'"rev":')
        if self.probe:
            found = CHAT_PROBE_RE.findall(chunk)
            if not found:
                return
            seqs = [int(item[0]) for item in found]
            self._check_seqs(seqs)
            if self.worker.recording:
                now = time.monotonic_ns()
                self.worker.record([now - int(item[3]) for item in found])
            self._check_pairs([(item[1], item[2]) for item in found])
        else:
            raw = self.seq_re.findall(chunk)
            if not raw:
                return
            self._check_seqs(list(map(int, raw)))
        if self.is_sender:
            mine = chunk.count(self.own_marker)
            if mine:
                self.done(mine)

    def _check_seqs(self, seqs: list[int]) -> None:
        count = len(seqs)
        first = self.delivered + 1
        if (
            seqs[0] != first
            or seqs[-1] != first + count - 1
            or (count > 2 and seqs != list(range(first, first + count)))
        ):
            self.fail(f"seq out of order: expected {first}.., got {seqs[:5]}")
        self.delivered += count

    def _check_changes(self, chunk: bytes) -> None:
        """With features: revs go 1, 2, 3… over messages and reactions; count the rest."""
        revs = REV_RE.findall(chunk)
        if revs:
            first = self.rev + 1
            values = list(map(int, revs))
            if values != list(range(first, first + len(values))):
                self.fail(f"rev out of order: expected {first}.., got {values[:5]}")
            self.rev = values[-1]
        if REACTION_MARK in chunk:
            self.reactions += chunk.count(REACTION_MARK)
        if REPLY_MARK in chunk:
            self.replies += chunk.count(REPLY_MARK)
        if b'"type":"typing"' in chunk:
            found = TYPING_FROM_RE.findall(chunk)
            self.typing += len(found)
            self.typing_from.update(map(int, found))

    def _check_pairs(self, pairs: list[tuple[bytes, bytes]]) -> None:
        last = self.last
        for sender, number in pairs:
            n = int(number)
            if last.get(sender, 0) + 1 != n:
                self.fail(f"sender {sender.decode()}: got n={n} after n={last.get(sender, 0)}")
            last[sender] = n

    def _report_server_line(self, chunk: bytes) -> None:
        for line in chunk.split(b"\n"):
            if b'"type":"error"' in line or b'"type":"bye"' in line:
                self.fail(f"server said {line.decode(errors='replace')[:200]}")
                return

    def expected_ok(self, sent: dict[int, int], total: int) -> bool:
        worker = self.worker
        if self.checks_changes:
            return (
                self.delivered == total
                and self.reactions == worker.reactions_expected
                and self.replies == worker.replies_expected
            )
        if self.featured:
            return self.delivered == total and self.rev_lines == total + worker.reactions_expected
        return self.delivered == total

    def shortfall(self, sent: dict[int, int], total: int) -> str:
        if self.checks_changes:
            return (
                f"got {self.delivered} of {total} messages ({self.replies} of "
                f"{self.worker.replies_expected} replies), {self.reactions} of "
                f"{self.worker.reactions_expected} reactions"
            )
        if self.featured:
            return (
                f"got {self.delivered} of {total} messages, {self.rev_lines} lines with a "
                f"rev of {total + self.worker.reactions_expected}"
            )
        return f"got {self.delivered} of {total} messages"

    def missing_typing(self, senders: tuple[int, ...]) -> list[int]:
        """With features, probes: the senders (but this client) it never saw typing."""
        if not self.checks_changes:
            return []
        return [s for s in senders if s != self.index and s not in self.typing_from]


class PerSenderClient(Client):
    """IRC and the ceiling: no room seq, so order is checked per sender (`s=`, `n=`)."""

    echo = True  # does the server send a sender its own message?

    def __init__(self, worker: Worker, index: int, sender: bool, probe: bool) -> None:
        super().__init__(worker, index, sender, probe)
        self.last: dict[bytes, int] = {}

    def consume(self, chunk: bytes) -> None:
        if b"PING :" in chunk or b"ERROR :" in chunk:
            self._control_lines(chunk)
        if self.probe:
            triples = TRIPLE_RE.findall(chunk)
            if not triples:
                return
            if self.worker.recording:
                now = time.monotonic_ns()
                self.worker.record([now - int(item[2]) for item in triples])
            pairs: list[tuple[bytes, bytes]] = [(item[0], item[1]) for item in triples]
        else:
            pairs = PAIR_RE.findall(chunk)
            if not pairs:
                return
        last = self.last
        for sender, number in pairs:
            n = int(number)
            if last.get(sender, 0) + 1 != n:
                self.fail(f"sender {sender.decode()}: got n={n} after n={last.get(sender, 0)}")
            last[sender] = n
        self.delivered += len(pairs)
        completes = self.completes
        if completes:
            counts: dict[bytes, int] = {}
            for sender, _ in pairs:
                if sender in completes:
                    counts[sender] = counts.get(sender, 0) + 1
            for sender, count in counts.items():
                completes[sender].done(count)

    def _control_lines(self, chunk: bytes) -> None:
        for line in chunk.split(b"\n"):
            if line.startswith(b"PING :"):
                self.write(b"PONG" + line[4:].rstrip(b"\r") + b"\r\n")
            elif line.startswith(b"ERROR :"):
                self.fail(f"server said {line.decode(errors='replace')[:200]}")

    def _missing(self, sent: dict[int, int]) -> list[tuple[int, int, int]]:
        return [
            (sid, self.last.get(b"%d" % sid, 0), count)
            for sid, count in sent.items()
            if (self.echo or sid != self.index) and self.last.get(b"%d" % sid, 0) != count
        ]

    def expected_ok(self, sent: dict[int, int], total: int) -> bool:
        return not self._missing(sent)

    def shortfall(self, sent: dict[int, int], total: int) -> str:
        sid, got, count = self._missing(sent)[0]
        return f"sender {sid}: last n={got} of {count} sent"


class IrcClient(PerSenderClient):
    """ngIRCd: NICK/USER, wait for 001, JOIN, wait for 366 (end of NAMES)."""

    echo = False

    def connected(self) -> None:
        super().connected()
        nick = self.nick.encode()
        self.write(b"NICK %s\r\nUSER %s 0 * :bench\r\n" % (nick, nick))

    def make_line_format(self) -> bytes:
        head = b"s=%d n=%%d t=%%d " % self.index
        text = head + self.pad(len(head) + 16)
        return b"PRIVMSG %s :%s\r\n" % (CHANNEL.encode(), text)

    def setup_lines(self, data: bytes) -> bytes:
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            line = data[start : end + 1]
            start = end + 1
            parts = line.split(b" ", 2)
            code = parts[1] if len(parts) > 1 else b""
            if line.startswith(b"PING :"):
                self.write(b"PONG" + line[4:].rstrip(b"\r\n") + b"\r\n")
            elif code == b"001":
                if not self.worker.plan.join:
                    self.registered()
                    return data[start:]
                self.write(b"JOIN %s\r\n" % CHANNEL.encode())
            elif code == b"366":
                self.registered()
                return data[start:]
            elif line.startswith(b"ERROR") or (code[:1] in (b"4", b"5") and len(code) == 3):
                self.fail_setup(line)
        return b""


class CeilingClient(PerSenderClient):
    """bench.ceiling: a greeting line, then every line anyone sends, to everyone."""

    def make_line_format(self) -> bytes:
        head = b"s=%d n=%%d t=%%d " % self.index
        text = head + self.pad(len(head) + 16)
        return b'{"type":"say","room":"%s","text":"%s"}\n' % (ROOM.encode(), text)

    def setup_lines(self, data: bytes) -> bytes:
        end = data.find(b"\n")
        self.registered()
        return data[end + 1 :]


FEATURES_FIELD: Final = b'"features":[%s]' % b",".join(b'"%s"' % f.encode() for f in FEATURES)

CLIENT_CLASSES: Final[dict[str, type[Client]]] = {
    "chat": ChatClient,
    "irc": IrcClient,
    "ceiling": CeilingClient,
}


async def _recv(conn: Connection) -> Any:
    """Wait for the next message from the orchestrator without blocking the loop.

    A thread does the blocking read: watching the pipe with `add_reader` would make its
    descriptor non-blocking, and a large reply would then fail to send.
    """
    return await asyncio.get_running_loop().run_in_executor(None, conn.recv)


async def _register_accounts(worker: Worker) -> None:
    """With features: each client's nick becomes an account, on a connection of its own.

    Every client then logs in with its password (`ChatClient.hello_line`), as a user who
    registered once does on every later connection.
    """
    plan = worker.plan
    limit = asyncio.Semaphore(max(1, plan.connect_concurrency))
    hello = b'{"type":"hello","nick":"%s","client":"bench",' + FEATURES_FIELD + b"}\n"
    register = b'{"type":"register","password":"%s","id":"r"}\n' % PASSWORD

    async def one(index: int) -> None:
        nick = nick_of(index).encode()
        async with limit:
            reader, writer = await asyncio.open_connection(plan.host, plan.port)
            try:
                await reader.readline()  # the server's hello
                writer.write(hello % nick)
                line = await reader.readline()
                if b'"type":"welcome"' not in line:
                    raise RuntimeError(f"{nick.decode()}: {line.decode(errors='replace')}")
                writer.write(register)
                line = await reader.readline()
                if b'"type":"ack"' not in line:
                    raise RuntimeError(f"{nick.decode()}: {line.decode(errors='replace')}")
                writer.write(b'{"type":"quit"}\n')
                await reader.read()  # bye, then the server closes
            finally:
                writer.close()

    async with asyncio.timeout(plan.setup_timeout):
        await asyncio.gather(*(one(i) for i in plan.clients))


async def _connect_all(worker: Worker) -> None:
    plan = worker.plan
    if "accounts" in plan.features and plan.kind == "chat":
        await _register_accounts(worker)
    senders = set(plan.senders)
    active = plan.active if plan.poll_interval > 0 else frozenset(plan.clients)
    limit = asyncio.Semaphore(max(1, plan.connect_concurrency))
    cls = CLIENT_CLASSES[plan.kind]
    loop = worker.loop

    async def one(index: int) -> Client:
        async with limit:
            if index in active:
                _, client = await loop.create_connection(
                    lambda: cls(worker, index, index in senders, index in plan.probes),
                    plan.host,
                    plan.port,
                )
                await client.ready
                return client
            client = cls(worker, index, False, False)
            client.digest_only = True
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            # Room in the kernel for what arrives between two polls, and then some: the
            # server must never see a polled reader as a slow consumer.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, POLLED_RCVBUF)
            sock.setblocking(False)
            client.sock = sock
            try:
                await loop.sock_connect(sock, (plan.host, plan.port))
                client.connected()
                while not client.ready.done():
                    data = await loop.sock_recv(sock, 65536)
                    if not data:
                        client.connection_lost(None)
                        break
                    client.data_received(data)
                await client.ready
            except BaseException:
                sock.close()
                raise
            return client

    async with asyncio.timeout(plan.setup_timeout):
        worker.clients = list(await asyncio.gather(*(one(i) for i in plan.clients)))
    worker.senders = [c for c in worker.clients if c.is_sender]
    worker.polled = [c for c in worker.clients if c.sock is not None]
    if worker.polled:
        _poll(worker)
    _wire_completions(worker)


def _poll(worker: Worker, start: int = 0) -> None:
    """Read polled sockets until they are empty, a slice at a time; again after the interval.

    Clients that only receive (no latency probe, no completion to report) are read this
    way: one `recv` per socket per interval instead of one callback per server write,
    which keeps a room of a thousand readers cheap for the load generator. The server
    does exactly the same work; its data waits in the kernel for at most the interval.
    Between slices the loop handles I/O, so senders and probes are not held up.
    """
    if worker.closing:
        return
    size = 1 << 18
    end = start + POLL_SLICE
    for client in worker.polled[start:end]:
        sock = client.sock
        assert sock is not None
        while True:
            try:
                data = sock.recv(size)
            except BlockingIOError:
                break
            except OSError as exc:
                client.connection_lost(exc)
                break
            if not data:
                client.connection_lost(None)
                break
            client.data_received(data)
            if len(data) < size:
                break
    if end < len(worker.polled):
        worker.loop.call_soon(_poll, worker, end)
    else:
        worker.loop.call_later(worker.plan.poll_interval, _poll, worker)


def _wire_completions(worker: Worker) -> None:
    """Closed loop: say which client's receipt completes each sender's message."""
    if not worker.plan.window:
        return
    if worker.plan.kind == "ceiling":
        for sender in worker.senders:
            sender.completes[sender.sid] = sender
    elif worker.plan.kind == "irc":
        # IRC does not echo a message to its sender: another member of the room, in the
        # same process, reports it back.
        by_index = {c.index: c for c in worker.clients}
        for sender_index, mirror_index in worker.plan.mirrors:
            if sender_index in by_index:
                sender = by_index[sender_index]
                by_index[mirror_index].completes[sender.sid] = sender


async def _settle(worker: Worker, idle: float, give_up_after: float) -> float:
    """Wait until nothing has arrived for `idle` seconds (join storms are over)."""
    idle = max(idle, 3 * worker.plan.poll_interval)  # polled sockets are read that seldom
    start = time.monotonic()
    seen = -1
    quiet_since = start
    while time.monotonic() - start < give_up_after:
        await asyncio.sleep(0.05)
        if worker.rx_bytes != seen:
            seen = worker.rx_bytes
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= idle:
            break
    return time.monotonic() - start


def _delay_until(stamp_ns: int) -> float:
    return max(0.0, (stamp_ns - time.monotonic_ns()) / 1e9)


async def _run(worker: Worker, start_ns: int, end_ns: int) -> None:
    plan = worker.plan
    # Digests start now: the room is quiet until the first message at `start_ns`, and a
    # poll between then and this task waking up must not read unhashed messages.
    worker.hashing = True
    await asyncio.sleep(_delay_until(start_ns))
    worker.sending = True
    worker.recording = True
    if plan.kind == "chat":
        _keepalive(worker)
    if plan.window:
        for sender in worker.senders:
            sender.send(plan.window)
    else:
        _start_open_loop(worker, start_ns)
    await asyncio.sleep(_delay_until(end_ns))
    worker.sending = False
    worker.recording = False
    for client in worker.clients:
        client.completed_in_window = client.completed
        if client.timer is not None:
            client.timer.cancel()


def _start_open_loop(worker: Worker, start_ns: int) -> None:
    plan = worker.plan
    interval_ns = round(1e9 / plan.rate)
    count = len(plan.senders)
    for sender in worker.senders:
        phase = plan.senders.index(sender.index) * interval_ns // max(1, count)
        _schedule(worker, sender, start_ns + phase, interval_ns)


def _schedule(worker: Worker, sender: Client, due_ns: int, interval_ns: int) -> None:
    def tick() -> None:
        nonlocal due_ns
        if not worker.sending:
            return
        now = time.monotonic_ns()
        while due_ns <= now:
            sender.send_at(due_ns)
            due_ns += interval_ns
        sender.timer = worker.loop.call_later(_delay_until(due_ns), tick)

    sender.timer = worker.loop.call_later(_delay_until(due_ns), tick)


def _keepalive(worker: Worker) -> None:
    """chat-server pings a JSON client silent for 30 s: every client says `pong` now and then."""
    if worker.closing:
        return
    for client in worker.clients:
        with contextlib.suppress(OSError):
            client.write(b'{"type":"pong"}\n')
    worker.loop.call_later(KEEPALIVE_S, _keepalive, worker)


async def _drain(worker: Worker, sent: dict[int, int], give_up_after: float) -> None:
    """Wait until every receiver has every message sent; flag those that do not."""
    total = sum(sent.values())
    deadline = time.monotonic() + give_up_after
    waiting = [c for c in worker.clients if not c.digest_only]
    while waiting and time.monotonic() < deadline:
        waiting = [c for c in waiting if not c.bad and not c.expected_ok(sent, total)]
        if waiting:
            await asyncio.sleep(0.05)
    for client in waiting:
        if not client.bad and not client.expected_ok(sent, total):
            client.fail(f"after {give_up_after:g} s of drain: {client.shortfall(sent, total)}")
    if "typing" in worker.plan.features and worker.plan.kind == "chat":
        for client in worker.clients:
            if isinstance(client, ChatClient) and not client.digest_only and not client.bad:
                if missing := client.missing_typing(tuple(sent)):
                    client.fail(f"no typing notice from sender(s) {missing[:5]}")
    if any(c.digest_only for c in worker.clients):
        # Their data left the server with the checked clients' (same loop pass); once
        # nothing has arrived for a while, they have all of it.
        await _settle(worker, 0.3, max(1.0, deadline - time.monotonic()))


async def _worker_main(plan: WorkerPlan, conn: Connection) -> None:
    worker = Worker(plan)
    started = time.monotonic()
    try:
        await _connect_all(worker)
    except Exception as exc:
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", time.monotonic() - started))
    while True:
        message = await _recv(conn)
        command = message[0]
        if command == "settle":
            conn.send(("settled", await _settle(worker, message[1], message[2])))
        elif command == "go":
            await _run(worker, message[1], message[2])
            sent = {c.index: c.counter for c in worker.senders}
            reacted = sum(c.reactions_sent for c in worker.senders)
            replied = sum(c.replies_sent for c in worker.senders)
            conn.send(("stopped", (sent, reacted, replied)))
        elif command == "expect":
            sent_all: dict[int, int] = message[1]
            worker.reactions_expected, worker.replies_expected = message[3], message[4]
            await _drain(worker, sent_all, message[2])
            conn.send(("result", _result(worker, sent_all)))
        elif command == "close":
            worker.closing = True
            for client in worker.clients:
                client.close()
            await asyncio.sleep(0)
            return


def _result(worker: Worker, sent: dict[int, int]) -> WorkerResult:
    good = [c for c in worker.clients if not c.bad]
    checked = [c for c in good if isinstance(c, ChatClient) and not c.digest_only]
    return WorkerResult(
        completed=sum(c.completed_in_window for c in worker.senders),
        messages_checked=sum(c.delivered for c in good if not c.digest_only),
        checked_clients=sum(1 for c in good if not c.digest_only),
        digests=[
            (c.index, c.crc, c.nbytes, not c.digest_only)
            for c in worker.clients
            if c.digest_only
            or (c.probe and not c.bad and not (worker.plan.kind == "irc" and c.is_sender))
        ],
        latencies=worker.samples.tobytes(),
        errors=worker.errors,
        error_count=worker.error_count,
        reactions=sum(c.reactions for c in checked),
        typing=sum(c.typing for c in checked),
    )


def run_worker(plan: WorkerPlan, conn: Connection) -> None:
    """Entry point of a worker process."""
    raise_fd_limit()
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - the benchmark wants uvloop
        pass
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(_worker_main(plan, conn))
    conn.close()
