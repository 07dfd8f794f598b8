"""Fan-out load benchmark: chat-server against ngIRCd and a bare broadcast loop, same run.

Run it with `python -m bench.load` (see `--help` and bench/README.md). For every cell of
the matrix (scenario x target x repeat) it starts the server on 127.0.0.1, starts worker
processes (`bench.load_clients`) that connect, register and join, runs the load for a
fixed time, lets the messages in flight arrive, checks every receiver's stream, stops
the server and prints one block. The last block per scenario gives medians and ratios.

Scenarios (every number can be changed by a flag):
  a  100 clients in one room, 10 senders, closed loop (W messages in flight each)
  b  1,000 clients, 5 senders, closed loop
  c  200 clients, 10 senders, open loop at 200 messages/s in total: latency
  d  5,000 registered idle clients: server RSS per connection, time to connect them all
  e  durable write rate: 20 clients all sending (W=8), SQLite store vs memory

With --features the chat-server targets run with the version-2 features in use: every
client is granted accounts, reply, edit, react and typing and logs in as an account;
senders send `typing` before every message, a reply every 4th message and a reaction
after every 10th (bench/README.md). `--features typing,react` uses only those (out of
accounts, typing, reply, react). Without the flag every line on the wire is as before.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import multiprocessing
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Final

from bench.load_clients import USES, Kind, WorkerPlan, WorkerResult, raise_fd_limit, run_worker
from bench.load_targets import (
    DEFAULT_TARGETS,
    TARGETS,
    Target,
    TargetSpec,
    machine_busy_seconds,
    ngircd_path,
    proc_cpu_seconds,
)
from bench.load_targets import start_target as _start_target

__all__ = ["SCENARIOS", "CellResult", "Scenario", "main"]


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    clients: int
    senders: int = 0
    window: int = 0  # closed loop when > 0
    rate: float = 0.0  # open loop: messages/s offered in total
    idle: bool = False  # only connect and register (scenario d)
    targets: tuple[str, ...] = tuple(TARGETS)  # those a run asks for are filtered by these


SCENARIOS: Final[dict[str, Scenario]] = {
    s.key: s
    for s in (
        Scenario("a", "100 clients in one room, 10 senders, closed loop", 100, 10, window=4),
        Scenario("b", "1,000 clients in one room, 5 senders, closed loop", 1000, 5, window=4),
        Scenario("c", "200 clients, 10 senders, open loop 200 msg/s in total", 200, 10, rate=200),
        Scenario("d", "5,000 registered idle clients", 5000, idle=True),
        Scenario(
            "e",
            "durable write rate: 20 clients all sending, closed loop",
            20,
            20,
            window=8,
            targets=("chat-sqlite", "chat-mem", "chat-sqlite-fsync", "chat-sqlite-noindex"),
        ),
    )
}


@dataclass
class CellResult:
    scenario: str
    target: str
    repeat: int
    ok: bool = True
    integrity: str = ""
    messages: int = 0  # room messages sent during the window
    msgs_per_s: float = 0.0
    deliveries_per_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    samples: int = 0
    server_cpu: float = 0.0  # percent of one core over the window
    loadgen_cpu: float = 0.0  # percent of one core, all worker processes together
    other_cpu: float = 0.0  # percent of one core used by anything else on the machine
    setup_s: float = 0.0
    connect_s: float = 0.0
    rss_before_kib: int = 0
    rss_after_kib: int = 0
    rss_per_conn_kib: float = 0.0
    stored: int | None = None
    reactions: int | None = None  # with features: reactions sent during the window
    typing: int = 0  # with features: typing notices received by the probes
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Options:
    duration: float
    procs: int
    probes: int
    text_len: int
    connect_concurrency: int
    settle: float
    drain_timeout: float
    setup_timeout: float
    tmp_dir: str | None
    poll_interval: float
    ngircd_max_connections: int
    features: frozenset[str] = frozenset()  # out of USES


# -- worker processes ------------------------------------------------------------------------


class Workers:
    """The load generator processes of one cell, and the pipes to them."""

    def __init__(self, plans: list[WorkerPlan]) -> None:
        context = multiprocessing.get_context("fork")
        self.pipes: list[Connection] = []
        self.processes: list[BaseProcess] = []
        for plan in plans:
            parent_end, child_end = context.Pipe()
            process = context.Process(target=run_worker, args=(plan, child_end), daemon=True)
            process.start()
            child_end.close()
            self.pipes.append(parent_end)
            self.processes.append(process)

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.pid is not None]

    def cpu_seconds(self) -> float:
        return sum(proc_cpu_seconds(pid) for pid in self.pids())

    def send(self, message: tuple[Any, ...], only: slice = slice(None)) -> None:
        for pipe in self.pipes[only]:
            pipe.send(message)

    def gather(self, expected: str, timeout: float, only: slice = slice(None)) -> list[Any]:
        """One reply per worker, each `(expected, value)`; raise on failure or timeout."""
        deadline = time.monotonic() + timeout
        values: list[Any] = []
        for pipe in self.pipes[only]:
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                raise RuntimeError(f"a load worker sent no '{expected}' within {timeout:g} s")
            reply = pipe.recv()
            if reply[0] != expected:
                raise RuntimeError(f"load worker: {reply[1] if len(reply) > 1 else reply}")
            values.append(reply[1])
        return values

    def close(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send(("close",))
            except OSError:
                pass
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join(5)
        for pipe in self.pipes:
            pipe.close()


def _plans(
    scenario: Scenario, kind: Kind, port: int, opts: Options, ports: Sequence[int] = ()
) -> list[WorkerPlan]:
    """Split the clients over the worker processes.

    With one process it runs every client. With more, the first runs the clients that
    must react at once (senders, latency probes and, for IRC, the listeners that report
    each sender's messages back), and the others share the receive-only clients, so
    reading a large room never delays a sender. Idle clients are simply dealt round.
    With several `ports` (nodes on Redis) each group is split once more: client i
    connects to node i mod N, so senders, probes and receivers are spread over the
    nodes and every message crosses them.
    """
    clients = scenario.clients
    senders = tuple(range(min(scenario.senders, clients)))
    probes = frozenset(range(clients - 1, max(-1, clients - 1 - opts.probes), -1))
    mirrors: tuple[tuple[int, int], ...] = ()
    if kind == "irc" and scenario.window:
        others = [i for i in range(clients) if i not in senders] or list(range(clients))
        pairs = [(s, others[k % len(others)]) for k, s in enumerate(senders)]
        pairs = [(s, m if m != s else (s + 1) % clients) for s, m in pairs]
        mirrors = tuple(pairs)
    active = frozenset(senders) | probes | {m for _, m in mirrors}
    procs = max(1, min(opts.procs, clients))
    if procs == 1:
        groups = [tuple(range(clients))]
    elif scenario.idle:
        groups = [tuple(range(w, clients, procs)) for w in range(procs)]
    else:
        passive = [i for i in range(clients) if i not in active]
        groups = [tuple(sorted(active))]
        groups += [tuple(passive[w :: procs - 1]) for w in range(procs - 1)]
        groups = [g for g in groups if g]
    per_sender_rate = scenario.rate / len(senders) if senders and scenario.rate else 0.0
    spread = list(ports) or [port]
    placed = [
        (spread[n], part)
        for group in groups
        for n in range(len(spread))
        if (part := tuple(i for i in group if i % len(spread) == n))
    ]
    return [
        WorkerPlan(
            kind=kind,
            host="127.0.0.1",
            port=node_port,
            clients=group,
            senders=senders,
            probes=probes,
            active=active,
            mirrors=mirrors,
            window=scenario.window,
            rate=per_sender_rate,
            text_len=opts.text_len,
            join=not scenario.idle,
            connect_concurrency=max(1, opts.connect_concurrency // len(placed)),
            setup_timeout=opts.setup_timeout,
            poll_interval=opts.poll_interval,
            features=opts.features if kind == "chat" else frozenset(),
        )
        for node_port, group in placed
    ]


# -- one cell ----------------------------------------------------------------------------------


def _percentile(ordered: Sequence[int], fraction: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1e6


def _sleep_until(stamp_ns: int) -> None:
    delay = (stamp_ns - time.monotonic_ns()) / 1e9
    if delay > 0:
        time.sleep(delay)


def run_load_cell(
    scenario: Scenario, spec: TargetSpec, repeat: int, opts: Options, target: Target
) -> CellResult:
    result = CellResult(scenario.key, spec.name, repeat)
    started = time.monotonic()
    workers = Workers(_plans(scenario, spec.kind, target.port, opts, target.ports))
    try:
        workers.gather("ready", opts.setup_timeout + 10)
        workers.send(("settle", opts.settle, 30.0))
        workers.gather("settled", 40.0)
        result.setup_s = time.monotonic() - started
        start_ns = time.monotonic_ns() + 200_000_000
        end_ns = start_ns + round(opts.duration * 1e9)
        workers.send(("go", start_ns, end_ns))
        _sleep_until(start_ns)
        server0, load0 = target.cpu_seconds(), workers.cpu_seconds()
        busy0 = machine_busy_seconds()
        _sleep_until(end_ns)
        server1, load1 = target.cpu_seconds(), workers.cpu_seconds()
        busy1 = machine_busy_seconds()
        sent: dict[int, int] = {}
        reacted = replied = 0
        for part, part_reacted, part_replied in workers.gather("stopped", opts.duration + 30):
            sent.update(part)
            reacted += part_reacted
            replied += part_replied
        # The first worker holds the clients that check every message: once they have
        # everything, the receive-only clients of the others are told to finish.
        first, rest = slice(0, 1), slice(1, None)
        workers.send(("expect", sent, opts.drain_timeout, reacted, replied), first)
        parts: list[WorkerResult] = workers.gather("result", opts.drain_timeout + 30, first)
        workers.send(("expect", sent, opts.drain_timeout, reacted, replied), rest)
        parts += workers.gather("result", opts.drain_timeout + 30, rest)
    finally:
        workers.close()

    result.server_cpu = 100 * (server1 - server0) / opts.duration
    result.loadgen_cpu = 100 * (load1 - load0) / opts.duration
    result.other_cpu = max(
        0.0, 100 * (busy1 - busy0) / opts.duration - result.server_cpu - result.loadgen_cpu
    )
    total = sum(sent.values())
    result.messages = total
    featured = bool(opts.features) and spec.kind == "chat"
    if featured:
        result.reactions = reacted
        result.typing = sum(p.typing for p in parts)
    completed = sum(p.completed for p in parts)
    result.msgs_per_s = (completed if scenario.window else total) / opts.duration
    # Every receiver gets every message (the integrity check below makes sure), so the
    # deliveries made in the window are the messages completed in it times the
    # recipients of each; IRC does not send a message back to its sender.
    recipients = scenario.clients - (1 if spec.kind == "irc" else 0)
    result.deliveries_per_s = result.msgs_per_s * recipients
    samples = array("q")
    for part in parts:
        samples.frombytes(part.latencies)
    ordered = sorted(samples)
    result.samples = len(ordered)
    result.p50_ms = _percentile(ordered, 0.50)
    result.p99_ms = _percentile(ordered, 0.99)
    result.max_ms = ordered[-1] / 1e6 if ordered else 0.0
    errors = [e for p in parts for e in p.errors]
    error_count = sum(p.error_count for p in parts)
    checked = sum(p.checked_clients for p in parts)
    digests = [d for p in parts for d in p.digests]
    nodes = len(target.ports)
    if featured and nodes > 1:
        # Typing notices reach each node by their own path (their place among the
        # messages differs), and a node that relays a message after it was reacted to
        # sends it with that reaction in `reactions`: compare streams within a node.
        matched, digest_errors = 0, []
        for node in range(nodes):
            count, problems = _compare_digests([d for d in digests if d[0] % nodes == node])
            matched += count
            digest_errors += [f"node {node + 1}: {problem}" for problem in problems]
    else:
        matched, digest_errors = _compare_digests(digests)
    errors += digest_errors
    error_count += len(digest_errors)
    if error_count:
        result.ok = False
        shown = "; ".join(errors[:5])
        result.integrity = f"FAILED ({error_count} problems in {total:,} messages): {shown}"
    elif total == 0:
        result.ok = False
        result.integrity = "FAILED (no message was sent)"
    else:
        others = f", the other {matched} received byte-identical streams" if matched else ""
        result.integrity = (
            f"ok ({total:,} messages, no loss, duplication or reordering; every message "
            f"checked by {checked} clients{others})"
        )
        if featured:
            typing = (
                f", typing from every sender ({result.typing:,} notices at the probes)"
                if "typing" in opts.features
                else ""
            )
            result.integrity += (
                f"; features: {replied:,} of the messages replies, {reacted:,} reactions, "
                f"each received once by every checked client (at the probes, revs without a "
                f"gap){typing}"
            )
    return result


def _compare_digests(digests: list[tuple[int, int, int, bool]]) -> tuple[int, list[str]]:
    """Receive-only clients must have exactly the bytes of a fully checked probe."""
    references = {(crc, size) for _, crc, size, is_ref in digests if is_ref}
    others = [(i, crc, size) for i, crc, size, is_ref in digests if not is_ref]
    if not others:
        return 0, []
    if len(references) != 1:
        return 0, [f"no single reference stream among the probes ({len(references)} differ)"]
    ref_crc, ref_size = next(iter(references))
    bad = [
        f"c{i:05d}: stream differs from the checked one ({size:,} bytes vs {ref_size:,})"
        for i, crc, size in others
        if (crc, size) != (ref_crc, ref_size)
    ]
    return len(others) - len(bad), bad


def run_idle_cell(
    scenario: Scenario, spec: TargetSpec, repeat: int, opts: Options, target: Target
) -> CellResult:
    result = CellResult(scenario.key, spec.name, repeat)
    time.sleep(0.5)
    result.rss_before_kib = target.rss_kib()
    workers = Workers(_plans(scenario, spec.kind, target.port, opts, target.ports))
    try:
        result.connect_s = max(workers.gather("ready", opts.setup_timeout + 10))
        workers.send(("settle", max(opts.settle, 0.5), 30.0))
        workers.gather("settled", 40.0)
        result.rss_after_kib = target.rss_kib()
        if not target.alive():
            raise RuntimeError("server died")
    finally:
        workers.close()
    result.rss_per_conn_kib = (result.rss_after_kib - result.rss_before_kib) / scenario.clients
    result.integrity = f"ok ({scenario.clients:,} clients registered)"
    return result


def run_cell(scenario: Scenario, spec: TargetSpec, repeat: int, opts: Options) -> CellResult:
    accounts = "accounts" in opts.features
    target = _start_target(spec, opts.tmp_dir, opts.ngircd_max_connections, accounts)
    try:
        runner = run_idle_cell if scenario.idle else run_load_cell
        try:
            result = runner(scenario, spec, repeat, opts, target)
        except Exception as exc:
            result = CellResult(scenario.key, spec.name, repeat, ok=False)
            result.integrity = f"FAILED: {type(exc).__name__}: {exc}"
            tail = target.log_tail()
            if tail:
                result.notes.append("server log: " + tail.replace("\n", " | ")[-400:])
    finally:
        code = target.stop()
    result.notes.extend(target.notes)
    if code not in (0, -15, None):
        result.notes.append(f"server exit code {code}")
    if spec.store == "sqlite" and not scenario.idle and result.messages:
        result.stored = target.stored_messages()
        if result.stored != result.messages:
            result.ok = False
            result.integrity += f"; store has {result.stored} rows, {result.messages} sent"
    if result.ok:
        shutil.rmtree(target.workdir, ignore_errors=True)
    else:
        result.notes.append(f"server log and data kept in {target.workdir}")
    return result


# -- output --------------------------------------------------------------------------------


def _print_cell(r: CellResult, scenario: Scenario) -> None:
    head = f"[{r.scenario}] {r.target:<17} #{r.repeat}:"
    if scenario.idle:
        print(
            f"{head} {scenario.clients:,} clients connected and registered in "
            f"{r.connect_s:.2f} s; server RSS {r.rss_before_kib / 1024:.1f} -> "
            f"{r.rss_after_kib / 1024:.1f} MiB = {r.rss_per_conn_kib:.1f} KiB per connection"
        )
    else:
        print(
            f"{head} {r.msgs_per_s:,.0f} msg/s, {r.deliveries_per_s:,.0f} deliveries/s, "
            f"latency p50 {r.p50_ms:.2f} ms p99 {r.p99_ms:.2f} ms max {r.max_ms:.2f} ms "
            f"({r.samples:,} samples), server CPU {r.server_cpu:.0f}%, "
            f"load generator CPU {r.loadgen_cpu:.0f}%, rest of the machine {r.other_cpu:.0f}%, "
            f"setup {r.setup_s:.1f} s"
        )
        if r.stored is not None:
            print(f"    store: {r.stored:,} messages committed to SQLite")
    print(f"    integrity: {r.integrity}")
    for note in r.notes:
        print(f"    note: {note}")
    sys.stdout.flush()


Metric = tuple[str, Callable[[CellResult], float], str]

LOAD_METRICS: Final[list[Metric]] = [
    ("msg/s", lambda r: r.msgs_per_s, ",.0f"),
    ("deliveries/s", lambda r: r.deliveries_per_s, ",.0f"),
    ("p50 ms", lambda r: r.p50_ms, ".2f"),
    ("p99 ms", lambda r: r.p99_ms, ".2f"),
    ("max ms", lambda r: r.max_ms, ".2f"),
    ("server CPU %", lambda r: r.server_cpu, ".0f"),
    ("loadgen CPU %", lambda r: r.loadgen_cpu, ".0f"),
    ("other CPU %", lambda r: r.other_cpu, ".0f"),
]
IDLE_METRICS: Final[list[Metric]] = [
    ("connect s", lambda r: r.connect_s, ".2f"),
    ("RSS0 MiB", lambda r: r.rss_before_kib / 1024, ".1f"),
    ("RSS1 MiB", lambda r: r.rss_after_kib / 1024, ".1f"),
    ("KiB/conn", lambda r: r.rss_per_conn_kib, ".1f"),
]


def _median(results: list[CellResult], metric: Callable[[CellResult], float]) -> float:
    values = [metric(r) for r in results if r.ok]
    return statistics.median(values) if values else float("nan")


def _print_summary(scenario: Scenario, results: list[CellResult]) -> None:
    metrics = IDLE_METRICS if scenario.idle else LOAD_METRICS
    targets = [t for t in scenario.targets if any(r.target == t for r in results)]
    repeats = max((r.repeat for r in results), default=0)
    print(f"\n== scenario {scenario.key} summary: median of {repeats} run(s), failed runs left out")
    width = 14
    print(f"{'target':<18}" + "".join(f"{name:>{width}}" for name, _, _ in metrics) + "  ok")
    medians: dict[str, dict[str, float]] = {}
    for target in targets:
        cells = [r for r in results if r.target == target]
        row = {name: _median(cells, fn) for name, fn, _ in metrics}
        medians[target] = row
        shown = "".join(f"{row[name]:>{width}{fmt}}" for name, _, fmt in metrics)
        print(f"{target:<18}{shown}  {sum(r.ok for r in cells)}/{len(cells)}")
    _print_ratios(scenario, medians)
    print()
    sys.stdout.flush()


def _print_ratios(scenario: Scenario, medians: dict[str, dict[str, float]]) -> None:
    if scenario.idle:
        keys = ["KiB/conn", "connect s"]
    elif scenario.rate:
        keys = ["p50 ms", "p99 ms", "max ms"]
    else:
        keys = ["deliveries/s", "p50 ms", "p99 ms"]
    pairs = [
        ("chat-mem", "ngircd"),
        ("chat-mem", "ceiling"),
        ("chat-sqlite", "ngircd"),
        ("chat-sqlite", "ceiling"),
        ("chat-sqlite", "chat-mem"),
        ("chat-sqlite-fsync", "chat-sqlite"),
    ]
    lines = []
    for top, bottom in pairs:
        if top in medians and bottom in medians:
            ratios = []
            for key in keys:
                below = medians[bottom][key]
                value = medians[top][key] / below if below else float("nan")
                ratios.append(f"{key} {value:.2f}x")
            lines.append(f"  {top}/{bottom}: " + ", ".join(ratios))
    if lines:
        print("ratios (medians):")
        print("\n".join(lines))


def _uses_text(uses: frozenset[str]) -> str:
    parts = {
        "accounts": "every client logged in as an account",
        "typing": "typing before every message",
        "reply": "a reply every 4th message",
        "react": "a reaction after every 10th",
    }
    return ", ".join(text for use, text in parts.items() if use in uses)


def _environment(argv: Sequence[str]) -> str:
    try:
        uv = importlib.metadata.version("uvloop")
    except importlib.metadata.PackageNotFoundError:
        uv = "missing"
    ngircd = "missing"
    if path := ngircd_path():
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
        ngircd = out.stdout.splitlines()[0] if out.stdout else "?"
    return (
        f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}; Python {platform.python_version()}, "
        f"uvloop {uv}, {ngircd}; {platform.system()} {platform.release()} "
        f"{platform.machine()}, {os.cpu_count()} CPUs\n"
        f"command: python -m bench.load {shlex.join(argv)}"
    )


# -- command line ------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.load",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--scenario", default="abcde", help="scenarios to run, e.g. 'ab' or 'a,c'")
    p.add_argument(
        "--targets",
        default=",".join(DEFAULT_TARGETS),
        help=f"comma-separated, from {', '.join(TARGETS)} (default: {', '.join(DEFAULT_TARGETS)})",
    )
    p.add_argument("--duration", type=float, default=10.0, help="seconds of load per run")
    p.add_argument("--repeat", type=int, default=1, help="runs per cell; medians are printed")
    p.add_argument("--clients", type=int, help="clients in the room (overrides the scenario)")
    p.add_argument("--senders", type=int, help="sending clients (overrides the scenario)")
    p.add_argument("--window", type=int, help="closed loop: messages in flight per sender")
    p.add_argument("--rate", type=float, help="open loop (c): messages/s offered in total")
    p.add_argument("--idle-clients", type=int, help="scenario d: clients to connect (5000)")
    p.add_argument(
        "--procs",
        type=int,
        default=2,
        help="load generator processes: 1 runs every client; with 2 (the default) one "
        "runs senders and probes, the other the receive-only clients",
    )
    p.add_argument("--probes", type=int, default=4, help="receivers that time every message")
    p.add_argument("--text-len", type=int, default=64, help="characters of text per message")
    p.add_argument(
        "--connect-concurrency", type=int, default=64, help="connections set up at a time"
    )
    p.add_argument(
        "--poll-ms",
        type=float,
        default=20.0,
        help="receive-only clients are read every this many ms (0: on every write)",
    )
    p.add_argument("--settle", type=float, default=0.3, help="quiet seconds before a run starts")
    p.add_argument(
        "--drain-timeout", type=float, default=10.0, help="seconds to wait for stragglers"
    )
    p.add_argument("--setup-timeout", type=float, default=120.0, help="seconds to connect all")
    p.add_argument(
        "--ngircd-max-connections",
        type=int,
        default=0,
        help="ngIRCd's MaxConnections (default 0: unlimited, its table grows as needed)",
    )
    p.add_argument("--tmp-dir", help="where server logs and SQLite files go (default: $TMPDIR)")
    p.add_argument(
        "--features",
        nargs="?",
        const="all",
        default="",
        metavar="USES",
        help="chat-server targets: put the version-2 features in use; alone or 'all': "
        f"{', '.join(USES)}; or a comma-separated subset (with accounts the servers get "
        "--hash-memory 1024)",
    )
    return p


def _scenario_with_flags(scenario: Scenario, args: argparse.Namespace) -> Scenario:
    if scenario.idle:
        return replace(scenario, clients=args.idle_clients or scenario.clients)
    changed = scenario
    if args.clients:
        changed = replace(changed, clients=args.clients)
    if args.senders:
        changed = replace(changed, senders=args.senders)
    if scenario.key == "e" and args.clients and not args.senders:
        changed = replace(changed, senders=changed.clients)
    if args.window and changed.window:
        changed = replace(changed, window=args.window)
    if args.rate and changed.rate:
        changed = replace(changed, rate=args.rate)
    return replace(changed, senders=min(changed.senders, changed.clients))


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(args_list)
    keys = [k for k in args.scenario.replace(",", "") if k.strip()]
    unknown = [k for k in keys if k not in SCENARIOS]
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    bad_targets = [t for t in targets if t not in TARGETS]
    if unknown or bad_targets or args.repeat < 1 or args.duration <= 0:
        print(f"bad --scenario {unknown} or --targets {bad_targets}", file=sys.stderr)
        return 2
    named = [u.strip() for u in args.features.split(",") if u.strip()]
    uses = frozenset(USES if named == ["all"] else named)
    if bad_uses := sorted(uses - set(USES)):
        print(f"bad --features {bad_uses}: choose from {', '.join(USES)}", file=sys.stderr)
        return 2
    if "ngircd" in targets and ngircd_path() is None:
        print("ngircd is missing (apt-get install -y ngircd); leaving it out", file=sys.stderr)
        targets.remove("ngircd")
    limit = raise_fd_limit()
    opts = Options(
        duration=args.duration,
        procs=args.procs,
        probes=args.probes,
        text_len=args.text_len,
        connect_concurrency=args.connect_concurrency,
        settle=args.settle,
        drain_timeout=args.drain_timeout,
        setup_timeout=args.setup_timeout,
        tmp_dir=args.tmp_dir,
        poll_interval=args.poll_ms / 1000,
        ngircd_max_connections=args.ngircd_max_connections,
        features=uses,
    )
    print(_environment(args_list))
    print(
        f"{opts.duration:g} s per run, {args.repeat} repeat(s), {opts.procs} load generator "
        f"process(es), {opts.probes} latency probes, {opts.text_len}-character texts, "
        f"RLIMIT_NOFILE {limit}"
        + (
            f"; version-2 features in use for chat-server: {_uses_text(opts.features)}"
            if opts.features
            else ""
        )
        + "\n"
    )
    all_ok = True
    for key in keys:
        scenario = _scenario_with_flags(SCENARIOS[key], args)
        cell_targets = [t for t in scenario.targets if t in targets]
        shape = (
            f"{scenario.clients:,} clients"
            if scenario.idle
            else f"{scenario.clients:,} clients, {scenario.senders} senders, "
            + (f"W={scenario.window}" if scenario.window else f"{scenario.rate:g} msg/s offered")
        )
        print(f"== scenario {key}: {scenario.title} ({shape}); targets: {', '.join(cell_targets)}")
        sys.stdout.flush()
        results: list[CellResult] = []
        for repeat in range(1, args.repeat + 1):
            for name in cell_targets:
                result = run_cell(scenario, TARGETS[name], repeat, opts)
                all_ok = all_ok and result.ok
                _print_cell(result, scenario)
                results.append(result)
        _print_summary(scenario, results)
    print("all runs passed their integrity checks" if all_ok else "SOME RUNS FAILED (see above)")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
