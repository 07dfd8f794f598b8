"""Shared test data: one sample of every wire message, and the `type` literals of both unions."""

from __future__ import annotations

from typing import get_args

from pydantic import BaseModel

from protocol import (
    Ack,
    AwayChanged,
    Ban,
    BanEntry,
    BanList,
    Banned,
    Bye,
    ChangeNick,
    ChatMessage,
    ClientMessage,
    DeleteMessage,
    DirectMessage,
    DmHistoryPage,
    EditMessage,
    ErrorReply,
    FileInfo,
    GetBans,
    GetHistory,
    HistoryPage,
    Join,
    Joined,
    Kick,
    Kicked,
    Left,
    ListRooms,
    MarkRead,
    Members,
    MessageDeleted,
    MessageEdited,
    ModeChanged,
    NickChanged,
    Part,
    Ping,
    Pong,
    Quit,
    React,
    ReactionChanged,
    ReadMarker,
    Register,
    RegisterAccount,
    RoomInfo,
    RoomList,
    RoomSummary,
    Say,
    Search,
    SearchResults,
    SendDm,
    ServerHello,
    ServerMessage,
    ServerPing,
    ServerPong,
    SetAway,
    SetOp,
    SetTopic,
    TopicChanged,
    Typing,
    TypingNotice,
    Unban,
    Upload,
    UploadReady,
    Welcome,
    Who,
)

__all__ = [
    "CLIENT_SAMPLES",
    "CLIENT_TYPES",
    "SERVER_SAMPLES",
    "SERVER_TYPES",
    "TS",
    "union_members",
]

TS = "2026-11-23T15:04:05.123Z"


def union_members(union: object) -> list[type[BaseModel]]:
    """The model classes of a discriminated union alias such as `ClientMessage`.

    Nested unions (both `history` replies, told apart by `with`) are flattened.
    """
    members, *_field_info = get_args(union)
    classes: list[type[BaseModel]] = []
    for member in get_args(members) or (members,):
        if isinstance(member, type) and issubclass(member, BaseModel):
            classes.append(member)
        else:
            classes.extend(union_members(member))
    assert classes, f"{union!r} is not an Annotated union"
    return classes


def _type_literal(model: type[BaseModel]) -> str:
    value = model.model_fields["type"].default
    assert isinstance(value, str)
    return value


CLIENT_TYPES = [_type_literal(model) for model in union_members(ClientMessage)]
SERVER_TYPES = [_type_literal(model) for model in union_members(ServerMessage)]

_MESSAGE = ChatMessage(room="lobby", seq=7, sender="alice", text="héllo wörld ✓", ts=TS, rev=9)
SHA = "5d41402abc4b2a76b9719d911017c592" * 2
_FILE = FileInfo(
    id="7f3a9c0e11d2b4a5",
    name="report.pdf",
    size=2_100_000,
    sha256=SHA,
    url="http://192.168.1.10:7779/f/q5eT0b1N6a-Xy2FhU8lZkW3rJ9sVdC4p/report.pdf",
)

