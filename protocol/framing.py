"""Incremental newline framing with a hard line-length limit.

`LineFramer.feed(data)` takes bytes as they arrive and returns the complete
lines found so far. It never holds more than the limit (plus one byte for a
trailing `\\r`) of an unfinished line: a longer line is dropped at once, a
`LineTooLong` marker is returned in its place, and the rest of that line is
skipped up to its newline. Blank lines are dropped; a `\\r` before `\\n` is
removed.
"""

from __future__ import annotations

from .errors import LineTooLong
from .limits import MAX_LINE_BYTES

__all__ = ["LineFramer"]

_BLANK = b" \t\r\x0b\x0c"


class LineFramer:
    """Splits a byte stream into lines of at most `max_line` bytes.

    Args:
        max_line: the largest accepted line, in bytes, without its `\\r\\n`.
    """

    __slots__ = ("_buffer", "_discarding", "max_line")

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        if max_line < 1:
            raise ValueError("max_line must be positive")
        self.max_line = max_line
        self._buffer = bytearray()
        self._discarding = False

    @property
    def buffered(self) -> int:
        """Bytes of an unfinished line held now."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes | LineTooLong]:
        """Add received bytes; return the complete lines (and overflow markers) in order."""
        out: list[bytes | LineTooLong] = []
        if self._discarding:
            newline = data.find(b"\n")
            if newline < 0:
                return out
            self._discarding = False
            data = data[newline + 1 :]
        buffer = self._buffer
        if buffer:
            buffer += data
            if b"\n" not in data:  # still unfinished: no copy, no rescan of the buffer
                return self._check_overflow(out)
            data = bytes(buffer)
            buffer.clear()
        # One split in C beats a find loop: most reads end on a line boundary.
        lines = data.split(b"\n")
        rest = lines.pop()
        max_line = self.max_line
        for line in lines:
            if line[-1:] == b"\r":
                line = line[:-1]
            if len(line) > max_line:
                out.append(LineTooLong(max_line))
            elif line.strip(_BLANK):
                out.append(line)
        buffer += rest
        return self._check_overflow(out)

    def _check_overflow(self, out: list[bytes | LineTooLong]) -> list[bytes | LineTooLong]:
        if len(self._buffer) > self.max_line + 1:  # +1: room for a trailing \r
            self._buffer.clear()
            self._discarding = True
            out.append(LineTooLong(self.max_line))
        return out
