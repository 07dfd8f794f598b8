"""Files through a real `chat-server` over loopback: throughput, server memory, chat latency.

Starts `chat-server` (files on, no upload rate limit) as a subprocess, announces a file on
the chat line, uploads it with the client library (`chat_client.files.upload`), downloads it
with the library and with `curl`, and meanwhile:

- samples the server's RSS (`VmRSS` from /proc) every 20 ms, against its idle RSS;
- runs a chat ping loop in another process (100 pings/s on its own chat connection) and
  reports the round-trip p50/p99/max while idle, while uploading and while downloading.

With `--chat-load SECONDS` it then runs scenario c of bench/load.py (200 clients in one
room, 10 senders, open loop at 200 messages/s, latency timed by 4 probes) twice, each time
on a new server holding the file: once alone, once while `curl` downloads the file back
to back, and prints both latencies and their ratio.

    .venv/bin/python -m bench.files                  # 1 GiB
    .venv/bin/python -m bench.files --size 256M --repeat 3
    .venv/bin/python -m bench.files --size 1G --chat-load 10
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.load_targets import proc_cpu_seconds
from chat_client.files import download, upload
from chat_server.files.config import parse_size
from protocol import Upload, UploadReady, decode_server_line, encode

MIB = 1 << 20
LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)(?: \((plain|files)\))?$")


# --- the ping loop (a child process) ----------------------------------------------------


async def _ping_loop(port: int, interval: float) -> list[tuple[float, float]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readline()
    writer.write(b'{"type":"hello","nick":"pinger","id":"h"}\n')
    await reader.readline()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(sys.stdin.fileno(), stop.set)  # the parent closes our stdin to stop us
    samples = []
    n = 0
    while not stop.is_set():
        n += 1
        sent = time.monotonic()
        writer.write(b'{"type":"ping","id":"p%d"}\n' % n)
        await reader.readline()
        samples.append((sent, time.monotonic() - sent))
        await asyncio.sleep(interval)
    writer.close()
    return samples


def ping_main(port: int, interval: float) -> None:
    samples = asyncio.run(_ping_loop(port, interval))
    json.dump(samples, sys.stdout)


# --- the server ---------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    files_port: int

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.process.pid)

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        found = re.search(r"VmRSS:\s+(\d+) kB", status)
        return int(found.group(1)) if found else 0

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def start_server(data_dir: Path, size: int) -> Server:
    argv = [sys.executable, "-m", "chat_server", "--host", "127.0.0.1", "--port", "0"]
    argv += ["--files-port", "0", "--db", ":memory:", "--data-dir", str(data_dir)]
    argv += ["--no-tls", "--no-announce"]  # plain HTTP files port; never on the LAN
    argv += ["--rate", "0", "--upload-rate", "0", "--max-file", str(size)]
    argv += ["--max-per-ip", "0"]  # --chat-load connects 200 clients from 127.0.0.1
    argv += ["--files-quota", str(2 * size)]
    process = subprocess.Popen(argv, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert process.stderr is not None
    ports: dict[bool, int] = {}
    while len(ports) < 2:
        line = process.stderr.readline().decode()
        if not line:
            raise RuntimeError("chat-server exited before listening")
        found = LISTENING.search(line.strip())
        if found:
            ports[found.group(2) == "files"] = int(found.group(1))
    threading.Thread(target=process.stderr.read, daemon=True).start()  # keep the pipe drained
    return Server(process, ports[False], ports[True])


class RssSampler:
    """Samples the server's RSS in a thread while a phase runs."""

    def __init__(self, server: Server, every: float = 0.02) -> None:
        self._server = server
        self._every = every
        self._stop = threading.Event()
        self.samples: list[int] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self._server.rss_kib())
            time.sleep(self._every)


# --- one run ------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    started: float = 0.0
    ended: float = 0.0
    nbytes: int = 0
    rss_kib: list[int] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # the server's CPU seconds at start, end

    @property
    def cpu_s(self) -> float:
        return self.cpu[1] - self.cpu[0] if len(self.cpu) == 2 else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.nbytes / (self.ended - self.started) / 1e6


