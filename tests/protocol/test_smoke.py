from __future__ import annotations

import protocol


def test_say_round_trips() -> None:
    line = protocol.encode(protocol.Say(room="lobby", text="hi", id="1"))
    assert line.endswith(b"\n")
    assert protocol.decode_client_line(line[:-1]) == protocol.Say(room="lobby", text="hi", id="1")
