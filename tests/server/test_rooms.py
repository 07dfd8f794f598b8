"""The room rows of the contract: join, part, say, dm, nick, topic, who and rooms."""

from __future__ import annotations

import re

from chat_server.server import ChatServer
from tests.server.helpers import Clients, join, request_and_see
from tests.support import Json, LineClient

TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
BROADCASTS = {"message", "joined", "left", "nick", "topic", "dm"}


def assert_no_re_on_broadcasts(*clients: LineClient) -> None:
    for client in clients:
        for message in client.seen:
            if message["type"] in BROADCASTS:
                assert "re" not in message, message


def types(messages: list[Json]) -> list[str]:
    return [m["type"] for m in messages]


async def test_join_sends_room_history_then_joined(server: ChatServer, clients: Clients) -> None:
    alice = await clients.registered(server.port, "alice", "lobby")
    await alice.request({"type": "topic", "room": "lobby", "topic": "welcome all"})
    await alice.request({"type": "say", "room": "lobby", "text": "before bob"})
    bob = await clients.registered(server.port, "bob")
    await bob.send({"type": "join", "room": "#lobby", "id": "j"})
    room, history, joined = await bob.recv(), await bob.recv(), await bob.recv()
    assert room == {
        "type": "room",
        "room": "lobby",
        "topic": "welcome all",
        "members": ["alice", "bob"],
        "read": 0,
        "away": {},
        "ops": ["alice"],  # the room's creator
        "re": "j",
    }
    assert (history["type"], history["room"], history["more"]) == ("history", "lobby", False)
    assert "re" not in history  # exactly one direct reply carries the id
    [old] = history["messages"]
    assert (old["type"], old["seq"], old["from"]) == ("message", 1, "alice")
    assert old["text"] == "before bob"
    assert (joined["type"], joined["room"], joined["nick"]) == ("joined", "lobby", "bob")
    assert TS.fullmatch(joined["ts"])
    seen_by_alice = await alice.expect("joined", nick="bob")
    assert seen_by_alice == joined
    assert_no_re_on_broadcasts(alice, bob)


async def test_first_join_creates_the_room(server: ChatServer, clients: Clients) -> None:
    alice = await clients.registered(server.port, "alice")
    reply = await join(alice, "new-room_1", "alice")
    assert (reply["members"], reply["topic"]) == (["alice"], "")
    history = [m for m in alice.seen if m["type"] == "history"]
    assert history == [{"type": "history", "room": "new-room_1", "messages": [], "more": False}]
    listing = await alice.request({"type": "rooms"})
    assert listing["rooms"] == [{"room": "new-room_1", "topic": "", "members": 1}]


async def test_join_again_is_harmless(server: ChatServer, clients: Clients) -> None:
    alice = await clients.registered(server.port, "alice", "lobby")
    bob = await clients.registered(server.port, "bob", "lobby")
    await alice.expect("joined", nick="bob")
    reply = await alice.request({"type": "join", "room": "lobby"})
    assert reply["type"] == "room" and sorted(reply["members"]) == ["alice", "bob"]
    await alice.request({"type": "say", "room": "lobby", "text": "once"})
    got = [m for m in await bob.quiet() if m["type"] in ("message", "joined")]
    assert types(got) == ["message"]  # one copy, no second `joined`


async def test_bad_room_names(server: ChatServer, clients: Clients) -> None:
    alice = await clients.registered(server.port, "alice")
    for bad in ["Lobby", "##lobby", "", "a" * 65, "with space", "dé"]:
        error = await alice.request({"type": "join", "room": bad, "id": "b"})
        assert (error["type"], error["code"], error["re"]) == ("error", "invalid_room", "b"), bad
    assert (await alice.request({"type": "rooms"}))["rooms"] == []


async def test_part_tells_every_member_and_the_leaver(server: ChatServer, clients: Clients) -> None:
    alice = await clients.registered(server.port, "alice", "lobby")
    bob = await clients.registered(server.port, "bob", "lobby")
    part = {"type": "part", "room": "#lobby", "reason": "brb", "id": "p"}
    ack, seen = await request_and_see(bob, part, "left")
    assert ack == {"type": "ack", "re": "p"}
    for left in (seen["left"], await alice.expect("left", nick="bob")):
        assert (left["room"], left["nick"], left["reason"]) == ("lobby", "bob", "brb")
    await alice.request({"type": "say", "room": "lobby", "text": "gone?"})
    assert [m for m in await bob.quiet() if m["type"] == "message"] == []
    error = await bob.request({"type": "part", "room": "lobby", "id": "again"})
    assert (error["code"], error["re"]) == ("not_in_room", "again")
    assert_no_re_on_broadcasts(alice, bob)


async def test_room_keeps_existing_when_empty(server: ChatServer, clients: Clients) -> None:
    alice = await clients.registered(server.port, "alice", "dev")
    await alice.request({"type": "say", "room": "dev", "text": "kept"})
    await alice.request({"type": "part", "room": "dev"})
    listing = await alice.request({"type": "rooms"})
    assert listing["rooms"] == [{"room": "dev", "topic": "", "members": 0}]
    await join(alice, "dev", "alice")
    history = [m for m in alice.seen if m["type"] == "history"][-1]
    assert [m["text"] for m in history["messages"]] == ["kept"]


