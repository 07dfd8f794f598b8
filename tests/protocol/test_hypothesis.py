"""Property tests: decoding never fails in an undocumented way, and valid data round-trips."""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import protocol
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
    ErrorCode,
    ErrorReply,
    Feature,
    FileInfo,
    GetBans,
    GetHistory,
    HistoryPage,
    Join,
    Joined,
    Kick,
    Kicked,
    Left,
    LineFramer,
    LineTooLong,
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
    ProtocolError,
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
    decode_client_line,
    decode_server_line,
    encode,
    fingerprint_of,
)
from tests.protocol.wire_samples import CLIENT_TYPES, SERVER_TYPES

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

LINE_CODES = {
    ErrorCode.BAD_ENCODING,
    ErrorCode.BAD_JSON,
    ErrorCode.INVALID_MESSAGE,
    ErrorCode.INVALID_TEXT,
    ErrorCode.INVALID_NICK,
    ErrorCode.INVALID_ROOM,
}
CLIENT_CLASSES = (
    Register,
    Join,
    Part,
    Say,
    SendDm,
    ChangeNick,
    SetTopic,
    Who,
    ListRooms,
    GetHistory,
    RegisterAccount,
    MarkRead,
    SetAway,
    Ping,
    Pong,
    Quit,
    Upload,
)

# --- arbitrary input -------------------------------------------------------------------------

FIELD_NAMES = sorted(
    {"type", "id", "re", "nick", "room", "text", "action", "since", "before", "after", "limit"}
    | {"to", "topic", "reason", "token", "client", "password", "seq", "from", "ts", "rooms"}
    | {"members", "messages", "more", "code", "message", "server", "motd", "protocol"}
    | {"name", "size", "sha256", "file", "url", "offset", "expired"}
)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["lobby", "#lobby", "Lobby", "alice", "", "\x1b", "a\nb", "x" * 65])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
json_objects = st.builds(
    lambda kind, fields: {"type": kind, **fields},
    st.sampled_from([*CLIENT_TYPES, *SERVER_TYPES, "nope", 5]),
    st.dictionaries(st.sampled_from(FIELD_NAMES), json_values, max_size=6),
)


def _mutated(data: bytes, position: int, byte: int) -> bytes:
    position %= len(data) + 1
    return data[:position] + bytes([byte]) + data[position + 1 :]


line_like = (
    st.binary(max_size=200)
    | json_objects.map(lambda obj: json.dumps(obj, ensure_ascii=False).encode("utf-8", "replace"))
    | st.builds(
        _mutated,
        json_objects.map(lambda obj: json.dumps(obj).encode()),
        st.integers(min_value=0, max_value=400),
        st.integers(min_value=0, max_value=255),
    )
)


def _decode_or_refuse(decode: Any, line: bytes) -> BaseModel | None:
    try:
        result = decode(line)
    except ProtocolError as error:
        assert error.code in LINE_CODES
        assert error.message
        if error.code in (ErrorCode.BAD_ENCODING, ErrorCode.BAD_JSON):
            assert error.re is None
        return None
    assert isinstance(result, BaseModel)
    return result


@FAST
@given(line_like)
def test_client_decoder_returns_a_model_or_raises_protocol_error(line: bytes) -> None:
    message = _decode_or_refuse(decode_client_line, line)
    if message is not None:
        assert isinstance(message, CLIENT_CLASSES)
        # Whatever was accepted can be sent on and is read back the same.
        assert decode_client_line(encode(message)[:-1]) == message


@FAST
@given(line_like)
def test_server_decoder_returns_a_model_or_raises_protocol_error(line: bytes) -> None:
    message = _decode_or_refuse(decode_server_line, line)
    if message is not None:
        assert decode_server_line(encode(message)[:-1]) == message


