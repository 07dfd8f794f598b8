"""Liveness with short timers: silent JSON clients are pinged, then timed out; text clients not."""

from __future__ import annotations

import asyncio

import pytest

from chat_server.server import ChatServer
from tests.conftest import StartServer
from tests.server.helpers import Clients, prove_alive
from tests.support import UNIT, Json, LineClient

PING = 0.2 * UNIT
IDLE = 0.6 * UNIT


async def answer_pings(duration: float, *clients: LineClient) -> list[Json]:
    """Answer every `ping` with a `pong` for `duration`; return everything else received."""
    loop = asyncio.get_running_loop()
    end = loop.time() + duration
    others: list[Json] = []
    while loop.time() < end:
        for client in clients:
            for message in await client.quiet(PING / 4):
                if message["type"] != "ping":
                    others.append(message)
                    continue
                token = {"token": message["token"]} if "token" in message else {}
                await client.send({"type": "pong", **token})
    return others


@pytest.fixture
async def lively(start_server: StartServer) -> ChatServer:
    return await start_server(ping_interval=PING, idle_timeout=IDLE)


async def test_silent_client_is_pinged_again_and_again(
    lively: ChatServer, clients: Clients
) -> None:
    client = await clients.registered(lively.port, "alice")
    loop = asyncio.get_running_loop()
    started = loop.time()
    first = await client.recv(timeout=IDLE)
    assert first["type"] == "ping" and "re" not in first
    assert loop.time() - started >= PING * 0.9
    second = await client.recv(timeout=IDLE)
    assert second["type"] == "ping"


async def test_pong_keeps_a_client_alive(lively: ChatServer, clients: Clients) -> None:
    alice = await clients.registered(lively.port, "alice", "lobby")
    bob = await clients.registered(lively.port, "bob", "lobby")
    others = await answer_pings(3 * IDLE, alice, bob)
    assert [m["type"] for m in others] == ["joined"]  # bob's, seen by alice: no bye
    pings = [m for m in [*alice.seen, *bob.seen] if m["type"] == "ping"]
    assert len(pings) >= 4
    await prove_alive(alice, bob, "lobby", "still here")


async def test_silence_ends_in_bye_timeout(lively: ChatServer, clients: Clients) -> None:
    alice = await clients.registered(lively.port, "alice", "lobby")
    bob = await clients.registered(lively.port, "bob", "lobby")
    loop = asyncio.get_running_loop()
    started = loop.time()
    while (message := await alice.recv(timeout=2 * IDLE))["type"] != "bye":
        assert message["type"] in ("ping", "joined"), message
        # bob keeps talking so only alice is silent.
        await bob.send({"type": "ping"})
    assert message == {"type": "bye", "reason": "timeout"}
    assert loop.time() - started >= IDLE * 0.9
    assert await alice.reader.read() == b""
    left = await bob.expect("left", nick="alice")
    assert left["room"] == "lobby"
    assert (await bob.request({"type": "ping", "token": "ok"}))["type"] == "pong"
    again = await clients.registered(lively.port, "alice")  # the nick is free
    assert (await again.request({"type": "rooms"}))["type"] == "room_list"


async def test_a_client_that_never_speaks_times_out(lively: ChatServer, clients: Clients) -> None:
    client = await clients.open(lively.port)
    types: list[str] = []
    while (message := await client.recv(timeout=2 * IDLE))["type"] != "bye":
        types.append(message["type"])
    assert set(types) <= {"ping"}
    assert message["reason"] == "timeout"


async def test_text_mode_clients_are_not_pinged_or_timed_out(
    lively: ChatServer, clients: Clients
) -> None:
    alice = await clients.registered(lively.port, "alice", "lobby")
    text = await clients.open(lively.port)  # the JSON hello is its banner
    await text.send_raw(b"carol\n")
    await alice.expect("joined", nick="carol")
    await answer_pings(2.5 * IDLE, alice)  # carol is silent well past the idle timeout
    got = b""
    while True:
        try:
            got += await text.recv_line(timeout=0.05 * UNIT)
        except TimeoutError:
            break
    assert b"ping" not in got and b"bye" not in got and b"{" not in got
    await text.send_raw(b"still awake\n")
    heard = await alice.expect("message", timeout=IDLE)
    assert (heard["from"], heard["text"]) == ("carol", "still awake")