class ChatLine:
    """The uploader's own chat connection: sends `upload`, returns `upload_ready`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> ChatLine:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
        await reader.readline()
        line = cls(reader, writer)
        await line.send_and_wait(b'{"type":"hello","nick":"bench","id":"h"}\n', "h")
        await line.send_and_wait(b'{"type":"join","room":"files","id":"j"}\n', "j")
        return line

    async def send_and_wait(self, data: bytes, request_id: str) -> Any:
        self._writer.write(data)
        while True:
            message = decode_server_line((await self._reader.readline()).rstrip(b"\n"))
            if getattr(message, "re", None) == request_id:
                return message

    async def request_upload(self, announce: Upload) -> UploadReady:
        reply = await self.send_and_wait(encode(announce.model_copy(update={"id": "u"})), "u")
        assert isinstance(reply, UploadReady), reply
        return reply

    def close(self) -> None:
        self._writer.close()


async def transfer(server: Server, source: Path, size: int, out_dir: Path) -> list[Phase]:
    chat = await ChatLine.open(server.port)
    phases = [Phase("upload"), Phase("download (library)"), Phase("download (curl)")]
    up, down, curl = phases

    def mark_start(phase: Phase) -> Callable[[int, int], None]:
        def progress(done: int, total: int) -> None:
            if phase.started == 0.0:
                phase.started = time.monotonic()
                phase.cpu.append(server.cpu_seconds())

        return progress

    with RssSampler(server) as rss:
        shared = await upload(
            source, room="files", request=chat.request_upload, progress=mark_start(up)
        )
        up.ended = time.monotonic()
        up.cpu.append(server.cpu_seconds())
    up.nbytes, up.rss_kib = size, rss.samples

    with RssSampler(server) as rss:
        down.started = time.monotonic()
        down.cpu.append(server.cpu_seconds())
        await download(shared, out_dir / "copy.bin")
        down.ended = time.monotonic()
        down.cpu.append(server.cpu_seconds())
    down.nbytes, down.rss_kib = size, rss.samples
    await asyncio.to_thread((out_dir / "copy.bin").unlink)

    with RssSampler(server) as rss:
        curl.started = time.monotonic()
        curl.cpu.append(server.cpu_seconds())
        done = await asyncio.create_subprocess_exec(
            "curl", "-sS", "--fail", "-o", "/dev/null", shared.url
        )  # fmt: skip
        assert await done.wait() == 0
        curl.ended = time.monotonic()
        curl.cpu.append(server.cpu_seconds())
    curl.nbytes, curl.rss_kib = size, rss.samples
    chat.close()
    return phases


# --- chat load during transfers (--chat-load) ---------------------------------------------


class CurlLoop:
    """Downloads `url` with `curl -o /dev/null` back to back, in a thread, until stopped."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.done = 0
        self.seconds = 0.0

    def __enter__(self) -> CurlLoop:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            subprocess.run(["curl", "-sS", "--fail", "-o", "/dev/null", self._url], check=True)
            self.seconds += time.monotonic() - started
            self.done += 1


async def _share(server: Server, source: Path) -> str:
    chat = await ChatLine.open(server.port)
    try:
        shared = await upload(source, room="files", request=chat.request_upload)
    finally:
        chat.close()
    return shared.url