async def test_say_reaches_everyone_and_acks_the_sender(
    server: ChatServer, clients: Clients
) -> None:
    alice = await clients.registered(server.port, "alice", "lobby")
    bob = await clients.registered(server.port, "bob", "lobby")
    carol = await clients.registered(server.port, "carol", "elsewhere")
    await alice.send({"type": "say", "room": "lobby", "text": "line 1\n\tline 2", "id": "s1"})
    mine = await alice.expect("message")
    ack = await alice.recv()
    assert ack == {"type": "ack", "re": "s1", "seq": 1}
    theirs = await bob.expect("message")
    assert mine == theirs
    assert mine["room"] == "lobby" and mine["from"] == "alice" and mine["seq"] == 1
    assert (mine["text"], mine["action"]) == ("line 1\n\tline 2", False)
    assert TS.fullmatch(mine["ts"])
    await bob.send({"type": "say", "room": "lobby", "text": "waves", "action": True})
    action = await alice.expect("message", seq=2)
    assert (action["from"], action["text"], action["action"]) == ("bob", "waves", True)
    assert not [m for m in await bob.quiet() if m["type"] == "ack"]  # no id, no ack
    assert [m for m in await carol.quiet() if m["type"] == "message"] == []
    assert_no_re_on_broadcasts(alice, bob)


async def test_say_to_a_room_not_joined(server: ChatServer, clients: Clients) -> None:
    alice = await clients.registered(server.port, "alice", "lobby")
    bob = await clients.registered(server.port, "bob")
    for room in ["lobby", "nowhere"]:
        error = await bob.request({"type": "say", "room": room, "text": "x", "id": "n"})
        assert (error["type"], error["code"], error["re"]) == ("error", "not_in_room", "n")
    ack = await alice.request({"type": "say", "room": "lobby", "text": "first"})
    assert ack["seq"] == 1  # the refused says took no seq
    assert (await alice.request({"type": "rooms"}))["rooms"][0]["room"] == "lobby"
    assert len((await alice.request({"type": "rooms"}))["rooms"]) == 1


async def test_dm_goes_to_the_target_and_echoes(server: ChatServer, clients: Clients) -> None:
    alice = await clients.registered(server.port, "alice")
    bob = await clients.registered(server.port, "Bob")
    carol = await clients.registered(server.port, "carol")
    await alice.send({"type": "dm", "to": "bob", "text": "psst", "id": "d"})
    echo = await alice.expect("dm")
    ack = await alice.recv()
    assert ack == {"type": "ack", "re": "d"}
    received = await bob.expect("dm")
    assert echo == received
    assert (echo["from"], echo["to"], echo["text"]) == ("alice", "Bob", "psst")
    assert TS.fullmatch(echo["ts"])
    assert await carol.quiet() == []
    assert_no_re_on_broadcasts(alice, bob)


async def test_dm_to_self_arrives_once(server: ChatServer, clients: Clients) -> None:
    alice = await clients.registered(server.port, "alice")
    ack = await alice.request({"type": "dm", "to": "alice", "text": "note to self"})
    assert ack["type"] == "ack"
    got = [*alice.seen, *await alice.quiet()]
    dms = [m for m in got if m["type"] == "dm"]
    assert len(dms) == 1 and dms[0]["to"] == "alice" and dms[0]["from"] == "alice"


async def test_dm_to_nobody(server: ChatServer, clients: Clients) -> None:
    alice = await clients.registered(server.port, "alice")
    bob = await clients.registered(server.port, "bob")
    await bob.close()
    for nobody in ["zed", "bob"]:
        error = await alice.request({"type": "dm", "to": nobody, "text": "hi", "id": "u"})
        assert (error["type"], error["code"], error["re"]) == ("error", "no_such_user", "u")
    error = await alice.request({"type": "dm", "to": "not a nick", "text": "hi", "id": "v"})
    assert (error["code"], error["re"]) == ("invalid_nick", "v")


async def test_nick_change_reaches_those_sharing_a_room(
    server: ChatServer, clients: Clients
) -> None:
    alice = await clients.registered(server.port, "alice", "lobby", "dev")
    bob = await clients.registered(server.port, "bob", "lobby")
    carol = await clients.registered(server.port, "carol", "dev")
    dave = await clients.registered(server.port, "dave", "other")
    ack, seen = await request_and_see(alice, {"type": "nick", "nick": "alicia", "id": "n"}, "nick")
    assert ack == {"type": "ack", "re": "n"}
    for changed in (seen["nick"], await bob.expect("nick"), await carol.expect("nick")):
        assert (changed["old"], changed["new"]) == ("alice", "alicia")
        assert TS.fullmatch(changed["ts"])
    # One `nick` each, even for alice who shares two rooms with herself and others.
    assert [m for m in await alice.quiet() if m["type"] == "nick"] == []
    assert [m for m in await dave.quiet() if m["type"] == "nick"] == []
    members = await dave.request({"type": "who", "room": "lobby"})
    assert sorted(members["members"]) == ["alicia", "bob"]
    await bob.request({"type": "say", "room": "lobby", "text": "hi"})
    assert (await alice.expect("message"))["from"] == "bob"
    # The old nick is free, the new one taken.
    assert (await dave.request({"type": "dm", "to": "alice", "text": "?"}))["code"] == (
        "no_such_user"
    )
    assert (await dave.request({"type": "nick", "nick": "alice"}))["type"] == "ack"
    assert_no_re_on_broadcasts(alice, bob, carol)


