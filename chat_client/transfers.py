"""Progress of a file transfer as people read it: done, speed, time left (no I/O, no UI)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from protocol import format_size

__all__ = ["TransferProgress"]

WINDOW = 3.0  # seconds of samples the speed is averaged over


@dataclass
class TransferProgress:
    """Feed it `(bytes done, time)` samples; it says how fast and how long is left.

    The speed is measured over the last `WINDOW` seconds, so a transfer that resumed
    from an offset does not count the bytes it already had as fast ones.
    """

    name: str
    total: int
    done: int = 0
    _samples: deque[tuple[float, int]] = field(default_factory=deque, repr=False)

    def update(self, done: int, now: float) -> None:
        self.done = done
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[1][0] >= WINDOW:
            self._samples.popleft()

    @property
    def finished(self) -> bool:
        return self.done >= self.total

    @property
    def speed(self) -> float | None:
        """Bytes per second over the window; None until two samples are apart in time."""
        if len(self._samples) < 2:
            return None
        (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else None

    @property
    def seconds_left(self) -> float | None:
        speed = self.speed
        if speed is None or speed <= 0:
            return None
        return (self.total - self.done) / speed

    def describe(self) -> str:
        """e.g. `12.3 MB of 50.0 MB · 21.4 MB/s · 2 s left`."""
        parts = [f"{format_size(self.done)} of {format_size(self.total)}"]
        speed = self.speed
        if speed is not None:
            parts.append(f"{format_size(int(speed))}/s")
        left = self.seconds_left
        if left is not None and not self.finished:
            parts.append(f"{_duration(left)} left")
        return " · ".join(parts)


def _duration(seconds: float) -> str:
    whole = max(1, round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
