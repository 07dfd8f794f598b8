"""Accounts in plain-text mode: /register, the password after the nick, /away."""

from __future__ import annotations

from chat_server.server import ChatServer
from tests.server.helpers import Clients
from tests.server.test_accounts import FEATURES
from tests.server.test_text_mode import Netcat, netcat

__all__ = ["netcat"]  # the fixture, shared with the text-mode tests


async def test_register_then_the_nick_line_asks_for_the_password(
    server: ChatServer, netcat: Netcat, clients: Clients
) -> None:
    alice = await netcat.login(server.port, "alice")
    await alice.type("/register short")
    await alice.expect(r"! password: shorter than 8 characters \(invalid_text\)")
    await alice.type("/register correct horse")
    await alice.expect(r"\* alice is now an account: .*")
    await alice.type("/quit")
    again = await netcat.connect(server.port)
    await again.type("alice")
    await again.expect(r"\* alice is an account\. Type its password .*")
    await again.type("wrong password")
    await again.expect(r"! wrong password; type it again .*")
    await again.type("correct horse")
    await again.expect(r"\* Welcome, alice! Rooms: .*")
    assert all("correct horse" not in line for line in again.lines)


async def test_back_instead_of_the_password_goes_back_to_the_nick(
    server: ChatServer, netcat: Netcat
) -> None:
    alice = await netcat.login(server.port, "alice")
    await alice.type("/register correct horse")
    await alice.expect(r"\* alice is now an account: .*")
    other = await netcat.connect(server.port)
    await other.type("alice", "/back")
    await other.expect(r"\* Type your nick\.")
    await other.type("bob")
    await other.expect(r"\* Welcome, bob! Rooms: .*")


async def test_away_from_text_mode_reaches_json_clients(
    server: ChatServer, netcat: Netcat, clients: Clients
) -> None:
    bob = await clients.open(server.port)
    await bob.request({"type": "hello", "nick": "bob", "features": FEATURES})
    await bob.request({"type": "join", "room": "lobby"})
    alice = await netcat.login(server.port, "alice")
    await alice.type("/away lunch")
    await alice.expect(r"\* you are away: lunch")
    assert await bob.expect("away") == {"type": "away", "nick": "alice", "text": "lunch"}
    await alice.type("/away")
    await alice.expect(r"\* you are back")
    assert (await bob.expect("away"))["text"] is None