async def test_nick_change_refusals_and_own_capitalisation(
    server: ChatServer, clients: Clients
) -> None:
    alice = await clients.registered(server.port, "alice", "lobby")
    bob = await clients.registered(server.port, "bob", "lobby")
    error = await alice.request({"type": "nick", "nick": "BOB", "id": "t"})
    assert (error["code"], error["re"]) == ("nick_taken", "t")
    error = await alice.request({"type": "nick", "nick": "no way", "id": "i"})
    assert (error["code"], error["re"]) == ("invalid_nick", "i")
    ack = await alice.request({"type": "nick", "nick": "Alice", "id": "c"})
    assert ack == {"type": "ack", "re": "c"}
    changed = await bob.expect("nick")
    assert (changed["old"], changed["new"]) == ("alice", "Alice")
    said = await alice.request({"type": "say", "room": "lobby", "text": "hi"})
    assert said["type"] == "ack"
    assert (await bob.expect("message"))["from"] == "Alice"


async def test_topic(server: ChatServer, clients: Clients) -> None:
    alice = await clients.registered(server.port, "alice", "lobby")
    bob = await clients.registered(server.port, "bob", "lobby")
    carol = await clients.registered(server.port, "carol")
    topic_request = {"type": "topic", "room": "lobby", "topic": "pizza", "id": "t"}
    ack, seen = await request_and_see(alice, topic_request, "topic")
    assert ack == {"type": "ack", "re": "t"}
    for topic in (seen["topic"], await bob.expect("topic")):
        assert (topic["room"], topic["topic"], topic["by"]) == ("lobby", "pizza", "alice")
        assert TS.fullmatch(topic["ts"])
    assert await carol.quiet() == []
    error = await carol.request({"type": "topic", "room": "lobby", "topic": "mine", "id": "x"})
    assert (error["code"], error["re"]) == ("not_in_room", "x")
    reply = await carol.request({"type": "join", "room": "lobby"})
    assert reply["topic"] == "pizza"
    await bob.request({"type": "topic", "room": "lobby", "topic": ""})
    cleared = await alice.expect("topic", by="bob")
    assert cleared["topic"] == ""
    listing = await alice.request({"type": "rooms"})
    assert listing["rooms"] == [{"room": "lobby", "topic": "", "members": 3}]
    too_long = await alice.request({"type": "topic", "room": "lobby", "topic": "x" * 301})
    assert too_long["code"] == "invalid_text"
    assert (await alice.request({"type": "topic", "room": "lobby", "topic": "x" * 300}))[
        "type"
    ] == "ack"
    assert_no_re_on_broadcasts(alice, bob, carol)


async def test_who(server: ChatServer, clients: Clients) -> None:
    alice = await clients.registered(server.port, "alice", "lobby")
    await clients.registered(server.port, "bob", "lobby")
    carol = await clients.registered(server.port, "carol")
    members = await carol.request({"type": "who", "room": "#lobby", "id": "w"})
    assert members["type"] == "members" and members["re"] == "w" and members["room"] == "lobby"
    assert sorted(members["members"]) == ["alice", "bob"]
    error = await carol.request({"type": "who", "room": "nope", "id": "n"})
    assert (error["type"], error["code"], error["re"]) == ("error", "no_such_room", "n")
    error = await alice.request({"type": "who", "room": "NOPE", "id": "i"})
    assert error["code"] == "invalid_room"


async def test_rooms_lists_every_room_with_counts(server: ChatServer, clients: Clients) -> None:
    alice = await clients.registered(server.port, "alice", "lobby", "dev")
    await clients.registered(server.port, "bob", "lobby")
    await alice.request({"type": "topic", "room": "dev", "topic": "code"})
    listing = await alice.request({"type": "rooms", "id": "r"})
    assert listing == {
        "type": "room_list",
        "rooms": [
            {"room": "dev", "topic": "code", "members": 1},
            {"room": "lobby", "topic": "", "members": 2},
        ],
        "re": "r",
    }


async def test_nick_change_in_no_room_reaches_only_the_user(
    server: ChatServer, clients: Clients
) -> None:
    alice = await clients.registered(server.port, "alice")
    bob = await clients.registered(server.port, "bob", "lobby")
    ack, seen = await request_and_see(alice, {"type": "nick", "nick": "al"}, "nick")
    assert ack["type"] == "ack"
    assert (seen["nick"]["old"], seen["nick"]["new"]) == ("alice", "al")
    assert [m for m in await bob.quiet() if m["type"] == "nick"] == []
    dm = await bob.request({"type": "dm", "to": "al", "text": "found you"})
    assert dm["type"] == "ack"
