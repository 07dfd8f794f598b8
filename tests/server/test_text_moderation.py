"""Text mode (a person with netcat): /search, /kick, /ban, /unban, /op, /deop as readable lines."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest

from chat_server.server import ChatServer
from tests.server.helpers import Clients
from tests.server.test_text_mode import Netcat


@pytest.fixture
async def nc() -> AsyncIterator[Netcat]:
    binary = shutil.which("nc")
    if binary is None:
        pytest.fail("the `nc` binary is missing: install netcat-openbsd (CI does)")
    users = Netcat(binary)
    yield users
    for user in users.users:
        await user.close()


async def test_search_prints_hits_as_lines(server: ChatServer, nc: Netcat) -> None:
    carol = await nc.login(server.port, "carol")
    await carol.type("the Déploiement is today", "unrelated")
    await carol.expect(r"\[\d\d:\d\d\] #lobby \[2\] <carol> unrelated")
    await carol.type("/search deploiement")
    await carol.expect(r"\* 1 message\(s\) match deploiement:")
    await carol.expect(r"\*   #lobby \[1\] \d\d:\d\d <carol> the Déploiement is today")
    await carol.type("/search NEAR( OR")
    await carol.expect(r"\* no messages match NEAR\( OR")


async def test_kick_ban_and_op_as_readable_lines(
    server: ChatServer, nc: Netcat, clients: Clients
) -> None:
    alice = await nc.login(server.port, "alice")  # first in #lobby: its op (a guest, for now)
    bob = await nc.login(server.port, "bob")
    await alice.expect(r"\* bob joined #lobby")
    await bob.type("/kick alice")
    await bob.expect(r"! you are not an op of #lobby \(not_allowed\)")
    await alice.type("/kick bob spamming")
    await alice.expect(r"\* alice kicked bob from #lobby \(spamming\)")
    await bob.expect(r"\* alice kicked bob from #lobby \(spamming\)")
    await bob.type("/join lobby")
    await bob.expect(r"\* Now talking in #lobby")
    await alice.expect(r"\* bob joined #lobby")
    await alice.type("/ban bob")
    await alice.expect(r"\* alice banned bob from #lobby")
    await bob.expect(r"\* alice banned bob from #lobby")
    await bob.type("/join lobby")
    await bob.expect(r"! you are banned from #lobby \(banned\)")
    await alice.type("/unban bob")
    await alice.expect(r"\* alice lifted the ban of bob from #lobby")
    await bob.type("/join lobby")
    await bob.expect(r"\* Now talking in #lobby")
    await alice.type("/op bob")
    await alice.expect(r"! bob is not an account; ops are accounts \(not_allowed\)")
    dave = await clients.registered(server.port, "dave")
    assert (await dave.request({"type": "register", "password": "correct horse"}))["type"] == "ack"
    await dave.request({"type": "join", "room": "lobby"})
    await alice.expect(r"\* dave joined #lobby")
    await alice.type("/op dave")
    await alice.expect(r"\* alice made dave an op of #lobby")
    await alice.type("/deop dave")
    await alice.expect(r"\* alice took op from dave in #lobby")
