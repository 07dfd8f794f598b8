"""Servers under test for the fan-out benchmark: start one, find its port, read /proc, stop it.

Each target is a child process of the benchmark, listening on 127.0.0.1 only, with its
output going to a file in a temporary directory (a full pipe would stall it). It is
stopped with SIGTERM (SIGKILL after a grace period), always by its own PID.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from bench.load_clients import Kind

__all__ = [
    "DEFAULT_TARGETS",
    "TARGETS",
    "Target",
    "TargetSpec",
    "machine_busy_seconds",
    "ngircd_path",
    "proc_cpu_seconds",
    "proc_rss_kib",
    "start_target",
]

NGIRCD: Final = "/usr/sbin/ngircd"
CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")
LISTENING_RE: Final = re.compile(r"listening on 127\.0\.0\.1:(\d+)")
REPO: Final = Path(__file__).resolve().parent.parent
START_TIMEOUT: Final = 20.0
STOP_GRACE: Final = 10.0


@dataclass(frozen=True)
class TargetSpec:
    name: str
    kind: Kind
    store: str = ""  # chat-server only: "memory" or "sqlite"
    fsync: bool = False  # chat-server only: `--fsync`
    search_index: bool = True  # chat-server on SQLite: False drops the search triggers first
    nodes: int = 0  # store "redis": this many `chat-server --redis` nodes on one Redis


TARGETS: Final[dict[str, TargetSpec]] = {
    spec.name: spec
    for spec in (
        TargetSpec("chat-mem", "chat", "memory"),
        TargetSpec("chat-sqlite", "chat", "sqlite"),
        TargetSpec("ngircd", "irc"),
        TargetSpec("ceiling", "ceiling"),
        TargetSpec("chat-sqlite-fsync", "chat", "sqlite", fsync=True),
        # The same store without its search index kept up (what the index costs a write).
        TargetSpec("chat-sqlite-noindex", "chat", "sqlite", search_index=False),
        # Nodes on one Redis (appendfsync always), clients dealt round them (see _plans).
        TargetSpec("redis-1", "chat", "redis", nodes=1),
        TargetSpec("redis-2", "chat", "redis", nodes=2),
        TargetSpec("redis-3", "chat", "redis", nodes=3),
    )
}
# What a plain `python -m bench.load` runs; the others are asked for by name.
DEFAULT_TARGETS: Final = ("chat-mem", "chat-sqlite", "ngircd", "ceiling")


def ngircd_path() -> str | None:
    return NGIRCD if os.access(NGIRCD, os.X_OK) else None


@dataclass
class Target:
    """A running server."""

    spec: TargetSpec
    process: subprocess.Popen[bytes]
    port: int
    workdir: Path
    db_path: Path | None = None
    notes: list[str] = field(default_factory=list)
    # Nodes on Redis: every node's port (the first is `port`), the other nodes, and Redis.
    ports: list[int] = field(default_factory=list)
    others: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        """User + system CPU of the whole process (all threads), from /proc/PID/stat;
        for nodes on Redis, of every node and Redis together."""
        return proc_cpu_seconds(self.pid) + sum(proc_cpu_seconds(p.pid) for p in self.others)

    def rss_kib(self) -> int:
        return proc_rss_kib(self.pid)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> int | None:
        """SIGTERM, wait, SIGKILL if need be; return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                self.notes.append(f"did not stop within {STOP_GRACE:g} s of SIGTERM; killed")
                self.process.kill()
                self.process.wait(STOP_GRACE)
        for other in self.others:  # the other nodes, then Redis (last in the list)
            if other.poll() is None:
                other.send_signal(signal.SIGTERM)
                try:
                    other.wait(STOP_GRACE)
                except subprocess.TimeoutExpired:
                    other.kill()
                    other.wait(STOP_GRACE)
        return self.process.returncode

    def stored_messages(self) -> int | None:
        """Rows in the SQLite store's message table (call after `stop`)."""
        if self.db_path is None:
            return None
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True) as db:
            return int(db.execute("SELECT count(*) FROM messages").fetchone()[0])

    def log_tail(self, lines: int = 5) -> str:
        path = self.workdir / "server.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def proc_cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def machine_busy_seconds() -> float:
    """CPU time spent busy by the whole machine, all cores (from /proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def proc_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for PID {pid}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_log_port(process: subprocess.Popen[bytes], log: Path) -> int:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {log.read_text()[-500:]}")
        match = LISTENING_RE.search(log.read_text(errors="replace"))
        if match:
            return int(match.group(1))
        time.sleep(0.05)
    raise RuntimeError(f"server did not say where it listens within {START_TIMEOUT:g} s")


def _wait_for_accept(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {log.read_text()[-500:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing accepted connections on port {port} within {START_TIMEOUT:g} s")


NGIRCD_CONFIG: Final = """\
[Global]
\tName = bench.local
\tInfo = fan-out benchmark
\tAdminInfo1 = bench
\tAdminInfo2 = bench
\tAdminEMail = bench@localhost
\tListen = 127.0.0.1
\tPorts = {port}
\tMotdPhrase = "bench"
[Limits]
\tMaxConnections = {max_connections}
\tMaxConnectionsIP = 0
\tMaxJoins = 0
\tMaxPenaltyTime = 0
\tPingTimeout = 600
\tPongTimeout = 600
\tIdleTimeout = 0
[Options]
\tDNS = no
\tIdent = no
\tPAM = no
"""


def _spawn(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=REPO
        )


def _without_search_index(path: str) -> None:
    """A current-schema database whose messages are not indexed for search (bench only)."""
    from chat_server.sqlite_store import migrate, open_database

    connection = open_database(path)
    try:
        migrate(connection, path)
        # Without its triggers and marks, no message is ever indexed (nor its room marked).
        for trigger in ("update", "delete", "room_made", "room_gone"):
            connection.execute(f"DROP TRIGGER message_search_{trigger}")
        connection.execute("DELETE FROM message_search_indexed")
    finally:
        connection.close()


def start_target(
    spec: TargetSpec, tmp_root: str | None = None, max_connections: int = 0, features: bool = False
) -> Target:
    """Start `spec` on a free loopback port and wait until it accepts connections.

    With `features` (accounts in use) chat-server hashes new passwords with its cheapest
    argon2id setting (`--hash-memory 1024`), so registering a thousand clients is quick.

    `max_connections` is ngIRCd's `MaxConnections` (0: unlimited). ngIRCd sizes its
    connection table from it and walks the whole table on every pass of its main loop,
    so a needlessly high value (say 100,000) costs it most of its CPU.
    """
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{spec.name}-", dir=tmp_root))
    log = workdir / "server.log"
    db_path: Path | None = None
    if spec.store == "redis":
        return _start_nodes(spec, workdir, features)
    if spec.kind == "chat":
        db = ":memory:"
        if spec.store == "sqlite":
            db_path = workdir / "chat.db"
            db = str(db_path)
            if not spec.search_index:
                _without_search_index(db)
        argv = [sys.executable, "-m", "chat_server", "--host", "127.0.0.1", "--port", "0"]
        argv += ["--no-files", "--no-tls", "--no-announce"]
        argv += ["--rate", "0", "--max-per-ip", "0", "--db", db]
        if spec.fsync:
            argv.append("--fsync")
        if features:
            argv += ["--hash-memory", "1024"]
        process = _spawn(argv, log)
        port = _wait_for_log_port(process, log)
    elif spec.kind == "ceiling":
        process = _spawn([sys.executable, "-m", "bench.ceiling", "--port", "0"], log)
        port = _wait_for_log_port(process, log)
    else:
        binary = ngircd_path()
        if binary is None:
            raise RuntimeError(f"{NGIRCD} is missing: apt-get install -y ngircd")
        port = _free_port()
        config = workdir / "ngircd.conf"
        config.write_text(NGIRCD_CONFIG.format(port=port, max_connections=max_connections))
        # ngIRCd drops root for "nobody", who must be able to read its config.
        workdir.chmod(0o755)
        config.chmod(0o644)
        process = _spawn([binary, "--nodaemon", "--config", str(config)], log)
        _wait_for_accept(process, port, log)
    return Target(spec, process, port, workdir, db_path)


def _start_nodes(spec: TargetSpec, workdir: Path, features: bool = False) -> Target:
    """`spec.nodes` chat-server nodes on a fresh Redis (bench/cluster_load.py's helpers)."""
    from bench.cluster_load import _start_node, _start_redis

    redis, redis_port = _start_redis(workdir)
    started: list[tuple[subprocess.Popen[bytes], int]] = []
    try:
        for index in range(spec.nodes):
            started.append(_start_node(redis_port, workdir, index, features))
    except BaseException:
        for process, _ in started:
            process.kill()
        redis.kill()
        raise
    (first, port), rest = started[0], started[1:]
    ports = [p for _, p in started]
    others = [process for process, _ in rest] + [redis]
    return Target(spec, first, port, workdir, ports=ports, others=others)
