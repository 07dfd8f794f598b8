"""Many clients at once: 500 members of one room all receive one broadcast."""

from __future__ import annotations

import asyncio
import resource

import pytest

from tests.conftest import StartServer
from tests.server.helpers import Clients
from tests.support import TIMEOUT, LineClient

CLIENTS = 500


def ensure_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= needed, "too few file descriptors"


async def member(port: int, clients: Clients, number: int, gate: asyncio.Semaphore) -> LineClient:
    async with gate:
        client = await clients.open(port)
        # Pipelined: register and join in one write.
        await client.send_raw(
            b'{"type":"hello","nick":"u%d"}\n{"type":"join","room":"big","id":"j"}\n' % number
        )
        reply = await client.expect("room", timeout=4 * TIMEOUT)
        assert reply["re"] == "j"
        return client


@pytest.mark.slow
async def test_500_members_receive_one_broadcast(
    start_server: StartServer, clients: Clients
) -> None:
    server = await start_server(max_per_ip=0)  # all come from 127.0.0.1
    ensure_fd_limit(2 * CLIENTS + 256)  # both ends of every connection live in this process
    gate = asyncio.Semaphore(50)
    members = await asyncio.gather(*(member(server.port, clients, n, gate) for n in range(CLIENTS)))
    speaker = members[0]
    who = await speaker.request({"type": "who", "room": "big"}, timeout=4 * TIMEOUT)
    assert len(who["members"]) == CLIENTS

    ack = await speaker.request(
        {"type": "say", "room": "big", "text": "hello, everyone"}, timeout=4 * TIMEOUT
    )
    assert ack["seq"] == 1

    async def heard(client: LineClient) -> tuple[int, str]:
        message = await client.expect("message", timeout=4 * TIMEOUT)
        return message["seq"], message["text"]

    results = await asyncio.gather(*(heard(client) for client in members[1:]))
    assert results == [(1, "hello, everyone")] * (CLIENTS - 1)
    assert next(m for m in speaker.seen if m["type"] == "message")["seq"] == 1
