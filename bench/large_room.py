"""Large rooms: 15,000 clients join one room, and a reconnect storm under 5,000.

Run it with `python -m bench.large_room` (see `--help` and bench/README.md). Two
scenarios, each against a fresh `chat-server` subprocess on 127.0.0.1 (SQLite store in a
temporary directory, flood control off, never announced, no TLS or files listener):

  join   `--clients` (15,000) connect, register and join one room, `--concurrency` at a
         time; then one member says one message and every member must receive it, once,
         with the same seq; `who` and `rooms` must count every member.
  storm  `--clients` (5,000) join one room and receive `--before` messages; the server is
         stopped (SIGTERM) and started again on the same port and database; every client
         reconnects on its own schedule (a random delay up to `--spread` seconds, then
         doubling retries while the port refuses) and joins with `since` = the last seq it
         has; meanwhile one sender posts `--during` more messages. Settled is when every
         client holds every seq from 1 to the last exactly once; the server's peak RSS
         during the storm is sampled from /proc.

Every client is a raw `asyncio.Protocol` on uvloop in this one process; lines are split
with one `bytes.split` per read, only the type and the seq of room messages are read from
most lines (a `room` reply of 15,000 nicks is never parsed), and `history` replies are
parsed as JSON. The process raises its open-file limit to the hard limit first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, cast

from bench.load_clients import raise_fd_limit
from bench.load_targets import REPO, proc_rss_kib

__all__ = ["main"]

ROOM: Final = "big"
SEQ_RE: Final = re.compile(rb'"seq":(\d+)')
START_TIMEOUT: Final = 30.0
FEATURES: Final = ["typing", "read", "away"]


class Failed(Exception):
    """The scenario did not finish or its integrity check failed."""


# -- the server ----------------------------------------------------------------------


class Server:
    """`chat-server` as a subprocess; `restart` keeps its port and its database."""

    def __init__(self, workdir: Path, extra: list[str]) -> None:
        self.workdir = workdir
        self.extra = extra
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        """Start on `port` (a free one the first time; a restart keeps it)."""
        if not self.port:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                self.port = int(sock.getsockname()[1])
        self.starts += 1
        log = self.workdir / f"server-{self.starts}.log"
        argv = [sys.executable, "-m", "chat_server", "--host", "127.0.0.1"]
        argv += ["--port", str(self.port), "--no-tls", "--no-files", "--no-announce"]
        argv += ["--rate", "0", "--max-per-ip", "0", "--db", str(self.workdir / "chat.db")]
        # warning, not info: 15,000 "opened" lines would cost the server time
        argv += ["--data-dir", str(self.workdir / "data"), "--log-level", "warning"]
        argv += ["--ping-interval", "600", "--idle-timeout", "1200", "--register-timeout", "600"]
        argv += self.extra
        env = dict(os.environ, HOME=str(self.workdir))
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd=REPO, env=env,
            )  # fmt: skip
        self._wait_for_accept()

    def _wait_for_accept(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            self._check_running(self.workdir / f"server-{self.starts}.log")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.01)
        raise Failed(f"the server did not accept on port {self.port} within {START_TIMEOUT:g} s")

    def _check_running(self, log: Path) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            tail = log.read_text(errors="replace")[-500:]
            raise Failed(f"the server exited with {self.process.returncode}: {tail}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def rss_mib(self) -> float:
        return proc_rss_kib(self.pid) / 1024

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(15)


# -- the clients ---------------------------------------------------------------------


class Member(asyncio.Protocol):
    """One client: registers, joins `ROOM` (with `since` once it has messages), counts seqs."""

    def __init__(self, bench: Bench, index: int) -> None:
        self.bench = bench
        self.nick = f"u{index:05d}"
        self.nick_field = b'"nick":"%s"' % self.nick.encode()
        self.transport: asyncio.Transport | None = None
        self.rest = b""
        self.joined = False
        self.counts = bytearray(1)  # counts[seq]: times seq arrived (history or live)
        self.distinct = 0
        self.duplicates = 0
        self.last = 0  # highest seq held
        self.replies: dict[str, asyncio.Future[Any]] = {}
        self.joined_future: asyncio.Future[None] | None = None
        self.joined_at = 0.0
        self.reconnecting = False
        self.retries = 0
        self.connects = 0

    # connection ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.rest = b""
        self.joined = False
        self.connects += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.joined = False
        for future in self.replies.values():
            if not future.done():
                future.set_exception(ConnectionError("connection lost"))
        self.replies.clear()
        if self.bench.storm:
            delay = random.uniform(0, self.bench.spread)
            self.bench.loop.call_later(delay, self.reconnect)

    def reconnect(self) -> None:
        if self.transport is None and not self.reconnecting:
            self.reconnecting = True
            self.bench.loop.create_task(self._reconnect())

    async def _reconnect(self) -> None:
        backoff = 0.25
        try:
            while self.transport is None:
                try:
                    await self.bench.loop.create_connection(
                        lambda: self, "127.0.0.1", self.bench.server.port
                    )
                    return
                except OSError:
                    self.retries += 1
                    await asyncio.sleep(backoff * random.uniform(0.5, 1.5))
                    backoff = min(backoff * 2, 4.0)
        finally:
            self.reconnecting = False

    def write(self, message: dict[str, Any]) -> None:
        if self.transport is not None:
            self.transport.write(json.dumps(message).encode() + b"\n")

    def request(self, message: dict[str, Any]) -> asyncio.Future[Any]:
        request_id = f"r{len(self.replies)}-{time.monotonic_ns()}"
        future: asyncio.Future[Any] = self.bench.loop.create_future()
        self.replies[request_id] = future
        self.write({**message, "id": request_id})
        return future

    # reading -----------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.rest:
            data = self.rest + data
        if b"\n" not in data:
            self.rest = data
            return
        lines = data.split(b"\n")
        self.rest = lines.pop()
        for line in lines:
            self.line(line)

    def line(self, line: bytes) -> None:
        kind = line[9 : line.find(b'"', 9)]  # every server line starts {"type":"...
        if kind == b"message":
            match = SEQ_RE.search(line)
            if match is None:
                self.bench.error(f"{self.nick}: a message without a seq: {line[:120]!r}")
            else:
                self.got(int(match.group(1)))
            if b'"re":' in line:
                self.reply(json.loads(line))
        elif kind == b"joined":
            if self.nick_field in line:
                self.joined = True
                self.joined_at = time.perf_counter()
                if self.joined_future is not None and not self.joined_future.done():
                    self.joined_future.set_result(None)
        elif kind == b"room":
            pass  # 15,000 nicks long at the end: never parsed (`who` is checked instead)
        elif kind == b"history":
            page = json.loads(line)
            for message in page["messages"]:
                self.got(message["seq"])
            if page["more"]:
                self.bench.error(f"{self.nick}: a join replay with more=true (raise --before?)")
        elif kind == b"hello":
            self.write({"type": "hello", "nick": self.nick, "features": FEATURES})
        elif kind == b"welcome":
            join: dict[str, Any] = {"type": "join", "room": ROOM}
            if self.last:
                join["since"] = self.last
            self.write(join)
        elif kind == b"ping":
            token = json.loads(line).get("token")
            self.write({"type": "pong", **({"token": token} if token else {})})
        elif kind in (b"ack", b"members", b"room_list", b"error"):
            message = json.loads(line)
            if kind == b"error":
                self.bench.error(f"{self.nick}: {message}")
            self.reply(message)
        elif kind == b"bye":
            pass
        # left, typing, away, ...: nothing to count

    def reply(self, message: dict[str, Any]) -> None:
        future = self.replies.pop(message.get("re", ""), None)
        if future is not None and not future.done():
            future.set_result(message)

    def got(self, seq: int) -> None:
        counts = self.counts
        if seq >= len(counts):
            counts.extend(bytes(seq + 64 - len(counts)))
        if counts[seq]:
            self.duplicates += 1
        else:
            self.distinct += 1
        if counts[seq] < 255:
            counts[seq] += 1
        if seq > self.last:
            self.last = seq

    def complete(self, total: int) -> bool:
        return self.joined and self.distinct == total and self.last == total


class Bench:
    def __init__(self, server: Server, spread: float) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.storm = False
        self.spread = spread
        self.errors: list[str] = []
        self.error_count = 0

    def error(self, text: str) -> None:
        self.error_count += 1
        if len(self.errors) < 10:
            self.errors.append(text)

    async def connect_all(self, members: list[Member], concurrency: int, seconds: float) -> None:
        """Connect, register and join every member, `concurrency` at a time."""
        gate = asyncio.Semaphore(concurrency)

        async def one(member: Member) -> None:
            async with gate:
                member.joined_future = self.loop.create_future()
                await self.loop.create_connection(lambda: member, "127.0.0.1", self.server.port)
                await member.joined_future

        await asyncio.wait_for(asyncio.gather(*(one(m) for m in members)), seconds)

    async def wait_until(self, done: Callable[[], bool], seconds: float, what: str) -> float:
        start = time.perf_counter()
        while not done():
            if time.perf_counter() - start > seconds:
                raise Failed(f"{what}: not done within {seconds:g} s")
            await asyncio.sleep(0.02)
        return time.perf_counter() - start


# -- scenarios -----------------------------------------------------------------------


async def scenario_join(args: argparse.Namespace, server: Server) -> dict[str, Any]:
    bench = Bench(server, 0)
    members = [Member(bench, i) for i in range(args.clients)]
    rss_before = server.rss_mib()
    start = time.perf_counter()
    try:
        await bench.connect_all(members, args.concurrency, args.timeout)
    except TimeoutError:
        joined = sum(m.joined for m in members)
        raise Failed(f"{joined:,} of {args.clients:,} joined within {args.timeout:g} s") from None
    join_seconds = time.perf_counter() - start
    rss_joined = server.rss_mib()
    sender = members[0]
    ack = await asyncio.wait_for(sender.request({"type": "say", "room": ROOM, "text": "all"}), 30)
    if ack.get("type") != "ack":
        raise Failed(f"the broadcast was refused: {ack}")
    seq = ack["seq"]
    reach = await bench.wait_until(
        lambda: all(m.last >= seq for m in members), args.timeout, "the broadcast"
    )
    problems = [m.nick for m in members if m.distinct != seq or m.duplicates or not m.joined]
    who = await asyncio.wait_for(sender.request({"type": "who", "room": ROOM}), 30)
    listing = await asyncio.wait_for(sender.request({"type": "rooms"}), 30)
    counted = [r["members"] for r in listing["rooms"] if r["room"] == ROOM]
    if len(set(who["members"])) != args.clients or counted != [args.clients]:
        bench.error(f"who lists {len(who['members'])}, rooms counts {counted}")
    if problems:
        bench.error(f"{len(problems)} members without exactly seqs 1..{seq}: {problems[:5]}")
    for member in members:
        if member.transport is not None:
            member.transport.close()
    return {
        "scenario": "join",
        "clients": args.clients,
        "join_s": round(join_seconds, 2),
        "broadcast_s": round(reach, 3),
        "rss_mib_before": round(rss_before, 1),
        "rss_mib_joined": round(rss_joined, 1),
        "kib_per_member": round((rss_joined - rss_before) * 1024 / args.clients, 2),
        "ok": bench.error_count == 0,
        "errors": bench.errors,
    }


async def scenario_storm(args: argparse.Namespace, server: Server) -> dict[str, Any]:
    bench = Bench(server, args.spread)
    members = [Member(bench, i) for i in range(args.clients)]
    try:
        await bench.connect_all(members, args.concurrency, args.timeout)
    except TimeoutError:
        raise Failed(f"set-up: not every client joined within {args.timeout:g} s") from None
    sender = Member(bench, args.clients)  # one more member, which also counts its seqs
    sender.joined_future = bench.loop.create_future()
    await bench.loop.create_connection(lambda: sender, "127.0.0.1", server.port)
    await sender.joined_future
    everyone = [*members, sender]
    for k in range(args.before):
        await asyncio.wait_for(sender.request({"type": "say", "room": ROOM, "text": f"b{k}"}), 30)
    await bench.wait_until(
        lambda: all(m.complete(args.before) for m in everyone), 60, "before the restart"
    )
    rss_before = server.rss_mib()

    # The restart: every client loses its connection and comes back on its own schedule.
    bench.storm = True
    server.stop()
    await bench.wait_until(lambda: all(m.transport is None for m in everyone), 30, "the stop")
    restart = time.perf_counter()
    await bench.loop.run_in_executor(None, server.start)
    listening = time.perf_counter() - restart
    peak = [server.rss_mib()]
    sampling = True

    async def sample() -> None:
        while sampling:
            peak.append(server.rss_mib())
            await asyncio.sleep(0.05)

    sampler = bench.loop.create_task(sample())
    sender.joined_future = bench.loop.create_future()
    sender.reconnect()
    await asyncio.wait_for(sender.joined_future, args.timeout)
    for k in range(args.during):
        reply = await asyncio.wait_for(
            sender.request({"type": "say", "room": ROOM, "text": f"d{k}"}), 30
        )
        if reply.get("type") != "ack":
            bench.error(f"a say during the storm was answered {reply}")
        await asyncio.sleep(args.interval)
    total = args.before + args.during
    try:
        await bench.wait_until(
            lambda: all(m.complete(total) for m in everyone), args.timeout, "the storm"
        )
    except Failed:
        incomplete = [m for m in everyone if not m.complete(total)]
        bench.error(
            f"{len(incomplete)} clients not complete, e.g. {incomplete[0].nick}: joined "
            f"{incomplete[0].joined}, {incomplete[0].distinct} of {total} seqs"
        )
    settled = time.perf_counter() - restart
    sampling = False
    await sampler
    duplicates = sum(m.duplicates for m in everyone)
    if duplicates:
        bench.error(f"{duplicates} duplicate deliveries")
    bench.storm = False
    for member in everyone:
        if member.transport is not None:
            member.transport.close()
    return {
        "scenario": "storm",
        "clients": args.clients,
        "messages": total,
        "listening_s": round(listening, 2),
        "settled_s": round(settled, 2),
        "retries": sum(m.retries for m in everyone),
        "duplicates": duplicates,
        "rss_mib_before_restart": round(rss_before, 1),
        "rss_mib_peak_storm": round(max(peak), 1),
        "rss_mib_settled": round(server.rss_mib(), 1),
        "ok": bench.error_count == 0,
        "errors": bench.errors,
    }


async def run_once(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-large-{args.scenario}-"))
    extra = ["--presence-limit", str(args.presence_limit)]
    server = Server(workdir, extra)
    try:
        await asyncio.get_running_loop().run_in_executor(None, server.start)
        if args.scenario == "join":
            return await scenario_join(args, server)
        return await scenario_storm(args, server)
    except Failed as exc:
        return {
            "scenario": args.scenario,
            "clients": args.clients,
            "ok": False,
            "errors": [str(exc)],
        }
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.large_room",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scenario", choices=["join", "storm"], default="join")
    parser.add_argument("--clients", type=int, default=None, help="15,000 (join), 5,000 (storm)")
    parser.add_argument("--concurrency", type=int, default=500, help="joins in progress at once")
    parser.add_argument("--presence-limit", type=int, default=1000, help="the server's flag")
    parser.add_argument("--before", type=int, default=50, help="storm: messages before")
    parser.add_argument("--during", type=int, default=100, help="storm: messages during")
    parser.add_argument("--interval", type=float, default=0.02, help="storm: s between those")
    parser.add_argument("--spread", type=float, default=5.0, help="storm: reconnect delays, s")
    parser.add_argument("--timeout", type=float, default=120.0, help="bound of each phase, s")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    if args.clients is None:
        args.clients = 15_000 if args.scenario == "join" else 5_000
    soft = raise_fd_limit()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    print(f"open files: soft limit {soft:,}, hard {hard:,}; {os.cpu_count()} CPUs", flush=True)
    if soft < args.clients + 100:
        print(f"too few file descriptors for {args.clients:,} clients", file=sys.stderr)
        return 2
    try:
        import uvloop

        runner: Callable[[Any], Any] = uvloop.run
    except ImportError:
        runner = asyncio.run
    results = []
    for _ in range(args.repeat):
        result = runner(run_once(args))
        print(json.dumps(result), flush=True)
        results.append(result)
    key = "join_s" if args.scenario == "join" else "settled_s"
    good = [r[key] for r in results if r.get("ok")]
    if good:
        print(f"median {key} of {len(good)} good run(s): {statistics.median(good)}")
    return 0 if len(good) == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
