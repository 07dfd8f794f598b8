"""docs/PROTOCOL.md names every message type and error code the code knows."""

from __future__ import annotations

import re
from pathlib import Path

from protocol import ErrorCode
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
