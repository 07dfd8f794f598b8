"""`python -m bench.say_path`: every line it feeds must do what it stands for."""

from __future__ import annotations

import time

import pytest

from bench import say_path


@pytest.mark.parametrize("uses", [(), ("typing",), ("reply",), ("react",), say_path.USES])
def test_every_line_becomes_what_it_stands_for(uses: tuple[str, ...]) -> None:
    # run() raises unless every say became a message, every reaction a change, and no
    # line was refused; a figure from refused lines would measure the refusal.
    timings = say_path.run(20, 4, 3, 30, 2, time.thread_time, frozenset(uses))
    assert len(timings) == 2 and all(t > 0 for t in timings)


def test_a_refused_reaction_fails_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    # A reaction to a message that does not exist is refused: the run must say so.
    made = say_path._featured_lines
    monkeypatch.setattr(
        say_path,
        "_featured_lines",
        lambda sender, first, count, latest, uses: made(sender, first, count, latest + 10**6, uses),
    )
    with pytest.raises(RuntimeError, match=r"held an error"):
        say_path.run(20, 4, 3, 30, 1, time.thread_time, frozenset({"react"}))


def test_unknown_uses_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        say_path.main(["--uses", "typing,teleport"])
    assert "teleport" in capsys.readouterr().err
