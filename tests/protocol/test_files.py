"""The `upload` line's rules, and how a shared file's size reads."""

from __future__ import annotations

import json
from typing import Any

import pytest

from protocol import ErrorCode, ProtocolError, Upload, decode_client_line, format_size

SHA = "ab" * 32


def upload_line(**fields: Any) -> bytes:
    base: dict[str, Any] = {"type": "upload", "room": "lobby", "name": "a.txt", "size": 1}
    return json.dumps({**base, "sha256": SHA, "id": "u", **fields}).encode()


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("", ErrorCode.INVALID_TEXT),
        ("x" * 256, ErrorCode.INVALID_TEXT),
        ("two\nlines", ErrorCode.INVALID_TEXT),
        ("tab\there", ErrorCode.INVALID_TEXT),
        ("esc\x1b[31m", ErrorCode.INVALID_TEXT),
        ("dir/file", ErrorCode.INVALID_MESSAGE),
        ("..\\up", ErrorCode.INVALID_MESSAGE),
        ("back\\slash", ErrorCode.INVALID_MESSAGE),
        (".hidden", ErrorCode.INVALID_MESSAGE),
        ("..", ErrorCode.INVALID_MESSAGE),
    ],
)
def test_bad_file_names_are_refused_with_their_code(name: str, code: ErrorCode) -> None:
    with pytest.raises(ProtocolError) as refused:
        decode_client_line(upload_line(name=name))
    assert refused.value.code == code
    assert refused.value.re == "u"
    assert "name" in refused.value.message


@pytest.mark.parametrize(
    "name", ["x" * 255, "report (final).pdf", "ünïcødé 你好 🎉.txt", "a.", "-rf", "CON"]
)
def test_good_file_names_pass_as_they_are(name: str) -> None:
    message = decode_client_line(upload_line(name=name))
    assert isinstance(message, Upload) and message.name == name


@pytest.mark.parametrize(
    "fields",
    [
        {"size": 0},
        {"size": "5"},
        {"size": 1.5},
        {"sha256": "ab" * 31},
        {"sha256": "zz" * 32},
        {"room": None},
        {"to": "bob"},
    ],
)
def test_shape_errors_are_invalid_message(fields: dict[str, Any]) -> None:
    line = json.loads(upload_line(**fields))
    if line.get("room") is None:
        del line["room"]
    with pytest.raises(ProtocolError) as refused:
        decode_client_line(json.dumps(line).encode())
    assert refused.value.code == ErrorCode.INVALID_MESSAGE


def test_sha256_is_read_as_lower_case() -> None:
    message = decode_client_line(upload_line(sha256=SHA.upper(), room=None, to="bob"))
    assert isinstance(message, Upload)
    assert message.sha256 == SHA and message.to == "bob" and message.room is None


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (1, "1 B"),
        (999, "999 B"),
        (1000, "1.0 kB"),
        (2_100_000, "2.1 MB"),
        (99_940_000, "99.9 MB"),
        (104_857_600, "105 MB"),
        (1 << 30, "1.1 GB"),
        (10**15, "1000 TB"),
    ],
)
def test_sizes_read_in_decimal_units(size: int, text: str) -> None:
    assert format_size(size) == text