@FAST
@given(json_objects)
def test_readable_id_is_echoed_on_validation_errors(obj: dict[str, Any]) -> None:
    obj["id"] = "req-1"
    try:
        decode_client_line(json.dumps(obj).encode())
    except ProtocolError as error:
        assert error.re == "req-1"


# --- valid messages --------------------------------------------------------------------------

# Lone surrogates cannot be written as UTF-8, so no valid line can hold them.
_chars = st.characters(exclude_categories=["Cs"])
# "Cc" is exactly C0, DEL and C1: what text and single-line fields refuse.
_text_chars = st.characters(exclude_categories=["Cs", "Cc"], include_characters="\n\t")
_line_chars = st.characters(exclude_categories=["Cs", "Cc"])
nicks = st.from_regex(r"[A-Za-z0-9_-]{1,32}", fullmatch=True)
rooms = st.from_regex(r"#?[a-z0-9_-]{1,64}", fullmatch=True)
texts = st.text(_text_chars, min_size=1, max_size=300)
long_texts = st.integers(min_value=1, max_value=4000).map(lambda n: ("é\n\t" * n)[:n])


def single_line(max_size: int) -> st.SearchStrategy[str]:
    return st.text(_line_chars, max_size=max_size)


ids = st.none() | st.text(_chars, max_size=64)
file_names = st.text(_line_chars.filter(lambda c: c not in "/\\"), min_size=1, max_size=255).filter(
    lambda name: not name.startswith(".")
)
hashes = st.from_regex(r"[0-9a-fA-F]{64}", fullmatch=True)
# Known names and unknown ones alike: a client may ask for features the server never heard of.
feature_names = st.sampled_from(list(Feature)).map(str) | single_line(32)
feature_lists = st.lists(feature_names, max_size=32)
fingerprints = st.binary(min_size=1, max_size=64).map(fingerprint_of)
seqs = st.integers(min_value=0, max_value=2**53)
limits = st.integers(min_value=1, max_value=500)
# 1-32 characters, none of them whitespace or control.
emojis = st.text(
    st.characters(exclude_categories=["Cs", "Cc", "Zs", "Zl", "Zp"], exclude_characters="\x85"),
    min_size=1,
    max_size=32,
).filter(lambda value: not any(char.isspace() for char in value))
typing_states = st.sampled_from(["active", "paused", "done"])

