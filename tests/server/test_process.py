"""`python -m chat_server` as a real process: signals, exit codes and command-line errors."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
from pathlib import Path

import pytest

from tests.server.helpers import Clients
from tests.support import TIMEOUT, ServerProcess, open_client, run_command

FLAGS = [
    "--host",
    "--port",
    "--db",
    "--fsync",
    "--name",
    "--motd",
    "--password",
    "--rate",
    "--burst",
    "--max-line",
    "--max-text",
    "--send-buffer",
    "--slow-timeout",
    "--byte-rate",
    "--address-byte-rate",
    "--ping-interval",
    "--idle-timeout",
    "--register-timeout",
    "--max-per-ip",
    "--max-rooms",
    "--max-rooms-per-client",
    "--room-expiry",
    "--tail-bytes",
    "--nick-grace",
    "--data-dir",
    "--files-port",
    "--no-files",
    "--max-file",
    "--files-quota",
    "--upload-rate",
    "--files-host",
    "--log-level",
    "--tls-port",
    "--no-tls",
    "--tls-only",
    "--cert",
    "--key",
    "--data-dir",
    "--no-announce",
    "--announce-interfaces",
]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_signal_says_bye_shutdown_and_exits_zero(
    clients: Clients, signum: signal.Signals
) -> None:
    server = await ServerProcess.start("--db", ":memory:", "--name", "proc-test")
    try:
        alice = await clients.connect(server.port)
        hello = await alice.recv()
        assert hello["server"] == "proc-test"
        await alice.request({"type": "hello", "nick": "alice"})
        await alice.request({"type": "join", "room": "lobby"})
        text_user = await clients.open(server.port)
        await text_user.send_raw(b"bob\n")
        await alice.expect("joined", nick="bob")
        for number in range(50):  # output still in flight when the signal lands
            await alice.send({"type": "say", "room": "lobby", "text": f"m{number}"})
        await alice.expect("message", seq=1)
        server.process.send_signal(signum)

        bye = await alice.expect("bye")
        assert bye == {"type": "bye", "reason": "shutdown"}
        assert await alice.reader.read() == b""
        seqs = [m["seq"] for m in alice.seen if m["type"] == "message"]
        assert seqs == list(range(1, len(seqs) + 1))
        lines = []
        while line := await asyncio.wait_for(text_user.reader.readline(), TIMEOUT):
            lines.append(line.decode())
        assert lines[-1] == "* bye (shutdown)\n"
        assert await server.wait() == 0
    finally:
        await server.kill()
    log = "".join(server.log)
    assert "Traceback" not in log, log


async def test_bad_flag_values_are_one_line_errors() -> None:
    cases = [
        (["--port", "abc"], "port"),
        (["--port", "70000"], "port"),
        (["--rate", "-1"], "rate"),
        (["--burst", "0"], "burst"),
        (["--max-line", "10"], "line"),
        (["--max-text", "many"], "text"),
        (["--send-buffer", "-5"], "send"),
        (["--ping-interval", "soon"], "interval"),
        (["--idle-timeout", "0"], "timeout"),
        (["--max-per-ip", "-1"], "connection"),
        (["--log-level", "loud"], "log-level"),
        (["--no-such-flag"], "no-such-flag"),
    ]
    # Two at a time: a dozen interpreters starting at once on a busy 2-core machine can
    # take longer than a command's timeout, and the test is about what each one prints.
    slots = asyncio.Semaphore(2)

    async def run(args: list[str]) -> tuple[int, str, str]:
        async with slots:
            return await run_command(*args)

    results = await asyncio.gather(*(run(args) for args, _ in cases))
    for (args, named), (code, out, err) in zip(cases, results, strict=True):
        assert code == 2, (args, code, err)
        assert out == "", args
        assert "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1, (args, err)
        assert err.startswith("chat-server: error:") and named in err, (args, err)


async def test_default_history_file_lives_under_home(tmp_path: Path) -> None:
    server = await ServerProcess.start(home=str(tmp_path))  # no --db: the default file
    try:
        alice = await open_client(server.port)
        await alice.request({"type": "hello", "nick": "alice"})
        await alice.close()
    finally:
        await server.kill()
    log = "".join(server.log)
    found = re.search(r"history: (\S+)", log)
    assert found is not None, log
    assert Path(found.group(1)).is_relative_to(tmp_path), log
    assert await asyncio.to_thread(Path(found.group(1)).exists)


async def test_port_in_use_is_a_clear_message() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = await run_command("--host", "127.0.0.1", "--port", str(port))
    assert code != 0 and out == ""
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert f"port {port} is already in use" in last, err


async def test_help_mentions_every_flag() -> None:
    code, out, err = await run_command("--help")
    assert code == 0, err
    for flag in FLAGS:
        assert flag in out, flag
    options = out.split("options:", 1)[1]
    entries = re.split(r"\n  (?=-)", options)
    assert len(entries) > len(FLAGS)
    for entry in entries:  # each default said once, and none shown as None or False
        assert entry.count("default") <= 1, entry
        assert "(default: None)" not in entry and "(default: False)" not in entry, entry
    code, out, _ = await run_command("history", "--help")
    assert code == 0 and "--limit" in out and "--db" in out


async def test_fsync_flag_is_logged_and_messages_flow(clients: Clients, tmp_path: Path) -> None:
    server = await ServerProcess.start("--db", str(tmp_path / "h.db"), "--fsync")
    try:
        alice = await clients.connect(server.port)
        await alice.recv()
        await alice.request({"type": "hello", "nick": "alice"})
        await alice.request({"type": "join", "room": "lobby"})
        ack = await alice.request({"type": "say", "room": "lobby", "text": "on disk"})
        assert ack["type"] == "ack" and ack["seq"] == 1
    finally:
        await server.kill()
    assert "(fsync on every commit)" in "".join(server.log)
