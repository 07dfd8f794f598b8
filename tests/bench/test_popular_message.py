"""`python -m bench.popular_message`: both ways read the message back whole."""

from __future__ import annotations

from pathlib import Path

from bench import popular_message


async def test_both_ways_read_back_every_reaction(tmp_path: Path) -> None:
    # react_all raises unless every change committed and the message reads back with
    # every reaction, in order.
    for whole in (False, True):
        wall, _cpu = await popular_message.react_all(tmp_path / f"{whole}.db", 50, whole)
        assert wall > 0