client_messages = st.one_of(
    st.builds(
        Register,
        nick=nicks,
        password=st.none() | st.text(_chars, max_size=50),
        client=st.none() | single_line(100),
        features=st.none() | feature_lists,
        account_password=st.none() | single_line(128),
        id=ids,
    ),
    st.builds(
        RegisterAccount,
        password=single_line(128).filter(lambda p: len(p) >= 8),
        id=ids,
    ),
    st.builds(MarkRead, room=rooms, seq=seqs, id=ids),
    st.builds(MarkRead, with_=nicks, seq=seqs, id=ids),
    st.builds(SetAway, text=st.none() | single_line(100), id=ids),
    st.builds(GetHistory, with_=nicks, before=st.none() | seqs, limit=limits, id=ids),
    st.builds(GetHistory, with_=nicks, after=seqs, id=ids),
    st.builds(Join, room=rooms, since=st.none() | seqs, id=ids),
    st.builds(Join, room=rooms, changed_since=seqs, id=ids),
    st.builds(Part, room=rooms, reason=st.none() | single_line(300), id=ids),
    st.builds(
        Say,
        room=rooms,
        text=texts | long_texts,
        action=st.booleans(),
        reply_to=st.none() | seqs,
        id=ids,
    ),
    st.builds(SendDm, to=nicks, text=texts, id=ids),
    st.builds(ChangeNick, nick=nicks, id=ids),
    st.builds(SetTopic, room=rooms, topic=single_line(300), id=ids),
    st.builds(Who, room=rooms, id=ids),
    st.builds(ListRooms, id=ids),
    st.builds(GetHistory, room=rooms, before=seqs, limit=limits, id=ids),
    st.builds(GetHistory, room=rooms, after=seqs, limit=limits, id=ids),
    st.builds(GetHistory, room=rooms, id=ids),
    st.builds(GetHistory, room=rooms, around=seqs, limit=limits, id=ids),
    st.builds(GetHistory, room=rooms, changed_since=seqs, limit=limits, id=ids),
    st.builds(EditMessage, room=rooms, seq=seqs, text=texts, id=ids),
    st.builds(DeleteMessage, room=rooms, seq=seqs, id=ids),
    st.builds(React, room=rooms, seq=seqs, emoji=emojis, remove=st.booleans(), id=ids),
    st.builds(Typing, room=rooms, state=typing_states, id=ids),
    st.builds(Typing, to=nicks, state=typing_states, id=ids),
    st.builds(Ping, token=st.none() | single_line(64), id=ids),
    st.builds(Pong, token=st.none() | single_line(64), id=ids),
    st.builds(Quit, reason=st.none() | single_line(300), id=ids),
    st.builds(
        Upload,
        room=rooms,
        name=file_names,
        size=st.integers(min_value=1, max_value=2**53),
        sha256=hashes,
        id=ids,
    ),
    st.builds(
        Upload,
        to=nicks,
        name=file_names,
        size=st.integers(min_value=1, max_value=2**53),
        sha256=hashes,
        id=ids,
    ),
    st.builds(
        Search,
        query=st.text(_line_chars, min_size=1, max_size=200).filter(str.strip),
        room=st.none() | rooms,
        sender=st.none() | nicks,
        limit=st.integers(min_value=1, max_value=100),
        before=st.none() | single_line(200),
        id=ids,
    ),
    st.builds(Search, query=st.just('NEAR( "x'), with_=nicks, id=ids),
    st.builds(SetOp, room=rooms, nick=nicks, remove=st.booleans(), id=ids),
    st.builds(Kick, room=rooms, nick=nicks, reason=st.none() | single_line(300), id=ids),
    st.builds(Ban, room=rooms, nick=nicks, reason=st.none() | single_line(300), id=ids),
    st.builds(Unban, room=rooms, nick=nicks, reason=st.none() | single_line(300), id=ids),
    st.builds(GetBans, room=rooms, id=ids),
)

