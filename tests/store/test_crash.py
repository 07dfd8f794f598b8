"""A real server process killed with SIGKILL keeps every message anyone saw or had acked."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.support import LineClient, ServerProcess, registered, run_command


async def drain_until_closed(client: LineClient) -> None:
    try:
        while True:
            await client.recv()
    except (ConnectionError, TimeoutError, json.JSONDecodeError):
        return


async def test_kill_9_loses_nothing_acknowledged_or_seen(tmp_path: Path) -> None:
    db = str(tmp_path / "h.db")
    server = await ServerProcess.start("--db", db, "--rate", "0")
    alice = await registered(server.port, "alice", "lobby")
    bob = await registered(server.port, "bob", "lobby")
    for i in range(400):  # pipelined: many are in flight when the kill lands
        await alice.send({"type": "say", "room": "lobby", "text": f"m{i}", "id": f"a{i}"})
    acked: dict[int, str] = {}
    while len(acked) < 100:
        reply = await alice.recv()
        if reply["type"] == "ack":
            acked[reply["seq"]] = "m" + reply["re"][1:]
    await server.kill()
    await drain_until_closed(alice)
    await drain_until_closed(bob)
    await alice.close()
    await bob.close()
    for line in alice.seen:
        if line["type"] == "ack":
            acked[line["seq"]] = "m" + line["re"][1:]
    seen = {m["seq"]: m["text"] for m in [*alice.seen, *bob.seen] if m["type"] == "message"}

    code, out, err = await run_command("history", "lobby", "--limit", "1000", "--db", db)
    assert code == 0, err
    stored = {m["seq"]: m["text"] for m in map(json.loads, out.splitlines())}
    assert set(stored) == set(range(1, len(stored) + 1)), "seq has a gap"
    assert len(stored) >= len(acked) >= 100
    for seq, text in [*acked.items(), *seen.items()]:
        assert stored.get(seq) == text

    restarted = await ServerProcess.start("--db", db)
    try:
        carol = await registered(restarted.port, "carol", "lobby")
        ack = await carol.request({"type": "say", "room": "lobby", "text": "after"})
        assert ack["seq"] == len(stored) + 1
        await carol.close()
    finally:
        await restarted.kill()


async def test_history_command_prints_json_lines(tmp_path: Path) -> None:
    db = str(tmp_path / "h.db")
    server = await ServerProcess.start("--db", db)
    try:
        alice = await registered(server.port, "alice", "dev")
        for text in ["one", "two", "three"]:
            await alice.request({"type": "say", "room": "dev", "text": text})
        await alice.close()
        # Read-only, so it works while the server holds the database.
        code, out, _ = await run_command("history", "#dev", "--limit", "2", "--db", db)
        assert code == 0
        lines = [json.loads(line) for line in out.splitlines()]
        assert [(m["type"], m["seq"], m["from"], m["text"]) for m in lines] == [
            ("message", 2, "alice", "two"),
            ("message", 3, "alice", "three"),
        ]
        code, out, err = await run_command("history", "nosuch", "--db", db)
        assert (code, out) == (1, "")
        assert "there is no room #nosuch" in err
    finally:
        server.process.terminate()
        assert await server.wait() == 0


async def test_history_command_without_database(tmp_path: Path) -> None:
    code, out, err = await run_command("history", "lobby", "--db", str(tmp_path / "none.db"))
    assert (code, out) == (1, "")
    assert "no history database" in err


async def test_corrupt_database_is_a_one_line_error_at_start_up(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    db.write_bytes(b"\x00garbage" * 1000)
    code, _, err = await run_command("--port", "0", "--db", str(db))
    assert code != 0
    assert "not an SQLite database" in err
    assert "Traceback" not in err


async def test_sigterm_flushes_and_exits_zero_with_sqlite(tmp_path: Path) -> None:
    db = str(tmp_path / "h.db")
    server = await ServerProcess.start("--db", db)
    alice = await registered(server.port, "alice", "lobby")
    await alice.request({"type": "say", "room": "lobby", "text": "kept"})
    server.process.terminate()
    bye = await alice.expect("bye")
    assert bye["reason"] == "shutdown"
    assert await server.wait() == 0
    await alice.close()
    code, out, _ = await run_command("history", "lobby", "--db", db)
    assert code == 0 and json.loads(out)["text"] == "kept"
    await asyncio.sleep(0)


async def test_kill_9_leaves_revs_without_gaps_and_they_go_on(tmp_path: Path) -> None:
    db = str(tmp_path / "r.db")
    server = await ServerProcess.start("--db", db, "--rate", "0")
    alice = await registered(server.port, "alice", "lobby")
    await alice.request({"type": "say", "room": "lobby", "text": "first"})
    for i in range(300):  # pipelined changes and messages: many in flight when the kill lands
        await alice.send({"type": "say", "room": "lobby", "text": f"m{i}"})
        await alice.send({"type": "edit", "room": "lobby", "seq": 1, "text": f"v{i}"})
        await alice.send({"type": "react", "room": "lobby", "seq": 1, "emoji": f":e{i % 2}:"})
    while sum(1 for m in alice.seen if m["type"] == "message") < 50:
        await alice.recv()
    await server.kill()
    await drain_until_closed(alice)
    await alice.close()

    restarted = await ServerProcess.start("--db", db)
    try:
        carol = await registered(restarted.port, "carol", "lobby")
        page = await carol.request({"type": "history", "room": "lobby", "changed_since": 0})
        revs = sorted(m["rev"] for m in page["messages"])
        top = revs[-1]
        ack = await carol.request({"type": "say", "room": "lobby", "text": "after"})
        message = [m for m in carol.seen if m["type"] == "message" and m["seq"] == ack["seq"]]
        assert message[0]["rev"] == top + 1  # the counter goes on from what was stored
        assert len(set(revs)) == len(revs)
        assert top >= 50
        await carol.close()
    finally:
        await restarted.kill()
