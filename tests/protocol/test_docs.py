"""docs/PROTOCOL.md names every message type and error code the code knows."""

from __future__ import annotations

import re
from pathlib import Path

from protocol import ErrorCode, ProtocolError, decode_client_line, decode_server_line
from tests.protocol.wire_samples import CLIENT_TYPES, SERVER_TYPES

DOC = Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md"


def inline_code(markdown: str) -> set[str]:
    """The texts of the `inline code` spans, outside fenced code blocks."""
    prose = re.sub(r"^```.*?^```", "", markdown, flags=re.MULTILINE | re.DOTALL)
    return set(re.findall(r"`([^`\n]+)`", prose))


def test_inline_code_parser() -> None:
    sample = "a `join` b\n```\n`hidden`\n```\n`say` and ``\n"
    assert inline_code(sample) == {"join", "say"}


def test_every_message_type_is_documented() -> None:
    spans = inline_code(DOC.read_text(encoding="utf-8"))
    missing = sorted(
        {f"client {t}" for t in CLIENT_TYPES if t not in spans}
        | {f"server {t}" for t in SERVER_TYPES if t not in spans}
    )
    assert not missing, f"docs/PROTOCOL.md does not name these types in backticks: {missing}"


def test_every_error_code_is_documented() -> None:
    spans = inline_code(DOC.read_text(encoding="utf-8"))
    missing = sorted(code.value for code in ErrorCode if code.value not in spans)
    assert not missing, f"docs/PROTOCOL.md does not name these error codes in backticks: {missing}"


# Example lines the doc shows on purpose as refused.
REFUSED_EXAMPLES = {b'{"type":"say","room":"lobby","text":"x","action":1,"id":"2"}'}


def example_lines(markdown: str) -> list[bytes]:
    """JSON lines of the fenced examples; a leading `> ` (what the user types) is dropped."""
    lines = []
    for block in re.findall(r"^```[^\n]*\n(.*?)^```", markdown, flags=re.MULTILINE | re.DOTALL):
        for line in block.splitlines():
            line = line.removeprefix("> ")
            if line.startswith("{"):
                lines.append(line.encode())
    return lines


def test_every_json_example_is_a_valid_message() -> None:
    lines = example_lines(DOC.read_text(encoding="utf-8"))
    assert len(lines) > 30
    wrong = []
    for line in lines:
        readable = False
        for decode in (decode_client_line, decode_server_line):
            try:
                decode(line)
            except ProtocolError:
                continue
            readable = True
        if readable == (line in REFUSED_EXAMPLES):
            wrong.append(line.decode())
    assert not wrong, f"docs/PROTOCOL.md examples that do not decode as shown: {wrong}"
