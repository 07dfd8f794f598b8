"""The line framer: whole, byte by byte, arbitrary chunks, and the hard length limit."""

from __future__ import annotations

import random
from collections.abc import Iterable

import pytest

from protocol import ErrorCode, LineFramer, LineTooLong
from protocol.limits import MAX_LINE_BYTES

TOO_LONG = "<line too long>"


def feed_all(framer: LineFramer, chunks: Iterable[bytes]) -> list[bytes | str]:
    """Feed every chunk; return the lines, with each overflow marker shown as TOO_LONG."""
    out: list[bytes | str] = []
    for chunk in chunks:
        for item in framer.feed(chunk):
            if isinstance(item, LineTooLong):
                assert item.code is ErrorCode.LINE_TOO_LONG
                assert item.limit == framer.max_line
                out.append(TOO_LONG)
            else:
                out.append(item)
        assert framer.buffered <= framer.max_line + 1
    return out


def byte_by_byte(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def random_chunks(data: bytes, rng: random.Random) -> list[bytes]:
    chunks = []
    at = 0
    while at < len(data):
        size = rng.randint(1, 9)
        chunks.append(data[at : at + size])
        at += size
    return chunks


STREAM = b'{"type":"hello","nick":"alice"}\n{"type":"join","room":"lobby"}\r\nhi there\n'
LINES: list[bytes | str] = [
    b'{"type":"hello","nick":"alice"}',
    b'{"type":"join","room":"lobby"}',
    b"hi there",
]


def test_whole_stream_in_one_chunk() -> None:
    assert feed_all(LineFramer(), [STREAM]) == LINES


def test_byte_by_byte() -> None:
    assert feed_all(LineFramer(), byte_by_byte(STREAM)) == LINES


@pytest.mark.parametrize("seed", range(20))
def test_random_chunk_boundaries(seed: int) -> None:
    chunks = random_chunks(STREAM * 3, random.Random(seed))
    assert feed_all(LineFramer(), chunks) == LINES * 3


def test_nothing_comes_out_before_the_newline() -> None:
    framer = LineFramer()
    assert framer.feed(b'{"type":"rooms"}') == []
    assert framer.feed(b"\n") == [b'{"type":"rooms"}']


def test_crlf_is_tolerated_even_when_split() -> None:
    assert feed_all(LineFramer(), [b"a\r\nb\r", b"\n", b"c\r", b"\nd\n"]) == [
        b"a",
        b"b",
        b"c",
        b"d",
    ]


def test_only_the_cr_right_before_the_newline_is_removed() -> None:
    assert feed_all(LineFramer(), [b"a\rb\r\r\n"]) == [b"a\rb\r"]


def test_blank_and_whitespace_lines_are_ignored() -> None:
    data = b"\n\n  \n\t\r\n\r\n \x0b\x0c \nx\n   \n y \n"
    assert feed_all(LineFramer(), [data]) == [b"x", b" y "]
    assert feed_all(LineFramer(), byte_by_byte(data)) == [b"x", b" y "]


def test_default_limit_is_the_contract_limit() -> None:
    assert LineFramer().max_line == MAX_LINE_BYTES == 65_536


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_line"):
        LineFramer(max_line=0)


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
@pytest.mark.parametrize("split", ["whole", "bytes"])
def test_line_of_exactly_max_line_bytes_passes(ending: bytes, split: str) -> None:
    data = b"x" * 16 + ending
    chunks = [data] if split == "whole" else byte_by_byte(data)
    assert feed_all(LineFramer(max_line=16), chunks) == [b"x" * 16]


def test_line_of_exactly_the_default_limit_passes() -> None:
    line = b"y" * MAX_LINE_BYTES
    assert feed_all(LineFramer(), [line + b"\r\n"]) == [line]
    assert feed_all(LineFramer(), [line + b"y\n"]) == [TOO_LONG]


@pytest.mark.parametrize("extra", [1, 2, 3, 100])
@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
@pytest.mark.parametrize("split", ["whole", "bytes", "random"])
def test_longer_line_is_reported_once_and_the_next_line_survives(
    extra: int, ending: bytes, split: str
) -> None:
    data = b"before\n" + b"z" * (16 + extra) + ending + b"after\n"
    if split == "whole":
        chunks = [data]
    elif split == "bytes":
        chunks = byte_by_byte(data)
    else:
        chunks = random_chunks(data, random.Random(extra))
    assert feed_all(LineFramer(max_line=16), chunks) == [b"before", TOO_LONG, b"after"]


def test_overlong_line_in_the_middle_of_a_big_chunk_keeps_order() -> None:
    data = b"a\n" + b"z" * 40 + b"\nb\n" + b"z" * 40 + b"\nc\n"
    assert feed_all(LineFramer(max_line=16), [data]) == [b"a", TOO_LONG, b"b", TOO_LONG, b"c"]


def test_overlong_whitespace_line_is_still_reported() -> None:
    assert feed_all(LineFramer(max_line=4), [b"      \nok\n"]) == [TOO_LONG, b"ok"]


def test_endless_line_never_grows_the_buffer_past_the_limit() -> None:
    framer = LineFramer(max_line=100)
    markers = 0
    for _ in range(2_000):
        for item in framer.feed(b"q" * 7):
            assert isinstance(item, LineTooLong)
            markers += 1
        assert framer.buffered <= 101
    assert markers == 1
    assert feed_all(framer, [b"still the same line\nnext\n"]) == [b"next"]
    assert framer.buffered == 0


def test_endless_line_in_one_huge_chunk() -> None:
    framer = LineFramer(max_line=100)
    assert feed_all(framer, [b"q" * 1_000_000]) == [TOO_LONG]
    assert framer.buffered == 0
    assert feed_all(framer, [b"q" * 1_000, b"q\nfine\n"]) == [b"fine"]


def test_trailing_garbage_without_newline_stays_buffered() -> None:
    framer = LineFramer()
    assert framer.feed(b"one\ntwo\npartial") == [b"one", b"two"]
    assert framer.buffered == len(b"partial")
    assert framer.feed(b" line") == []
    assert framer.buffered == len(b"partial line")
    assert framer.feed(b"\n") == [b"partial line"]
    assert framer.buffered == 0


def test_trailing_partial_line_byte_by_byte() -> None:
    framer = LineFramer(max_line=16)
    assert feed_all(framer, byte_by_byte(b"done\n\x00\xffjunk")) == [b"done"]
    assert framer.buffered == 6


def test_lines_are_returned_as_bytes_unchanged() -> None:
    raw = "grüße \u2028 \x00".encode()
    out = LineFramer().feed(raw + b"\n")
    assert out == [raw]
    assert type(out[0]) is bytes
