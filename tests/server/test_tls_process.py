"""`chat-server` with TLS and discovery as a real process: start-up lines, flags, errors."""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import socket
from pathlib import Path

import pytest

from chat_client.discovery import discover
from chat_server.__main__ import _tell_addresses
from chat_server.server import ChatServer
from tests.conftest import StartServer
from tests.server.test_tls_certificate import openssl_fingerprint
from tests.support import ServerProcess, run_command


def _log_value(log: str, pattern: str) -> str:
    found = re.search(pattern, log)
    assert found, log
    return found.group(1)


async def test_start_up_lines_name_every_listener_and_the_fingerprint(tmp_path: Path) -> None:
    server = await ServerProcess.start("--db", ":memory:", "--data-dir", str(tmp_path))
    try:
        await asyncio.sleep(0)
    finally:
        server.process.send_signal(signal.SIGTERM)
        assert await server.wait() == 0
    log = "".join(server.log)
    listening = re.findall(r"listening on (\S+):(\d+) \((plain|tls)\)", log)
    assert [kind for _, _, kind in listening] == ["plain", "tls"]
    assert int(listening[0][1]) == server.port
    fingerprint = _log_value(log, r"TLS certificate fingerprint \(SHA-256\): (\S+)")
    assert fingerprint == openssl_fingerprint(tmp_path / "tls-cert.pem")
    assert "Traceback" not in log


async def test_the_same_fingerprint_after_a_restart(tmp_path: Path) -> None:
    fingerprints = []
    for _ in range(2):
        server = await ServerProcess.start("--db", ":memory:", "--data-dir", str(tmp_path))
        server.process.send_signal(signal.SIGTERM)
        assert await server.wait() == 0
        log = "".join(server.log)
        fingerprints.append(_log_value(log, r"fingerprint \(SHA-256\): (\S+)"))
    assert fingerprints[0] == fingerprints[1]


async def test_tls_only_and_no_tls(tmp_path: Path) -> None:
    only = await ServerProcess.start("--db", ":memory:", "--data-dir", str(tmp_path), "--tls-only")
    only.process.send_signal(signal.SIGTERM)
    assert await only.wait() == 0
    assert re.findall(r"\((plain|tls)\)", "".join(only.log)) == ["tls"]
    off = await ServerProcess.start("--db", ":memory:", "--data-dir", str(tmp_path), "--no-tls")
    off.process.send_signal(signal.SIGTERM)
    assert await off.wait() == 0
    log = "".join(off.log)
    assert re.findall(r"\((plain|tls)\)", log) == ["plain"]
    assert "fingerprint" not in log


async def test_bad_tls_and_discovery_flags_are_one_line_errors() -> None:
    cases = [
        (["--tls-port", "x"], "port"),
        (["--no-tls", "--tls-only"], "--tls-only"),
        (["--cert", "c.pem"], "--key"),
        (["--announce-interfaces", ","], "address"),
    ]
    results = await asyncio.gather(*(run_command(*args) for args, _ in cases))
    for (args, named), (code, out, err) in zip(cases, results, strict=True):
        assert code == 2, (args, code, err)
        assert out == "" and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1, (args, err)
        assert err.startswith("chat-server: error:") and named in err, (args, err)


async def test_tls_port_in_use_is_a_clear_message(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = await run_command(
            *("--host", "127.0.0.1", "--port", "0", "--db", ":memory:"),
            *("--data-dir", str(tmp_path), "--tls-port", str(port)),
        )
    assert code != 0 and out == ""
    assert "Traceback" not in err, err
    assert f"tls port {port} is already in use; pick another with --tls-port" in err


@pytest.mark.parametrize("problem", ["missing", "not pem"])
async def test_unusable_cert_is_one_line(tmp_path: Path, problem: str) -> None:
    cert = tmp_path / "cert.pem"
    if problem == "not pem":
        cert.write_text("nope\n")
    code, _, err = await run_command(
        *("--host", "127.0.0.1", "--port", "0", "--db", ":memory:"),
        *("--cert", str(cert), "--key", str(tmp_path / "key.pem")),
    )
    assert code == 1
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("chat-server: ")
    assert str(cert) in err


async def test_announced_on_loopback_and_withdrawn_at_exit(tmp_path: Path) -> None:
    server = await ServerProcess.start(
        *("--db", ":memory:", "--data-dir", str(tmp_path), "--name", "proc-announce"),
        "--announce-interfaces=127.0.0.1",
    )
    try:
        server_id = (tmp_path / "server-id").read_text().strip()
        found = [s for s in await discover(2.5, ["127.0.0.1"]) if s.server_id == server_id]
        assert len(found) == 1
        assert found[0].name == "proc-announce"
        assert found[0].port == server.port
        assert found[0].fingerprint is not None
    finally:
        server.process.send_signal(signal.SIGTERM)
        assert await server.wait() == 0
    log = "".join(server.log)
    assert "finds this server by itself" in log
    assert "announcement withdrawn" in log
    gone = [s for s in await discover(1.0, ["127.0.0.1"]) if s.server_id == server_id]
    assert gone == []


async def test_lan_lines_tell_what_to_type(
    start_server: StartServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server: ChatServer = await start_server(tls_port=0, data_dir=str(tmp_path))
    with caplog.at_level(logging.INFO, logger="chat_server"):
        _tell_addresses(server, ["192.0.2.10", "198.51.100.4"])
    said = "\n".join(r.getMessage() for r in caplog.records)
    assert f"chat-client 192.0.2.10:{server.port}" in said
    assert f"openssl s_client -quiet -connect 192.0.2.10:{server.tls_port}" in said
    assert f"nc 192.0.2.10 {server.port}" in said
    assert "198.51.100.4" in said


async def test_tls_clients_one_after_another_on_the_real_process(tmp_path: Path) -> None:
    """The process runs uvloop when installed: every handshake must finish there too."""
    from chat_client.tls import client_ssl_context

    server = await ServerProcess.start("--db", ":memory:", "--data-dir", str(tmp_path))
    try:
        for _ in range(100):  # the tls line follows the plain one the start waited for
            if "(tls)" in "".join(server.log):
                break
            await asyncio.sleep(0.05)
        tls_port = int(_log_value("".join(server.log), r"listening on \S+:(\d+) \(tls\)"))
        writers = []
        for number in range(8):
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", tls_port, ssl=client_ssl_context()), 5
            )
            writers.append(writer)
            assert b'"type":"hello"' in await asyncio.wait_for(reader.readline(), 5)
            writer.write(b'{"type":"hello","nick":"u%d","id":"h"}\n' % number)
            assert b'"type":"welcome"' in await asyncio.wait_for(reader.readline(), 5)
        for writer in writers:
            writer.close()
    finally:
        server.process.send_signal(signal.SIGTERM)
        assert await server.wait() == 0
