"""`chat-client --list`: real multicast on loopback, a real subprocess, plain-word failures."""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import sys
from collections.abc import AsyncIterator

import pytest

from chat_client.discovery import DiscoveredServer
from chat_client.server_list import as_json, as_table
from chat_server.discovery import Announcer
from protocol import Announcement, fingerprint_of

FP = fingerprint_of(b"listed")


async def chat_client(*args: str, netns: bool = False) -> tuple[int, str, str]:
    command = [sys.executable, "-m", "chat_client", *args]
    if netns:  # a network namespace of its own: only its own, empty loopback
        unshare, ip = shutil.which("unshare"), shutil.which("ip")
        assert unshare and ip, "the tests need util-linux and iproute2"
        inner = " ".join(f"'{part}'" for part in command)
        command = [unshare, "--net", "sh", "-c", f"{ip} link set lo up && exec {inner}"]
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


# Unique per test run: another run on this host (its own multicast on loopback) may be
# announcing at the same moment, and a browse sees every announcement on the interface.
NAME = f"listed-{secrets.token_hex(3)}"


@pytest.fixture
async def announced() -> AsyncIterator[Announcement]:
    record = Announcement(secrets.token_hex(4), 7777, 7778, FP, True, 5)
    announcer = Announcer(NAME, record, lambda: 5, ["127.0.0.1"])
    await announcer.start()
    try:
        await asyncio.wait_for(announcer.announced.wait(), 5)
        yield record
    finally:
        await announcer.close()


async def test_list_prints_the_announced_server_as_a_table(announced: Announcement) -> None:
    code, out, err = await chat_client("--list", "--interfaces", "127.0.0.1")
    assert code == 0, err
    header, *rows = out.splitlines()
    assert header.split() == ["NAME", "ADDRESS", "USERS", "TLS", "PASSWORD", "FINGERPRINT"]
    mine = [row for row in rows if row.startswith(f"{NAME} ")]
    assert len(mine) == 1, out
    assert mine[0].split()[:6] == [NAME, "127.0.0.1:7777", "5", "yes", ":7778", "yes"]
    assert "chat-client NAME" in out


async def test_list_json_for_scripts(announced: Announcement) -> None:
    code, out, err = await chat_client("--list", "--json", "--interfaces", "127.0.0.1")
    assert code == 0, err
    mine = [s for s in json.loads(out) if s["id"] == announced.server_id]
    assert mine == [
        {
            "name": NAME,
            "id": announced.server_id,
            "addresses": ["127.0.0.1"],
            "port": 7777,
            "tls_port": 7778,
            "fingerprint": FP,
            "password_required": True,
            "users": 5,
            "protocol": 2,
        }
    ]


async def test_nothing_found_says_why_and_what_to_do() -> None:
    code, out, err = await chat_client("--list", "--interfaces", "127.0.0.1", netns=True)
    assert code == 1
    assert out == ""
    assert "No chat server answered within 2 s on 127.0.0.1" in err
    assert "firewall" in err and "UDP port 5353" in err
    assert "chat-client HOST[:PORT]" in err
    code, out, _ = await chat_client("--list", "--json", "--interfaces", "127.0.0.1", netns=True)
    assert (code, out) == (0, "[]\n")


async def test_no_multicast_says_so() -> None:
    code, out, err = await chat_client("--list", "--interfaces", "203.0.113.1")
    assert code == 1 and out == ""
    assert "multicast is not available here" in err
    assert "chat-client HOST[:PORT]" in err
    assert "Traceback" not in err


def test_names_from_the_network_cannot_reach_the_terminal_raw() -> None:
    evil = DiscoveredServer(
        "a1b2c3d4", "x\x1b]0;owned\x07", ("10.0.0.1",), 7777, None, None, False, 0, 2
    )
    table = as_table([evil])
    assert "\x1b" not in table and "\x07" not in table
    assert "\\u001b" in as_json([evil])