CLIENT_SAMPLES: list[BaseModel] = [
    Register(nick="alice"),
    Register(nick="alice", password="s3cret", client="chat-client/0.1", id="r1"),
    Register(nick="alice", features=["reply", "typing", "teleport"], id="r2"),
    Join(room="lobby"),
    Join(room="lobby", since=41, id="j1"),
    Part(room="lobby"),
    Part(room="lobby", reason="lunch", id="p1"),
    Say(room="lobby", text="hi"),
    Say(room="lobby", text="line one\n\tline two — ünïcødé 你好 🎉", action=True, id="s1"),
    Say(room="lobby", text="agreed", reply_to=7, id="s2"),
    Join(room="lobby", changed_since=12, id="j2"),
    GetHistory(room="lobby", changed_since=12, id="h2"),
    GetHistory(room="lobby", around=7, limit=21, id="h3"),
    EditMessage(room="lobby", seq=7, text="hello world", id="e1"),
    DeleteMessage(room="lobby", seq=7, id="x1"),
    React(room="lobby", seq=7, emoji="👍", id="r3"),
    React(room="lobby", seq=7, emoji=":tada:", remove=True),
    Typing(room="lobby", state="active"),
    Typing(to="bob", state="done", id="ty1"),
    SendDm(to="bob", text="psst", id="d1"),
    ChangeNick(nick="robert", id="n1"),
    SetTopic(room="lobby", topic="Friday: pizza"),
    SetTopic(room="lobby", topic="", id="t1"),
    Who(room="lobby", id="w1"),
    ListRooms(),
    ListRooms(id="l1"),
    GetHistory(room="lobby"),
    GetHistory(room="lobby", before=100, limit=20, id="h1"),
    GetHistory(room="lobby", after=0, limit=500),
    Ping(),
    Ping(token="abc", id="pi1"),
    Pong(token="abc"),
    Quit(),
    Quit(reason="bye now", id="q1"),
    Register(nick="alice", account_password="correct horse", features=["accounts"], id="r3"),
    RegisterAccount(password="correct horse", id="a1"),
    MarkRead(room="lobby", seq=12, id="m1"),
    MarkRead(with_="bob", seq=3),
    SetAway(text="lunch, back at 2", id="aw1"),
    SetAway(),
    GetHistory(with_="bob", before=10, limit=20, id="h2"),
    Upload(room="lobby", name="report.pdf", size=2_100_000, sha256=SHA, id="u1"),
    Upload(to="bob", name="photo 1 (ünï).jpg", size=1, sha256=SHA.upper()),
    Search(query='deploy* "on friday"', room="lobby", sender="alice", limit=10, id="se1"),
    Search(query="NEAR( col:^ OR", before="MTc2NDAwMDAwMDAwMDo3OmxvYmJ5", id="se2"),
    Search(query="lunch", with_="bob", id="se3"),
    SetOp(room="lobby", nick="carol", id="o1"),
    SetOp(room="lobby", nick="carol", remove=True),
    Kick(room="lobby", nick="mallory", reason="spam", id="k1"),
    Kick(room="lobby", nick="mallory"),
    Ban(room="lobby", nick="mallory", reason="spam again", id="b1"),
    Unban(room="lobby", nick="mallory", id="b2"),
    GetBans(room="lobby", id="b3"),
]

