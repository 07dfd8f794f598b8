"""Fan-out over 1, 2, 3 … `chat-server --redis` nodes on one Redis, with the integrity check.

For each node count: a fresh Redis database, that many nodes (subprocesses on
127.0.0.1, never announced), and one room whose clients are dealt round the nodes.
Senders run a closed loop (`--window` messages in flight each, the next sent on each
ack) for `--duration` seconds; then every receiver must have every message exactly
once, in seq order (the check the single-process benchmark makes). Printed: messages/s,
deliveries/s, p50/p99 latency from send to arrival at the probes, and the CPU of each
node and of Redis per delivery.

The load generator runs in this process, on the same 2 cores as the nodes and Redis,
so the figures are what one small machine gives, not a cluster's capacity.
Redis is started here (a free loopback port, a temp dir, `appendonly yes`,
`appendfsync always`) and stopped by its PID; so is every node.

Run: `python -m bench.cluster_load --nodes 1,2,3` (see `--help`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.load_targets import proc_cpu_seconds

__all__ = ["main"]

LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+) \(plain\)")
REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_redis(directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
         "--save", "", "--appendonly", "yes", "--appendfsync", "always",
         "--logfile", str(directory / "redis.log")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return process, port
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("redis-server did not start")


def _redis_command(port: int, *words: str) -> bytes:
    payload = f"*{len(words)}\r\n".encode()
    for word in words:
        payload += f"${len(word.encode())}\r\n{word}\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        return sock.recv(1024)


def _start_node(
    redis_port: int, workdir: Path, index: int, cheap_hashes: bool = False
) -> tuple[subprocess.Popen[bytes], int]:
    """A node on Redis; with `redis_port` 0, one process with SQLite instead (the baseline).

    `cheap_hashes`: new account passwords get argon2id's cheapest setting (bench.load
    --features registers every client)."""
    log = workdir / f"node{index}.log"
    store = (
        ["--redis", f"redis://127.0.0.1:{redis_port}/0"]
        if redis_port
        else ["--db", str(workdir / "history.db")]
    )
    env = {**os.environ, "HOME": str(workdir)}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "chat_server", "--host", "127.0.0.1", "--port", "0",
             "--no-tls", "--no-files", "--no-announce", "--rate", "0", "--max-per-ip", "0",
             *store, *(["--hash-memory", "1024"] if cheap_hashes else [])],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env,
        )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = LISTENING.search(log.read_text(errors="replace"))
        if found:
            return process, int(found.group(1))
        if process.poll() is not None:
            raise RuntimeError(f"node exited: {log.read_text()[-500:]}")
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("node did not listen in time")


@dataclass
class Client:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    seqs: list[int] = field(default_factory=list)
    latencies: list[int] = field(default_factory=list)
    acks: asyncio.Queue[int] = field(default_factory=asyncio.Queue)

    async def send(self, message: dict[str, Any]) -> None:
        self.writer.write(json.dumps(message).encode() + b"\n")
        await self.writer.drain()


async def _connect(port: int, nick: str) -> Client:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
    client = Client(reader, writer)
    await reader.readline()  # hello
    await client.send({"type": "hello", "nick": nick, "id": "h"})
    while json.loads(await reader.readline()).get("re") != "h":
        pass
    await client.send({"type": "join", "room": "bench", "id": "j"})
    while json.loads(await reader.readline()).get("type") != "joined":
        pass
    return client


async def _read(client: Client, probe: bool, stop: asyncio.Event) -> None:
    while not stop.is_set():
        line = await client.reader.readline()
        if not line:
            return
        if line.startswith(b'{"type":"message"'):
            event = json.loads(line)
            client.seqs.append(event["seq"])
            if probe:
                client.latencies.append(time.monotonic_ns() - int(event["text"].split(" ")[0]))
        elif b'"type":"ack"' in line:
            client.acks.put_nowait(1)


async def _send(client: Client, window: int, text_len: int, end: float) -> int:
    sent = 0
    pad = "x" * max(0, text_len - 20)
    inflight = 0
    while time.monotonic() < end:
        while inflight < window:
            await client.send(
                {"type": "say", "room": "bench", "text": f"{time.monotonic_ns()} {pad}", "id": "s"}
            )
            sent += 1
            inflight += 1
        await client.acks.get()
        inflight -= 1
    while inflight:
        await client.acks.get()
        inflight -= 1
    return sent


@dataclass
class Cell:
    nodes: int
    messages: int = 0
    msgs_per_s: float = 0.0
    deliveries_per_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    node_cpu: list[float] = field(default_factory=list)  # % of one core, each node
    redis_cpu: float = 0.0
    integrity: str = ""


async def _run_cell(nodes: int, redis: tuple[subprocess.Popen[bytes], int], args: Any) -> Cell:
    redis_process, redis_port = redis
    _redis_command(redis_port, "FLUSHDB")
    workdir = Path(tempfile.mkdtemp(prefix="lanchat-cluster-bench-"))
    sqlite = nodes == 0
    started = [_start_node(0 if sqlite else redis_port, workdir, i) for i in range(max(1, nodes))]
    cell = Cell(nodes)
    nodes = len(started)
    try:
        clients = [await _connect(started[i % nodes][1], f"c{i}") for i in range(args.clients)]
        await asyncio.sleep(0.5)
        stop = asyncio.Event()
        probes = set(range(args.clients - args.probes, args.clients))
        readers = [asyncio.create_task(_read(c, i in probes, stop)) for i, c in enumerate(clients)]
        for client in clients:
            client.seqs.clear()
        cpu0 = [proc_cpu_seconds(p.pid) for p, _ in started]
        redis0 = proc_cpu_seconds(redis_process.pid)
        begin = time.monotonic()
        end = begin + args.duration
        sent = await asyncio.gather(
            *(_send(clients[i], args.window, args.text_len, end) for i in range(args.senders))
        )
        elapsed = time.monotonic() - begin
        total = sum(sent)
        for _ in range(600):  # at most 30 s for the last messages to arrive
            if all(len(c.seqs) >= total for c in clients):
                break
            await asyncio.sleep(0.05)
        cpu1 = [proc_cpu_seconds(p.pid) for p, _ in started]
        redis1 = proc_cpu_seconds(redis_process.pid)
        stop.set()
        for client in clients:
            client.writer.close()
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        expected = list(range(1, total + 1))
        bad = [i for i, c in enumerate(clients) if c.seqs != expected]
        cell.messages = total
        cell.msgs_per_s = total / elapsed
        cell.deliveries_per_s = cell.msgs_per_s * args.clients
        latencies = sorted(x for i in probes for x in clients[i].latencies)
        if latencies:
            cell.p50_ms = latencies[len(latencies) // 2] / 1e6
            cell.p99_ms = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] / 1e6
        cell.node_cpu = [100 * (b - a) / elapsed for a, b in zip(cpu0, cpu1, strict=True)]
        cell.redis_cpu = 100 * (redis1 - redis0) / elapsed
        cell.integrity = (
            f"ok ({total:,} messages: every one of {args.clients} clients got each once, in order)"
            if not bad and total
            else f"FAILED: {len(bad)} clients differ (first: c{bad[0] if bad else '-'})"
        )
    finally:
        for process, _ in started:
            process.send_signal(signal.SIGTERM)
        for process, _ in started:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(workdir, ignore_errors=True)
    return cell


def _print(cell: Cell, args: Any) -> None:
    deliveries = cell.deliveries_per_s or 1.0
    per_node = ", ".join(f"{cpu:.0f}%" for cpu in cell.node_cpu)
    us_per_delivery = [cpu / 100 * 1e6 / deliveries for cpu in cell.node_cpu]
    what = "SQLite, one process" if cell.nodes == 0 else f"{cell.nodes} node(s)"
    print(
        f"{what}: {cell.msgs_per_s:,.0f} msg/s, {cell.deliveries_per_s:,.0f} "
        f"deliveries/s, p50 {cell.p50_ms:.1f} ms, p99 {cell.p99_ms:.1f} ms; CPU per node "
        f"[{per_node}] = {sum(us_per_delivery):.1f} us per delivery in all nodes "
        f"({statistics.mean(us_per_delivery):.1f} per node), Redis {cell.redis_cpu:.0f}% "
        f"({cell.redis_cpu / 100 * 1e6 / deliveries:.1f} us per delivery); {cell.integrity}"
    )


async def _main(args: Any) -> int:
    directory = Path(tempfile.mkdtemp(prefix="lanchat-cluster-redis-"))
    redis = _start_redis(directory)
    ok = True
    try:
        print(
            f"{args.clients} clients in one room dealt round the nodes, {args.senders} "
            f"senders, window {args.window}, {args.duration:g} s, {os.cpu_count()} cores"
        )
        for nodes in args.nodes:
            for _ in range(args.repeat):
                cell = await _run_cell(nodes, redis, args)
                _print(cell, args)
                ok = ok and cell.integrity.startswith("ok")
    finally:
        redis[0].send_signal(signal.SIGTERM)
        redis[0].wait(10)
        shutil.rmtree(directory, ignore_errors=True)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.cluster_load", description=__doc__)
    p.add_argument(
        "--nodes", default="0,1,2,3", help="node counts to run; 0 is one process with SQLite"
    )
    p.add_argument("--clients", type=int, default=60)
    p.add_argument("--senders", type=int, default=6)
    p.add_argument("--window", type=int, default=4, help="messages in flight per sender")
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--probes", type=int, default=4, help="receivers that time every message")
    p.add_argument("--text-len", type=int, default=64)
    p.add_argument("--repeat", type=int, default=1)
    args = p.parse_args(argv)
    args.nodes = [int(n) for n in args.nodes.split(",")]
    return asyncio.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
