"""Accounts in a real server process: restarts, kill -9, and `chat-server accounts` beside it."""

from __future__ import annotations

from pathlib import Path

from tests.support import ServerProcess, open_client, run_command

PASSWORD = "correct horse"


async def test_accounts_dms_and_markers_survive_kill_9_and_the_shell_command_works_beside(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "h.db")
    server = await ServerProcess.start("--db", db, "--rate", "0", "--hash-memory", "1024")
    try:
        alice = await open_client(server.port)
        await alice.request({"type": "hello", "nick": "alice"})
        assert (await alice.request({"type": "register", "password": PASSWORD}))["type"] == "ack"
        await alice.request({"type": "join", "room": "lobby"})
        await alice.request({"type": "mark_read", "room": "lobby", "seq": 0})
        bob = await open_client(server.port)
        await bob.request({"type": "hello", "nick": "bob"})
        await bob.request({"type": "register", "password": PASSWORD})
        await bob.send({"type": "quit"})
        await bob.expect("bye")
        ack = await alice.request({"type": "dm", "to": "bob", "text": "stored"})
        assert ack["type"] == "ack"
        # the shell command, while the server runs
        code, out, err = await run_command("accounts", "list", "--db", db)
        assert (code, out) == (0, "alice\nbob\n"), err
        code, out, err = await run_command(
            "accounts", "reset-password", "bob", "--db", db, stdin=b"battery staple\n"
        )
        assert code == 0, err
        assert "battery staple" not in out + err
        await alice.close()
        await bob.close()
    finally:
        await server.kill()  # SIGKILL

    restarted = await ServerProcess.start("--db", db)
    try:
        guest = await open_client(restarted.port)
        assert (await guest.request({"type": "hello", "nick": "alice"}))["code"] == "auth_required"
        bob = await open_client(restarted.port)
        old = await bob.request({"type": "hello", "nick": "bob", "account_password": PASSWORD})
        assert old["code"] == "auth_failed"
        welcome = await bob.request(
            {"type": "hello", "nick": "bob", "account_password": "battery staple"}
        )
        assert welcome["account"] is True
        dm = await bob.expect("dm")
        assert (dm["text"], dm["seq"]) == ("stored", 1)
        code, out, err = await run_command("accounts", "delete", "alice", "--db", db)
        assert code == 0, err
        back = await guest.request({"type": "hello", "nick": "alice"})
        assert back["type"] == "welcome"  # the server read the deletion at this login
        assert all("battery staple" not in line for line in restarted.log)
        await guest.close()
        await bob.close()
    finally:
        await restarted.kill()
    code, out, err = await run_command("accounts", "delete", "nobody", "--db", db)
    assert code == 1 and "not an account" in err
    code, _, err = await run_command("accounts", "reset-password", "bob", "--db", db, stdin=b"x\n")
    assert code == 1 and "password refused" in err