SERVER_SAMPLES: list[BaseModel] = [
    ServerHello(server="chat-server", motd="Welcome!", password_required=True),
    ServerHello(
        server="office",
        features=["reply", "typing"],
        tls_port=7778,
        fingerprint=":".join(["3A"] * 32),
    ),
    Welcome(nick="alice", rooms=["lobby", "games"], re="r1"),
    Welcome(nick="alice", rooms=["lobby"], features=["reply"], re="r2"),
    Welcome(nick="alice", rooms=[]),
    Welcome(nick="alice", rooms=["lobby"], features=["reply"], account=True, re="r2"),
    RoomInfo(room="lobby", topic="", members=["alice", "bob"], re="j1"),
    _MESSAGE,
    ChatMessage(room="lobby", seq=8, sender="bob", text="waves", action=True, ts=TS),
    ChatMessage(
        room="lobby",
        seq=9,
        sender="bob",
        text="same here",
        ts=TS,
        rev=14,
        reply_to=7,
        edited=TS,
        reactions={"👍": ["alice", "carol"], ":tada:": ["alice"]},
    ),
    ChatMessage(room="lobby", seq=10, sender="bob", text="", ts=TS, rev=15, deleted=True),
    MessageEdited(room="lobby", seq=9, text="same here!", by="bob", ts=TS, rev=16),
    MessageDeleted(room="lobby", seq=10, by="bob", ts=TS, rev=17),
    ReactionChanged(room="lobby", seq=9, emoji="👍", nick="carol", removed=False, ts=TS, rev=18),
    TypingNotice(room="lobby", sender="alice", state="active"),
    TypingNotice(sender="alice", state="paused"),
    DirectMessage(sender="alice", to="bob", text="psst\nhey", ts=TS),
    Joined(room="lobby", nick="bob", ts=TS),
    Left(room="lobby", nick="bob", ts=TS),
    Left(room="lobby", nick="bob", reason="disconnected", ts=TS),
    NickChanged(old="bob", new="robert", ts=TS),
    TopicChanged(room="lobby", topic="Friday: pizza", by="alice", ts=TS),
    Members(room="lobby", members=["alice"], re="w1"),
    RoomList(rooms=[RoomSummary(room="lobby", topic="", members=2)], re="l1"),
    HistoryPage(room="lobby", messages=[_MESSAGE], more=True, re="h1"),
    HistoryPage(room="lobby", messages=[], more=False),
    Ack(re="s1", seq=7),
    Ack(re="p1"),
    ErrorReply(code="not_in_room", message="you are not in #games", re="s2"),
    ErrorReply(code="bad_json", message="line is not valid JSON"),
    ServerPing(token="42"),
    ServerPing(),
    ServerPong(token="abc", re="pi1"),
    Bye(reason="shutdown"),
    Welcome(nick="alice", rooms=["lobby"], features=["accounts", "read"], account=True, re="r3"),
    RoomInfo(
        room="lobby", topic="", members=["alice", "bob"], read=12, away={"bob": "lunch"}, re="j2"
    ),
    Members(room="lobby", members=["alice", "bob"], away={"bob": "lunch"}, re="w2"),
    DirectMessage(sender="alice", to="bob", text="while you were out", ts=TS, seq=3),
    DmHistoryPage(
        with_="bob",
        messages=[DirectMessage(sender="bob", to="alice", text="hi", ts=TS, seq=1)],
        more=False,
        re="h2",
    ),
    ReadMarker(room="lobby", seq=12),
    ReadMarker(with_="bob", seq=3),
    AwayChanged(nick="bob", text="lunch"),
    AwayChanged(nick="bob"),
    UploadReady(
        file="7f3a9c0e11d2b4a5",
        url="http://192.168.1.10:7779/u/Zt1xKq9Vn3bLw0Yc8RfH2sDa6GeJ4mPu",
        offset=0,
        re="u1",
    ),
    UploadReady(file="7f3a9c0e11d2b4a5", url="https://h:7779/u/t", offset=1_048_576),
    ChatMessage(room="lobby", seq=9, sender="alice", text="report.pdf (2.1 MB)", ts=TS, file=_FILE),
    ChatMessage(
        room="lobby",
        seq=3,
        sender="bob",
        text="old.zip (1.0 GB)",
        ts=TS,
        file=_FILE.model_copy(update={"expired": True}),
    ),
    DirectMessage(sender="alice", to="bob", text="report.pdf (2.1 MB)", ts=TS, file=_FILE),
    RoomInfo(room="lobby", topic="", members=["alice", "bob"], ops=["alice"], re="j3"),
    SearchResults(
        query="deploy*",
        results=[_MESSAGE],
        more=True,
        cursor="MTc2NDAwMDAwMDAwMDo3OmxvYmJ5",
        re="se1",
    ),
    SearchResults(query="nothing", results=[], more=False, re="se2"),
    SearchResults(
        query="lunch",
        results=[DirectMessage(sender="bob", to="alice", text="lunch?", ts=TS, seq=4)],
        more=False,
        with_="bob",
        re="se3",
    ),
    ModeChanged(room="lobby", nick="carol", op=True, by="alice", ts=TS),
    Kicked(room="lobby", nick="mallory", by="alice", reason="spam", ts=TS),
    Kicked(room="lobby", nick="mallory", by="alice", ts=TS),
    Banned(room="lobby", nick="mallory", by="alice", reason="spam again", ts=TS),
    Banned(room="lobby", nick="mallory", by="alice", removed=True, ts=TS),
    BanList(
        room="lobby",
        bans=[BanEntry(nick="mallory", by="alice", reason="spam again", ts=TS)],
        re="b3",
    ),
]
