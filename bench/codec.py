"""Micro-benchmark of the protocol codec and framer: cost per message, in microseconds.

Run it with `python -m bench.codec` (options: `--repeats N`, `--seconds S`). Each case
runs in batches timed with `time.perf_counter_ns`; the batch size is picked so that one
batch takes about `--seconds`, and the median batch over the repeats is reported.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import pydantic
import pydantic_core

from protocol import (
    ChatMessage,
    LineFramer,
    Say,
    decode_client_line,
    decode_server_line,
    encode,
)

__all__ = ["Case", "Result", "cases", "main", "measure"]

TS = "2026-11-23T15:04:05.123Z"
CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class Case:
    """One thing to time: `run()` does `per_call` messages' worth of work."""

    name: str
    run: Callable[[], object]
    per_call: int = 1


@dataclass(frozen=True)
class Result:
    name: str
    median_us: float
    best_us: float
    batch: int


def _framer_case() -> Case:
    line = encode(Say(room="lobby", text="hello everyone, how is it going today?", id="42"))
    count = CHUNK_BYTES // len(line)
    chunk = line * count
    framer = LineFramer()

    def feed() -> object:
        lines = framer.feed(chunk)
        assert len(lines) == count
        return lines

    return Case(f"LineFramer.feed, 64 KiB chunk ({count} lines), per line", feed, count)


def cases() -> list[Case]:
    """Every benchmark case, with its input built once up front."""
    message = ChatMessage(
        room="lobby", seq=12345, sender="alice", text="hello everyone, how is it going?", ts=TS
    )
    say_line = encode(Say(room="lobby", text="hello everyone, how is it going?", id="17"))[:-1]
    long_line = encode(Say(room="lobby", text=("lorem ipsum " * 400)[:3900]))[:-1]
    message_line = encode(message)[:-1]
    for line in (say_line, long_line):
        decode_client_line(line)  # fail early if the input is not valid
    decode_server_line(message_line)
    return [
        Case("encode(ChatMessage)", lambda: encode(message)),
        Case("decode_client_line(say, 33 chars)", lambda: decode_client_line(say_line)),
        Case("decode_client_line(say, 3,900 chars)", lambda: decode_client_line(long_line)),
        _framer_case(),
        Case("decode_server_line(message)", lambda: decode_server_line(message_line)),
    ]


def _time_batch(run: Callable[[], object], calls: int) -> int:
    start = time.perf_counter_ns()
    for _ in range(calls):
        run()
    return time.perf_counter_ns() - start


def measure(case: Case, repeats: int, seconds: float) -> Result:
    """Time `case` in `repeats` batches of about `seconds` each; return µs per message."""
    calls = 1
    while (elapsed := _time_batch(case.run, calls)) < seconds * 1e9 / 10:
        calls *= 10
    calls = max(1, round(calls * seconds * 1e9 / max(elapsed, 1)))
    samples = [
        _time_batch(case.run, calls) / (calls * case.per_call) / 1000 for _ in range(repeats)
    ]
    return Result(case.name, statistics.median(samples), min(samples), calls)


def _versions() -> str:
    return (
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"pydantic {pydantic.VERSION}, pydantic-core {pydantic_core.__version__}, "
        f"{platform.system()} {platform.machine()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.codec", description=__doc__)
    parser.add_argument("--repeats", type=int, default=7, help="batches per case (default 7)")
    parser.add_argument(
        "--seconds", type=float, default=0.1, help="target time of one batch (default 0.1)"
    )
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.seconds <= 0:
        parser.error("--repeats and --seconds must be positive")

    print(_versions())
    print(f"median of {args.repeats} batches, time.perf_counter_ns; µs per message\n")
    results = [measure(case, args.repeats, args.seconds) for case in cases()]
    width = max(len(result.name) for result in results)
    print(f"{'operation':<{width}}  {'median µs':>10}  {'best µs':>8}  {'msg/s':>10}")
    print(f"{'-' * width}  {'-' * 10}  {'-' * 8}  {'-' * 10}")
    for result in results:
        rate = 1e6 / result.median_us if result.median_us else float("inf")
        print(
            f"{result.name:<{width}}  {result.median_us:>10.2f}  {result.best_us:>8.2f}"
            f"  {rate:>10,.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