def chat_load(source: Path, size: int, seconds: float, workdir: Path) -> dict[str, Any]:
    """Scenario c alone, then during back-to-back downloads; each on a new server holding
    the file (a room's seqs must start at 1 for the load's checks)."""
    from bench.load import SCENARIOS, Options, run_load_cell
    from bench.load_targets import TARGETS, Target

    opts = Options(
        duration=seconds,
        procs=2,
        probes=4,
        text_len=64,
        connect_concurrency=64,
        settle=0.3,
        drain_timeout=10.0,
        setup_timeout=120.0,
        tmp_dir=None,
        poll_interval=0.02,
        ngircd_max_connections=0,
    )
    scenario = SCENARIOS["c"]
    cells = []
    downloads = CurlLoop("")
    for during in (False, True):
        shutil.rmtree(workdir / "data", ignore_errors=True)
        server = start_server(workdir / "data", size)
        try:
            url = asyncio.run(_share(server, source))
            os.sync()  # the upload's dirty pages go to disk now, not during the load
            target = Target(TARGETS["chat-mem"], server.process, server.port, workdir)
            if during:
                with CurlLoop(url) as downloads:
                    cells.append(run_load_cell(scenario, target.spec, 1, opts, target))
            else:
                cells.append(run_load_cell(scenario, target.spec, 1, opts, target))
        finally:
            server.stop()
    alone, busy = cells
    mb_per_s = downloads.done * size / downloads.seconds / 1e6 if downloads.seconds else 0.0
    print(f"\nscenario c ({scenario.title}), {seconds:g} s each, ms")
    print(f"{'while':<30} {'msgs':>7} {'p50':>8} {'p99':>8} {'max':>8}  integrity")
    for name, cell in (("no transfer", alone), ("curl downloads back to back", busy)):
        print(
            f"{name:<30} {cell.messages:>7} {cell.p50_ms:>8.2f} {cell.p99_ms:>8.2f} "
            f"{cell.max_ms:>8.2f}  {cell.integrity.split(' (')[0]}"
        )
    ratio = busy.p99_ms / alone.p99_ms if alone.p99_ms else 0.0
    print(
        f"p99 during / without: {ratio:.2f}; {downloads.done} downloads of "
        f"{size / MIB:,.0f} MiB meanwhile (setup included) at {mb_per_s:,.0f} MB/s"
    )
    return {
        "seconds": seconds,
        "alone": {"p50_ms": alone.p50_ms, "p99_ms": alone.p99_ms, "max_ms": alone.max_ms},
        "during": {"p50_ms": busy.p50_ms, "p99_ms": busy.p99_ms, "max_ms": busy.max_ms},
        "ok": alone.ok and busy.ok,
        "downloads": downloads.done,
        "download_mb_per_s": round(mb_per_s, 1),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency_row(name: str, samples: list[tuple[float, float]], start: float, end: float) -> str:
    rtts = [rtt * 1000 for sent, rtt in samples if start <= sent <= end]
    if not rtts:
        return f"{name:<26} (no samples)"
    return (
        f"{name:<26} {len(rtts):>6} {statistics.median(rtts):>8.2f} "
        f"{percentile(rtts, 0.99):>8.2f} {max(rtts):>8.2f}"
    )


def make_file(path: Path, size: int) -> None:
    with open(path, "wb") as out:
        left = size
        block = os.urandom(8 * MIB)
        while left > 0:
            out.write(block[: min(left, len(block))])
            left -= len(block)


def run(size: int, idle_seconds: float, workdir: Path, load_seconds: float) -> dict[str, Any]:
    source = workdir / "source.bin"
    if not source.exists() or source.stat().st_size != size:
        make_file(source, size)
    out_dir = workdir / "out"
    shutil.rmtree(workdir / "data", ignore_errors=True)
    out_dir.mkdir(exist_ok=True)
    server = start_server(workdir / "data", size)
    try:
        pinger = subprocess.Popen(
            [sys.executable, "-m", "bench.files", "--ping", str(server.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        time.sleep(idle_seconds)  # the ping loop's idle baseline
        idle_end = time.monotonic()
        idle_rss = server.rss_kib()
        phases = asyncio.run(transfer(server, source, size, out_dir))
        assert pinger.stdin is not None and pinger.stdout is not None
        pinger.stdin.close()
        out = pinger.stdout.read()
        pinger.wait(30)
        samples = [(float(sent), float(rtt)) for sent, rtt in json.loads(out)]
    finally:
        server.stop()
    loaded = chat_load(source, size, load_seconds, workdir) if load_seconds else None
    print(f"file: {size / MIB:,.0f} MiB; server idle RSS {idle_rss / 1024:.1f} MiB")
    print(f"{'phase':<26} {'MB/s':>8} {'RSS max MiB':>12} {'above idle':>11} {'server CPU s':>13}")
    for phase in phases:
        peak = max(phase.rss_kib or [0])
        print(
            f"{phase.name:<26} {phase.mb_per_s:>8.0f} {peak / 1024:>12.1f} "
            f"{(peak - idle_rss) / 1024:>11.1f} {phase.cpu_s:>13.2f}"
        )
    print(f"\nchat ping round trip, ms   {'pings':>6} {'p50':>8} {'p99':>8} {'max':>8}")
    print(latency_row("idle", samples, 0.0, idle_end))
    for phase in phases:
        print(latency_row(f"during {phase.name}", samples, phase.started, phase.ended))
    result: dict[str, Any] = {
        "size": size,
        "idle_rss_kib": idle_rss,
        "phases": {
            p.name: {
                "mb_per_s": round(p.mb_per_s, 1),
                "rss_max_kib": max(p.rss_kib or [0]),
                "server_cpu_s": round(p.cpu_s, 2),
            }
            for p in phases
        },
    }
    if loaded is not None:
        result["chat_load"] = loaded
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.files", description=__doc__)
    parser.add_argument("--size", type=parse_size, default=1 << 30, help="file size (K/M/G)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--idle", type=float, default=2.0, help="seconds of idle pings first")
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: temp)")
    parser.add_argument(
        "--chat-load",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="then run scenario c for SECONDS alone and during downloads (default 0: off)",
    )
    parser.add_argument("--ping", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ping is not None:
        ping_main(args.ping, 0.01)
        return
    print(f"Python {sys.version.split()[0]}; {os.cpu_count()} CPUs; SHA-256 ", end="")
    block = os.urandom(64 * MIB)
    started = time.perf_counter()
    hashlib.sha256(block).hexdigest()
    print(f"{64 * MIB / (time.perf_counter() - started) / 1e6:.0f} MB/s on one core")
    with tempfile.TemporaryDirectory(prefix="bench-files-", dir=args.dir) as tmp:
        for repeat in range(args.repeat):
            print(f"\n== run {repeat + 1} of {args.repeat}")
            result = run(args.size, args.idle, Path(tmp), args.chat_load)
            print(json.dumps(result))


if __name__ == "__main__":
    main()
