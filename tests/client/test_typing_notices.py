"""When the client tells others that one is typing: the pure rules, then `ChatClient`
over loopback (bob is a raw version-2 client that sees what alice's library sends)."""

from __future__ import annotations

import asyncio
import time

from chat_client import ChatClient, ClientSettings
from chat_client.typing_notices import Notice, Target, TypingNotifier
from chat_server.server import ChatServer
from protocol import ChatMessage, ErrorReply
from tests.conftest import StartServer
from tests.support import TIMEOUT, UNIT, Json, LineClient, open_client

LOBBY = Target("lobby")
BOB = Target("bob", dm=True)


def test_active_at_most_every_interval_then_paused_once_then_done() -> None:
    notifier = TypingNotifier(active_interval=3.0, pause_after=2.0)
    assert notifier.typed(LOBBY, 100.0) == [Notice(LOBBY, "active")]
    assert notifier.typed(LOBBY, 101.0) == []  # throttled
    assert notifier.due(102.9) == []  # 1.9 s after the last key
    assert notifier.deadline() == 103.0
    assert notifier.typed(LOBBY, 103.5) == [Notice(LOBBY, "active")]  # 3.5 s after the first
    assert notifier.due(105.5) == [Notice(LOBBY, "paused")]
    assert notifier.due(200.0) == []  # once per pause
    assert notifier.deadline() is None
    # Typing again after a pause says `active` at once, however soon.
    assert notifier.typed(LOBBY, 105.6) == [Notice(LOBBY, "active")]
    assert notifier.cleared() == [Notice(LOBBY, "done")]
    assert notifier.cleared() == []  # nothing was said since
    assert notifier.due(1000.0) == []


def test_moving_to_another_conversation_ends_the_first() -> None:
    notifier = TypingNotifier()
    notifier.typed(LOBBY, 10.0)
    assert notifier.typed(BOB, 10.5) == [Notice(LOBBY, "done"), Notice(BOB, "active")]
    notifier.forget()
    assert notifier.cleared() == []


async def bob_in_lobby(port: int) -> LineClient:
    bob = await open_client(port)
    welcome = await bob.request({"type": "hello", "nick": "bob", "features": ["typing"]})
    assert welcome["type"] == "welcome", welcome
    assert (await bob.request({"type": "join", "room": "lobby"}))["type"] == "room"
    return bob


def typing_seen(messages: list[Json]) -> list[str]:
    return [m["state"] for m in messages if m.get("type") == "typing"]


async def test_the_library_sends_paused_when_the_keys_stop_and_done_when_cleared(
    start_server: StartServer,
) -> None:
    server: ChatServer = await start_server(typing_interval=0.0)
    bob = await bob_in_lobby(server.port)
    pause = 0.4 * UNIT
    settings = ClientSettings(typing_pause=pause)
    async with ChatClient(
        "127.0.0.1", server.port, "alice", features=["typing"], settings=settings
    ) as alice:
        await alice.join("lobby")
        started = time.monotonic()
        alice.composing("h", room="lobby")
        alice.composing("he", room="lobby")  # within 3 s: no second `active`
        got = await bob.expect("typing", state="active")
        assert (got["from"], got["room"]) == ("alice", "lobby")
        paused = await bob.expect("typing", state="paused")
        assert paused["from"] == "alice"
        assert time.monotonic() - started >= pause
        assert typing_seen(bob.seen) == ["active", "paused"]  # nothing in between
        bob.seen.clear()
        assert typing_seen(await bob.quiet(pause * 2)) == []  # one `paused` per pause
        alice.composing("hel", room="lobby")  # typing again: `active` at once
        await bob.expect("typing", state="active")
        alice.composing("", room="lobby")  # cleared: `done`, and no `paused` later
        await bob.expect("typing", state="done")
        assert typing_seen(await bob.quiet(pause * 2)) == []
        # A DM: the same, to the nick.
        alice.composing("psst", to="bob")
        got = await bob.expect("typing", state="active")
        assert got.get("room") is None and got["from"] == "alice"
        alice.stopped_composing()
        await bob.expect("typing", state="done")
        await asyncio.sleep(0)
    await bob.close()


async def test_room_notices_go_only_where_one_is_in_and_bring_no_stray_error(
    start_server: StartServer,
) -> None:
    server: ChatServer = await start_server(typing_interval=0.0)
    bob = await bob_in_lobby(server.port)
    async with ChatClient("127.0.0.1", server.port, "alice", features=["typing"]) as alice:
        await alice.join("lobby")
        alice.composing("x", room="elsewhere")  # not in it: nothing is sent
        alice.composing("y", room="lobby")  # ends "elsewhere" (nothing to end), then active
        await bob.expect("typing", state="active")
        await alice.say("lobby", "marker")  # every line before it has been handled
        await bob.expect("message", text="marker")
        assert [m.get("room") for m in bob.seen if m.get("type") == "typing"] == ["lobby"]
        # Answers come in the order of the lines: an error for a notice would come
        # before alice's own marker.
        errors = await asyncio.wait_for(errors_before_marker(alice), TIMEOUT)
        assert errors == []
    await bob.close()


async def errors_before_marker(client: ChatClient) -> list[ErrorReply]:
    errors = []
    async for event in client.events():
        if isinstance(event, ErrorReply):
            errors.append(event)
        if isinstance(event, ChatMessage) and event.text == "marker":
            return errors
    raise AssertionError("event stream ended")