# Server models hold plain strings; control characters must survive the JSON escaping.
anything = st.text(_chars, max_size=40)
replies = st.none() | anything
stamps = st.just("2026-11-23T15:04:05.123Z") | anything
file_infos = st.builds(
    FileInfo,
    id=anything,
    name=anything,
    size=seqs,
    sha256=anything,
    url=anything,
    expired=st.none() | st.just(True),
)
chat_messages = st.builds(
    ChatMessage,
    room=anything,
    seq=seqs,
    sender=anything,
    text=anything,
    action=st.booleans(),
    ts=stamps,
    rev=st.none() | seqs,
    reply_to=st.none() | seqs,
    edited=st.none() | stamps,
    deleted=st.none() | st.just(True),
    reactions=st.none() | st.dictionaries(anything, st.lists(anything, max_size=3), max_size=3),
    file=st.none() | file_infos,
)
server_messages = st.one_of(
    st.builds(
        ServerHello,
        server=anything,
        protocol=st.integers(0, 9),
        motd=anything,
        password_required=st.booleans(),
        features=st.lists(st.sampled_from(list(Feature)).map(str), unique=True),
        tls_port=st.none() | st.integers(1, 65535),
        fingerprint=st.none() | fingerprints,
    ),
    st.builds(
        Welcome,
        nick=anything,
        rooms=st.lists(anything, max_size=4),
        features=st.lists(anything, max_size=10),
        account=st.booleans(),
        re=replies,
    ),
    st.builds(
        RoomInfo, room=anything, topic=anything, members=st.lists(anything, max_size=4), re=replies
    ),
    st.builds(
        RoomInfo,
        room=anything,
        topic=anything,
        members=st.lists(anything, max_size=4),
        read=st.none() | seqs,
        away=st.none() | st.dictionaries(anything, anything, max_size=3),
        re=replies,
    ),
    st.builds(
        DirectMessage, sender=anything, to=anything, text=anything, ts=stamps, seq=st.none() | seqs
    ),
    st.builds(
        DmHistoryPage,
        with_=anything,
        messages=st.lists(
            st.builds(
                DirectMessage, sender=anything, to=anything, text=anything, ts=stamps, seq=seqs
            ),
            max_size=3,
        ),
        more=st.booleans(),
        re=replies,
    ),
    st.builds(ReadMarker, room=anything, seq=seqs),
    st.builds(ReadMarker, with_=anything, seq=seqs),
    st.builds(AwayChanged, nick=anything, text=st.none() | anything),
    st.builds(
        Members,
        room=anything,
        members=st.lists(anything, max_size=4),
        away=st.dictionaries(anything, anything, max_size=3),
        re=replies,
    ),
    chat_messages,
    st.builds(
        DirectMessage,
        sender=anything,
        to=anything,
        text=anything,
        ts=stamps,
        file=st.none() | file_infos,
    ),
    st.builds(Joined, room=anything, nick=anything, ts=stamps),
    st.builds(Left, room=anything, nick=anything, reason=st.none() | anything, ts=stamps),
    st.builds(NickChanged, old=anything, new=anything, ts=stamps),
    st.builds(TopicChanged, room=anything, topic=anything, by=anything, ts=stamps),
    st.builds(
        MessageEdited, room=anything, seq=seqs, text=anything, by=anything, ts=stamps, rev=seqs
    ),
    st.builds(MessageDeleted, room=anything, seq=seqs, by=anything, ts=stamps, rev=seqs),
    st.builds(
        ReactionChanged,
        room=anything,
        seq=seqs,
        emoji=anything,
        nick=anything,
        removed=st.booleans(),
        ts=stamps,
        rev=seqs,
    ),
    st.builds(TypingNotice, room=st.none() | anything, sender=anything, state=anything),
    st.builds(Members, room=anything, members=st.lists(anything, max_size=4), re=replies),
    st.builds(
        RoomList,
        rooms=st.lists(
            st.builds(RoomSummary, room=anything, topic=anything, members=st.integers(0, 10**6)),
            max_size=3,
        ),
        re=replies,
    ),
    st.builds(
        HistoryPage,
        room=anything,
        messages=st.lists(chat_messages, max_size=3),
        more=st.booleans(),
        re=replies,
    ),
    st.builds(Ack, re=anything, seq=st.none() | seqs),
    st.builds(ErrorReply, code=st.sampled_from(list(ErrorCode)), message=anything, re=replies),
    st.builds(ServerPing, token=st.none() | anything),
    st.builds(ServerPong, token=st.none() | anything, re=replies),
    st.builds(Bye, reason=anything),
    st.builds(UploadReady, file=anything, url=anything, offset=seqs, re=replies),
    st.builds(
        SearchResults,
        query=anything,
        results=st.lists(chat_messages, max_size=3),
        more=st.booleans(),
        cursor=st.none() | anything,
        re=replies,
    ),
    st.builds(
        SearchResults,
        query=anything,
        results=st.lists(
            st.builds(
                protocol.DirectMessage,
                sender=anything,
                to=anything,
                text=anything,
                ts=stamps,
                seq=st.none() | seqs,
            ),
            max_size=3,
        ),
        more=st.booleans(),
        with_=anything,
        re=replies,
    ),
    st.builds(ModeChanged, room=anything, nick=anything, op=st.booleans(), by=anything, ts=stamps),
    st.builds(
        Kicked, room=anything, nick=anything, by=anything, reason=st.none() | anything, ts=stamps
    ),
    st.builds(
        Banned,
        room=anything,
        nick=anything,
        by=anything,
        reason=st.none() | anything,
        removed=st.booleans(),
        ts=stamps,
    ),
    st.builds(
        BanList,
        room=anything,
        bans=st.lists(
            st.builds(BanEntry, nick=anything, by=anything, reason=st.none() | anything, ts=stamps),
            max_size=3,
        ),
        re=replies,
    ),
)


