"""Plain-text mode, driven by the real `nc` binary (netcat-openbsd), next to JSON clients."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import AsyncIterator
from datetime import datetime

import pytest

from chat_server.server import ChatServer
from tests.conftest import StartServer
from tests.server.helpers import Clients, join
from tests.support import TIMEOUT, UNIT, Json

MESSAGE_LINE = re.compile(r"\[(\d\d:\d\d)\] #(\S+) (.*)")


class NetcatUser:
    """A person typing into `nc 127.0.0.1 PORT`: lines in, readable lines out."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []  # everything read so far, banner included

    async def type(self, *lines: str) -> None:
        await self.type_raw("".join(line + "\n" for line in lines).encode())

    async def type_raw(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        await self.process.stdin.drain()

    async def read_line(self, timeout: float = TIMEOUT) -> str:
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not raw:
            raise ConnectionError("nc closed its output")
        line = raw.decode().rstrip("\n")
        self.lines.append(line)
        return line

    async def expect(self, pattern: str, timeout: float = TIMEOUT) -> re.Match[str]:
        """Read lines until one matches `pattern` entirely."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            line = await self.read_line(max(0.0, deadline - loop.time()))
            found = re.fullmatch(pattern, line)
            if found:
                return found

    async def quiet(self, duration: float = 0.2 * UNIT) -> list[str]:
        got: list[str] = []
        try:
            while True:
                got.append(await self.read_line(duration))
        except TimeoutError:
            return got

    async def close(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.communicate()


class Netcat:
    """Starts `nc` users and stops every one at the end of the test."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.users: list[NetcatUser] = []

    async def connect(self, port: int) -> NetcatUser:
        process = await asyncio.create_subprocess_exec(
            self.binary,
            "127.0.0.1",
            str(port),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        user = NetcatUser(process)
        self.users.append(user)
        banner = await user.read_line()
        assert banner.startswith('{"type":"hello"'), banner
        return user

    async def login(self, port: int, nick: str) -> NetcatUser:
        """Connect, give `nick`, and wait until in #lobby."""
        user = await self.connect(port)
        await user.type(nick)
        await user.expect(rf"\* Welcome, {nick}! Rooms: .*")
        await user.expect(r"\* Now talking in #lobby")
        await user.expect(rf"\* {nick} joined #lobby")
        return user


@pytest.fixture
async def netcat() -> AsyncIterator[Netcat]:
    binary = shutil.which("nc")
    if binary is None:
        pytest.fail("the `nc` binary is missing: install netcat-openbsd (CI does)")
    users = Netcat(binary)
    yield users
    for user in users.users:
        await user.close()


def local_clock(ts: str) -> str:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone().strftime("%H:%M")


def json_after_banner(user: NetcatUser) -> list[str]:
    """The lines after the banner that are JSON objects (there must be none)."""
    found = []
    for line in user.lines[1:]:
        try:
            value = json.loads(line)
        except ValueError:
            value = None
        if isinstance(value, dict) or line.lstrip().startswith("{"):
            found.append(line)
    return found


async def test_nick_prompt_and_lobby(server: ChatServer, clients: Clients, netcat: Netcat) -> None:
    alice = await clients.registered(server.port, "alice", "lobby")
    await alice.request({"type": "say", "room": "lobby", "text": "earlier"})
    user = await netcat.connect(server.port)
    assert "nick" in user.lines[0]  # the banner's motd tells what to type
    await user.type("not a nick")
    await user.expect(r"! a nick is .*; type another nick")
    await user.type("ALICE")
    await user.expect(r"! the nick ALICE is taken; type another nick")
    await user.type("bob")
    await user.expect(r"\* Welcome, bob! Rooms: #lobby\. Type /help for commands\.")
    await user.expect(r"\* Now talking in #lobby")
    await user.expect(r"\* Members: alice, bob")
    await user.expect(r"\[\d\d:\d\d\] #lobby \[1\] <alice> earlier")
    await user.expect(r"\* bob joined #lobby")
    joined = await alice.expect("joined", nick="bob")
    assert joined["room"] == "lobby"
    assert json_after_banner(user) == []


async def test_text_and_json_users_hear_each_other(
    server: ChatServer, clients: Clients, netcat: Netcat
) -> None:
    user = await netcat.login(server.port, "bob")
    alice = await clients.registered(server.port, "alice", "lobby")
    await user.expect(r"\* alice joined #lobby")

    await user.type("hello from nc")
    heard = await alice.expect("message", text="hello from nc")
    assert (heard["room"], heard["from"], heard["action"]) == ("lobby", "bob", False)
    await user.expect(r"\[\d\d:\d\d\] #lobby \[1\] <bob> hello from nc")  # own line comes back

    await alice.send({"type": "say", "room": "lobby", "text": "hi"})
    said = await alice.expect("message", text="hi")
    found = await user.expect(r"\[(\d\d:\d\d)\] #lobby \[2\] <alice> hi")
    assert found.group(1) == local_clock(said["ts"])

    await alice.request({"type": "say", "room": "lobby", "text": "two\nlines"})
    await user.expect(r"\[\d\d:\d\d\] #lobby \[3\] <alice> two")
    assert await user.read_line() == "    lines"
    await alice.request({"type": "say", "room": "lobby", "text": "waves", "action": True})
    await user.expect(r"\[\d\d:\d\d\] #lobby \[4\] \* alice waves")
    await alice.request({"type": "dm", "to": "bob", "text": "psst"})
    await user.expect(r"\[\d\d:\d\d\] \(dm\) <alice -> bob> psst")
    await alice.request({"type": "topic", "room": "lobby", "topic": "nc day"})
    await user.expect(r"\* alice set the topic of #lobby: nc day")
    await alice.request({"type": "nick", "nick": "alicia"})
    await user.expect(r"\* alice is now known as alicia")
    await alice.request({"type": "part", "room": "lobby", "reason": "lunch"})
    await user.expect(r"\* alicia left #lobby \(lunch\)")
    assert json_after_banner(user) == []


async def test_slash_commands(server: ChatServer, clients: Clients, netcat: Netcat) -> None:
    user = await netcat.login(server.port, "bob")
    alice = await clients.registered(server.port, "alice", "games")

    await user.type("/join #games")
    await user.expect(r"\* Now talking in #games")
    await user.expect(r"\* Members: alice, bob")
    await user.expect(r"\* bob joined #games")
    await alice.expect("joined", nick="bob")

    await user.type("in games now")
    heard = await alice.expect("message")
    assert (heard["room"], heard["from"], heard["text"]) == ("games", "bob", "in games now")

    await user.type("/me waves")
    action = await alice.expect("message", action=True)
    assert (action["room"], action["from"], action["text"]) == ("games", "bob", "waves")
    await user.expect(r"\[\d\d:\d\d\] #games \[\d+\] \* bob waves")

    await user.type("/msg alice lunch at noon?")
    dm = await alice.expect("dm")
    assert (dm["from"], dm["to"], dm["text"]) == ("bob", "alice", "lunch at noon?")
    await user.expect(r"\[\d\d:\d\d\] \(dm\) <bob -> alice> lunch at noon\?")

    await user.type("/who")
    await user.expect(r"\* Members of #games: alice, bob")
    await user.type("/rooms")
    await user.expect(r"\* 2 room\(s\):")
    await user.expect(r"\*   #games \(2\)")
    await user.expect(r"\*   #lobby \(1\)")
    await user.type("/topic dice at 8")
    await user.expect(r"\* bob set the topic of #games: dice at 8")
    topic = await alice.expect("topic")
    assert (topic["room"], topic["topic"], topic["by"]) == ("games", "dice at 8", "bob")
    await user.type("/nick robert")
    await user.expect(r"\* bob is now known as robert")
    assert (await alice.expect("nick"))["new"] == "robert"
    await user.type("/help")
    await user.expect(r"\* Commands:")

    await user.type("/join Games", "/msg nobody hi", "/frobnicate", "/part")
    await user.expect(r"! .* \(invalid_room\)")
    await user.expect(r"! .* \(no_such_user\)")
    await user.expect(r"! unknown command /frobnicate; try /help \(invalid_message\)")
    await user.expect(r"\* robert left #games")
    await user.expect(r"\* You left #games; now talking in #lobby")
    assert (await alice.expect("left"))["nick"] == "robert"

    await join(alice, "lobby", "alice")
    await user.type("/quit gone fishing")
    await user.expect(r"\* bye \(quit\)")
    assert await user.quiet() == []
    assert json_after_banner(user) == []
    left = await alice.expect("left", nick="robert")
    assert (left["room"], left["reason"]) == ("lobby", "gone fishing")
    assert (await alice.request({"type": "who", "room": "lobby"}))["members"] == ["alice"]
    assert user.process.stdin is not None
    user.process.stdin.close()  # nc exits once its input ends, the server having closed
    assert await asyncio.wait_for(user.process.wait(), TIMEOUT) == 0


async def test_text_refusals_are_readable(
    start_server: StartServer, clients: Clients, netcat: Netcat
) -> None:
    server = await start_server(max_text=20)
    user = await netcat.login(server.port, "bob")
    alice = await clients.registered(server.port, "alice", "lobby")
    await user.type_raw(b"caf\xe9\n")
    await user.expect(r"! .* \(bad_encoding\)")
    await user.type("red \x1b[31malert", "x" * 21, "/topic a\x07b")
    await user.expect(r"! .*control character.* \(invalid_text\)")
    await user.expect(r"! text is longer than 20 characters \(invalid_text\)")
    await user.expect(r"! .* \(invalid_text\)")
    await user.type("fine")
    heard: Json = await alice.expect("message")
    assert heard["text"] == "fine"  # nothing refused got through before it
    assert json_after_banner(user) == []


async def test_text_mode_rate_limit(
    start_server: StartServer, clients: Clients, netcat: Netcat
) -> None:
    server = await start_server(rate=5.0, burst=3)
    alice = await clients.registered(server.port, "alice")
    await asyncio.sleep(0.5 * UNIT)
    user = await netcat.login(server.port, "bob")
    await join(alice, "lobby", "alice")
    await asyncio.sleep(0.7 * UNIT)  # a full bucket again
    await user.type(*(f"line {n}" for n in range(6)))
    for n in range(3, 6):  # the user learns which lines were not sent
        await user.expect(
            rf'! flood control dropped your line "line {n}"; slow down \(rate_limited\)'
        )
    heard = [m["text"] for m in await alice.quiet() if m["type"] == "message"]
    assert heard == ["line 0", "line 1", "line 2"]


async def test_password_then_nick(start_server: StartServer, netcat: Netcat) -> None:
    server = await start_server(password="s3cret")
    user = await netcat.connect(server.port)
    assert '"password_required":true' in user.lines[0]
    await user.type("guess")
    await user.expect(r"! wrong password; type the password again")
    await user.type("s3cret")
    await user.expect(r"\* Password accepted\. Type your nick\.")
    await user.type("bob")
    await user.expect(r"\* Welcome, bob! .*")
    await user.expect(r"\* bob joined #lobby")
    assert json_after_banner(user) == []


async def test_every_text_mode_string_is_validated_like_json(
    server: ChatServer, clients: Clients, netcat: Netcat
) -> None:
    alice = await clients.registered(server.port, "alice", "lobby")
    user = await netcat.login(server.port, "bob")
    await alice.expect("joined", nick="bob")
    escapes = "\x1b]0;pwned\x07 a\rb \x1b[2J \u009b31m"
    await user.type_raw(f"/quit {escapes}\n".encode())
    await user.expect(r"! reason: .*control character.* \(invalid_text\)")
    await user.type("/quit " + "x" * 301)
    await user.expect(r"! reason: longer than 300 characters \(invalid_text\)")
    await user.type_raw(b"/topic bell\x07\n")
    await user.expect(r"! topic: .*control character.* \(invalid_text\)")  # not "at most 300"
    await user.type("/msg alice psst")
    assert (await alice.expect("dm"))["text"] == "psst"  # still connected, still bob
    await user.type("/quit lunch")
    left = await alice.expect("left", nick="bob")
    assert left["reason"] == "lunch"
    assert not [m for m in alice.seen if m["type"] == "left" and "\x1b" in m.get("reason", "")]


async def test_with_a_password_the_banner_says_to_type_it_first(
    start_server: StartServer, netcat: Netcat
) -> None:
    server = await start_server(password="s3cret")
    user = await netcat.connect(server.port)
    motd = json.loads(user.lines[0])["motd"]
    assert "password" in motd and motd.index("password") < motd.index("nick"), motd
    custom = await start_server(password="s3cret", motd="Team chat.")
    user = await netcat.connect(custom.port)
    motd = json.loads(user.lines[0])["motd"]
    assert motd.startswith("Team chat.") and "type it first" in motd, motd
