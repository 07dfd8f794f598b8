"""When to tell a conversation that one is typing: `active`, `paused`, `done`.

Sans-I/O: the caller says what happened to the input and passes the time; the
notifier answers with the notices to send. The contract's rules, and the reading
of when `paused` goes out:

- `active` when text is typed, at most once every `active_interval` (3 s) while
  the typing goes on;
- `paused` once nothing was typed for `pause_after` seconds while text is still
  in the input (once per pause: a receiver shows it for 30 s, or until news);
- `done` when the input is cleared, sent or turned into a command, and on a
  move to another conversation (for the one left).

So "alice is typing…" goes away at the other end within `pause_after` of her
last key (rather than after the receivers' 6 s), and at once when she clears it.
`ChatClient.composing` drives one of these with a timer for the `paused`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ACTIVE_INTERVAL", "PAUSE_AFTER", "Notice", "Target", "TypingNotifier"]

ACTIVE_INTERVAL = 3.0  # seconds: at most one `active` this often (the contract)
PAUSE_AFTER = 3.0  # seconds without a key, with text left in the input: `paused`


@dataclass(frozen=True, slots=True)
class Target:
    """Where the typing goes: a room, or (`dm`) a nick's conversation."""

    name: str
    dm: bool = False


@dataclass(frozen=True, slots=True)
class Notice:
    """One `typing` to send."""

    target: Target
    state: str  # "active", "paused" or "done"


class TypingNotifier:
    """The typing state told to one conversation at a time."""

    def __init__(
        self, active_interval: float = ACTIVE_INTERVAL, pause_after: float = PAUSE_AFTER
    ) -> None:
        self.active_interval = active_interval
        self.pause_after = pause_after
        self.target: Target | None = None  # where others were told we type (None: nowhere)
        self.state: str | None = None  # what they were told last: "active" or "paused"
        self._active_at = 0.0  # when the last `active` went out
        self._typed_at = 0.0  # when the input last changed

    def typed(self, target: Target, now: float) -> list[Notice]:
        """The input for `target` changed and still holds text."""
        notices = self.cleared() if self.target not in (None, target) else []
        self.target, self._typed_at = target, now
        if self.state != "active" or now - self._active_at >= self.active_interval:
            self.state, self._active_at = "active", now
            notices.append(Notice(target, "active"))
        return notices

    def cleared(self) -> list[Notice]:
        """The input is empty, was sent, or is a command: `done`, if anything was said."""
        target = self.target
        self.forget()
        return [] if target is None else [Notice(target, "done")]

    def due(self, now: float) -> list[Notice]:
        """What the passing of time calls for: `paused` once typing stopped."""
        deadline = self.deadline()
        if deadline is None or now < deadline or self.target is None:
            return []
        self.state = "paused"
        return [Notice(self.target, "paused")]

    def deadline(self) -> float | None:
        """When `due` will have something to send (None: not until the input changes)."""
        if self.state != "active":
            return None
        return self._typed_at + self.pause_after

    def forget(self) -> None:
        """Start over without telling anyone (say, the connection was lost)."""
        self.target, self.state = None, None
        self._active_at = self._typed_at = 0.0