def _check_line(line: bytes) -> None:
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert b"\r" not in line


@FAST
@given(client_messages)
def test_valid_client_messages_round_trip(message: ClientMessage) -> None:
    line = encode(message)
    _check_line(line)
    assert decode_client_line(line[:-1]) == message


@FAST
@given(server_messages)
def test_valid_server_messages_round_trip(message: ServerMessage) -> None:
    line = encode(message)
    _check_line(line)
    assert decode_server_line(line[:-1]) == message


# --- the framer ------------------------------------------------------------------------------

MAX_LINE = 48
TOO_LONG = "<too long>"
line_bodies = st.binary(max_size=MAX_LINE + 16).filter(lambda b: b"\n" not in b and b"\r" not in b)
terminated = st.tuples(line_bodies, st.sampled_from([b"\n", b"\r\n"]))


@FAST
@given(st.lists(terminated, max_size=12), st.lists(st.integers(0, 2_000), max_size=10))
def test_framer_returns_exactly_the_non_blank_lines_in_order(
    lines: list[tuple[bytes, bytes]], cuts: list[int]
) -> None:
    data = b"".join(body + ending for body, ending in lines)
    points = sorted({cut % (len(data) + 1) for cut in cuts} | {0, len(data)})
    chunks = [data[a:b] for a, b in pairwise(points)]

    expected: list[bytes | str] = []
    for body, _ending in lines:
        if len(body) > MAX_LINE:
            expected.append(TOO_LONG)
        elif body.strip():
            expected.append(body)

    framer = LineFramer(max_line=MAX_LINE)
    got: list[bytes | str] = []
    for chunk in chunks:
        for item in framer.feed(chunk):
            got.append(TOO_LONG if isinstance(item, LineTooLong) else item)
        assert framer.buffered <= MAX_LINE + 1
    assert got == expected
    assert framer.buffered == 0


_REFUSED = "".join(chr(c) for c in [*range(0, 9), *range(11, 32), *range(0x7F, 0xA0)])


@given(
    text=st.text(
        alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters=_REFUSED),
        min_size=1,
        max_size=200,
    ),
    seq=st.integers(min_value=1, max_value=2**53),
    action=st.booleans(),
    rev=st.integers(min_value=1, max_value=2**53),
    reply_to=st.none() | st.integers(min_value=1, max_value=2**53),
)
def test_encode_chat_message_matches_the_model(
    text: str, seq: int, action: bool, rev: int, reply_to: int | None
) -> None:
    ts = "2026-11-24T03:47:44.574Z"
    model = protocol.ChatMessage(
        room="r-1",
        seq=seq,
        sender="Al_1",
        text=text,
        action=action,
        ts=ts,
        rev=rev,
        reply_to=reply_to,
    )
    fast = protocol.encode_chat_message("r-1", seq, "Al_1", text, action, ts, rev, reply_to)
    assert fast == protocol.encode(model)


@given(
    emoji=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=20),
    seq=st.integers(min_value=1, max_value=2**53),
    removed=st.booleans(),
    rev=st.integers(min_value=1, max_value=2**53),
)
def test_encode_reaction_matches_the_model(emoji: str, seq: int, removed: bool, rev: int) -> None:
    ts = "2026-11-24T03:47:44.574Z"
    model = protocol.ReactionChanged(
        room="r-1", seq=seq, emoji=emoji, nick="Al_1", removed=removed, ts=ts, rev=rev
    )
    fast = protocol.encode_reaction("r-1", seq, emoji, "Al_1", removed, ts, rev)
    assert fast == protocol.encode(model)
