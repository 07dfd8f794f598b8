"""The codec: encode gives one compact JSON line, decode maps every bad line to its code."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

import protocol
from protocol import (
    AwayChanged,
    ChatMessage,
    ClientMessage,
    ErrorCode,
    GetHistory,
    Join,
    LineFramer,
    LineTooLong,
    ListRooms,
    Part,
    ProtocolError,
    Register,
    Say,
    SendDm,
    ServerHello,
    ServerMessage,
    SetTopic,
    Welcome,
    Who,
    decode_client_line,
    decode_server_line,
    encode,
    validation_error,
)
from tests.protocol.wire_samples import (
    CLIENT_SAMPLES,
    CLIENT_TYPES,
    SERVER_SAMPLES,
    SERVER_TYPES,
    union_members,
)

FP = ":".join(["AB"] * 32)


def _id(message: BaseModel) -> str:
    return type(message).__name__


def _refusal(line: bytes, **kwargs: Any) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        decode_client_line(line, **kwargs)
    return caught.value


def _nulls(value: object) -> list[object]:
    if value is None:
        return [value]
    if isinstance(value, dict):
        return [null for item in value.values() for null in _nulls(item)]
    if isinstance(value, list):
        return [null for item in value for null in _nulls(item)]
    return []


# --- round trips and the shape of an encoded line ------------------------------------------


def test_samples_cover_every_type() -> None:
    assert sorted({_type(m) for m in CLIENT_SAMPLES}) == sorted(set(CLIENT_TYPES))
    assert sorted({_type(m) for m in SERVER_SAMPLES}) == sorted(set(SERVER_TYPES))
    models = {type(m) for m in CLIENT_SAMPLES + SERVER_SAMPLES}  # both `history` replies too
    assert models >= set(union_members(ClientMessage)) | set(union_members(ServerMessage))


def _type(message: BaseModel) -> str:
    value = getattr(message, "type", None)
    assert isinstance(value, str)
    return value


@pytest.mark.parametrize("message", CLIENT_SAMPLES, ids=_id)
def test_client_message_round_trips(message: BaseModel) -> None:
    decoded = decode_client_line(encode(message)[:-1])
    assert type(decoded) is type(message)
    assert decoded == message


@pytest.mark.parametrize("message", SERVER_SAMPLES, ids=_id)
def test_server_message_round_trips(message: BaseModel) -> None:
    decoded = decode_server_line(encode(message)[:-1])
    assert type(decoded) is type(message)
    assert decoded == message


# The only nulls the contract asks for: the server hello's TLS fields when TLS is off,
# and an `away` event's text when its user is back.
CONTRACT_NULLS = {"hello": {"tls_port", "fingerprint"}, "away": {"text"}}


@pytest.mark.parametrize("message", CLIENT_SAMPLES + SERVER_SAMPLES, ids=_id)
def test_encode_gives_one_compact_utf8_line_without_nulls(message: BaseModel) -> None:
    line = encode(message)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    body = line[:-1]
    parsed = json.loads(body)
    assert isinstance(parsed, dict)
    assert parsed["type"] == _type(message)
    assert body == json.dumps(parsed, separators=(",", ":"), ensure_ascii=False).encode()
    if isinstance(message, ServerHello | AwayChanged):
        for key in CONTRACT_NULLS[parsed["type"]]:
            if parsed[key] is None:
                del parsed[key]
    assert _nulls(parsed) == []


def test_server_hello_says_null_when_tls_is_off() -> None:
    line = encode(ServerHello(server="s"))
    assert json.loads(line) == {
        "type": "hello",
        "server": "s",
        "protocol": 2,
        "motd": "",
        "password_required": False,
        "features": [],
        "tls_port": None,
        "fingerprint": None,
    }


def test_server_hello_v2_fields_round_trip() -> None:
    hello = ServerHello(server="s", features=["reply", "edit"], tls_port=7778, fingerprint=FP)
    assert decode_server_line(encode(hello)[:-1]) == hello
    assert b'"tls_port":7778' in encode(hello)


def test_a_version_1_hello_still_decodes() -> None:
    line = b'{"type":"hello","server":"old","protocol":1,"motd":"","password_required":false}'
    hello = decode_server_line(line)
    assert isinstance(hello, ServerHello)
    assert (hello.protocol, hello.features) == (1, [])
    assert (hello.tls_port, hello.fingerprint) == (None, None)


def test_client_features_are_kept_unknown_names_too() -> None:
    line = b'{"type":"hello","nick":"al","features":["reply","teleport"]}'
    register = decode_client_line(line)
    assert isinstance(register, Register)
    assert register.features == ["reply", "teleport"]


def test_more_than_32_features_is_invalid_message() -> None:
    names = json.dumps([f"f{i}" for i in range(33)])
    with pytest.raises(ProtocolError) as caught:
        decode_client_line(b'{"type":"hello","nick":"al","id":"h","features":%s}' % names.encode())
    assert caught.value.code is ErrorCode.INVALID_MESSAGE
    assert caught.value.re == "h"
    assert "features" in caught.value.message
    ok = json.dumps([f"f{i}" for i in range(32)]).encode()
    decode_client_line(b'{"type":"hello","nick":"al","features":%s}' % ok)


@pytest.mark.parametrize("name", ["x" * 65, "re\nply", "\x1b[31m", "\u009b"])
def test_a_long_or_control_feature_name_is_invalid_text(name: str) -> None:
    features = json.dumps([name]).encode()
    with pytest.raises(ProtocolError) as caught:
        decode_client_line(b'{"type":"hello","nick":"al","features":%s}' % features)
    assert caught.value.code is ErrorCode.INVALID_TEXT


def test_features_of_the_wrong_type_are_invalid_message() -> None:
    for bad in (b'"reply"', b"[1]", b"{}"):
        with pytest.raises(ProtocolError) as caught:
            decode_client_line(b'{"type":"hello","nick":"al","features":%s}' % bad)
        assert caught.value.code is ErrorCode.INVALID_MESSAGE


def test_encode_writes_non_ascii_raw_and_escapes_newlines() -> None:
    line = encode(Say(room="lobby", text="grüße 你好 🎉\nzwei\tdrei"))
    assert "grüße 你好 🎉".encode() in line
    assert b"\\u" not in line
    assert b"\\n" in line
    assert b"\\t" in line


def test_encode_uses_wire_names() -> None:
    parsed = json.loads(encode(ChatMessage(room="a", seq=1, sender="bob", text="x", ts="t")))
    assert parsed["from"] == "bob"
    assert "sender" not in parsed


def test_encode_leaves_out_unset_optional_fields() -> None:
    assert json.loads(encode(Join(room="lobby"))) == {"type": "join", "room": "lobby"}


# --- names and text ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        b'{"type":"join","room":"#lobby"}',
        b'{"type":"part","room":"#lobby"}',
        b'{"type":"say","room":"#lobby","text":"hi"}',
        b'{"type":"topic","room":"#lobby","topic":"t"}',
        b'{"type":"who","room":"#lobby"}',
        b'{"type":"history","room":"#lobby"}',
    ],
)
def test_leading_hash_is_stripped_from_room(line: bytes) -> None:
    message = decode_client_line(line)
    assert getattr(message, "room", None) == "lobby"


def test_leading_hash_is_stripped_when_building_a_model() -> None:
    assert Say(room="#dev-ops_2", text="x").room == "dev-ops_2"


@pytest.mark.parametrize("room", ["Lobby", "LOBBY", "#Lobby", "lobbY"])
def test_upper_case_room_is_refused_not_folded(room: str) -> None:
    error = _refusal(json.dumps({"type": "join", "room": room, "id": "u"}).encode())
    assert error.code is ErrorCode.INVALID_ROOM
    assert error.re == "u"


def test_newline_and_tab_are_allowed_in_text() -> None:
    say = decode_client_line(b'{"type":"say","room":"a","text":"one\\n\\ttwo\\n"}')
    assert isinstance(say, Say)
    assert say.text == "one\n\ttwo\n"
    dm = decode_client_line(b'{"type":"dm","to":"bob","text":"a\\tb\\nc"}')
    assert isinstance(dm, SendDm)
    assert dm.text == "a\tb\nc"


def test_text_length_counts_characters_not_bytes() -> None:
    text = "é" * 4000
    say = decode_client_line(json.dumps({"type": "say", "room": "a", "text": text}).encode())
    assert isinstance(say, Say)
    assert len(say.text) == 4000


def test_text_at_custom_limit_passes() -> None:
    line = b'{"type":"say","room":"a","text":"0123456789"}'
    assert isinstance(decode_client_line(line, max_text=10), Say)


def test_topic_may_be_empty_and_nick_may_be_32_characters() -> None:
    topic = decode_client_line(b'{"type":"topic","room":"a","topic":""}')
    assert isinstance(topic, SetTopic)
    assert topic.topic == ""
    nick = "N" * 32
    hello = decode_client_line(json.dumps({"type": "hello", "nick": nick}).encode())
    assert isinstance(hello, Register)
    assert hello.nick == nick


def test_unknown_extra_fields_are_ignored() -> None:
    line = b'{"type":"say","room":"a","text":"hi","colour":"red","meta":{"x":[1,null]},"id":"7"}'
    assert decode_client_line(line) == Say(room="a", text="hi", id="7")
    server = b'{"type":"joined","room":"a","nick":"bob","ts":"t","extra":[true],"v":2}'
    assert (
        encode(decode_server_line(server))
        == b'{"type":"joined","room":"a","nick":"bob","ts":"t"}\n'
    )


def test_whitespace_around_the_object_is_accepted() -> None:
    assert decode_client_line(b' \t{"type":"rooms"} ') == ListRooms()


def test_history_direction_and_default_limit() -> None:
    page = decode_client_line(b'{"type":"history","room":"a","after":5}')
    assert page == GetHistory(room="a", after=5, limit=50)


# --- every error a single line can produce -----------------------------------------------------

LONG_ID = "x" * 65
C = ErrorCode


def _case(
    name: str, line: bytes | dict[str, Any], code: ErrorCode, re: str | None, words: str
) -> Any:
    raw = line if isinstance(line, bytes) else json.dumps(line, ensure_ascii=False).encode()
    return pytest.param(raw, code, re, words, id=name)


def _say(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "say", "room": "a", "text": text, **extra}


# (name, line, code, re, words the message must contain)
REFUSALS = [
    _case("not-utf8", b'{"type":"rooms","id":"a\xff"}', C.BAD_ENCODING, None, "UTF-8"),
    _case("lone-continuation", b"\x80", C.BAD_ENCODING, None, "UTF-8"),
    _case(
        "overlong-utf8", b'{"type":"say","room":"a","text":"\xc0\xaf"}', C.BAD_ENCODING, None, ""
    ),
    _case(
        "utf8-surrogate",
        b'{"type":"say","room":"a","text":"\xed\xa0\x80"}',
        C.BAD_ENCODING,
        None,
        "",
    ),
    _case("truncated", b'{"type":"rooms","id":"a"', C.BAD_JSON, None, "JSON"),
    _case("single-quotes", b"{'type':'rooms'}", C.BAD_JSON, None, "JSON"),
    _case("trailing-comma", b'{"type":"rooms","id":"a",}', C.BAD_JSON, None, "JSON"),
    _case("two-objects", b'{"type":"rooms","id":"a"} {}', C.BAD_JSON, None, "JSON"),
    _case("plain-words", b"hello there", C.BAD_JSON, None, "JSON"),
    _case(
        "raw-cr-in-string",
        b'{"type":"say","room":"a","text":"a\rb","id":"a"}',
        C.BAD_JSON,
        None,
        "",
    ),
    _case("array", b'[{"type":"rooms"}]', C.INVALID_MESSAGE, None, "object"),
    _case("number", b"42", C.INVALID_MESSAGE, None, "object"),
    _case("string", b'"rooms"', C.INVALID_MESSAGE, None, "object"),
    _case("null", b"null", C.INVALID_MESSAGE, None, "object"),
    _case("no-type", {"id": "m1", "room": "a"}, C.INVALID_MESSAGE, "m1", "type"),
    _case("unknown-type", {"type": "shout", "id": "m2"}, C.INVALID_MESSAGE, "m2", "shout"),
    _case("type-not-string", {"type": 5, "id": "m3"}, C.INVALID_MESSAGE, "m3", "type"),
    _case(
        "server-type",
        {"type": "welcome", "nick": "a", "rooms": []},
        C.INVALID_MESSAGE,
        None,
        "type",
    ),
    _case(
        "since-string",
        {"type": "join", "room": "a", "since": "5", "id": "q"},
        C.INVALID_MESSAGE,
        "q",
        "since",
    ),
    _case(
        "since-float", b'{"type":"join","room":"a","since":5.0}', C.INVALID_MESSAGE, None, "since"
    ),
    _case(
        "since-bool", {"type": "join", "room": "a", "since": True}, C.INVALID_MESSAGE, None, "since"
    ),
    _case(
        "since-negative",
        {"type": "join", "room": "a", "since": -1},
        C.INVALID_MESSAGE,
        None,
        "since",
    ),
    _case("action-int", _say("x", action=1, id="b"), C.INVALID_MESSAGE, "b", "action"),
    _case("action-string", _say("x", action="yes"), C.INVALID_MESSAGE, None, "action"),
    _case("action-null", _say("x", action=None), C.INVALID_MESSAGE, None, "action"),
    _case("nick-int", {"type": "hello", "nick": 5, "id": "h"}, C.INVALID_MESSAGE, "h", "nick"),
    _case("room-list", {"type": "who", "room": ["a"]}, C.INVALID_MESSAGE, None, "room"),
    _case("missing-text", {"type": "say", "room": "a", "id": "z"}, C.INVALID_MESSAGE, "z", "text"),
    _case("missing-room", {"type": "join", "id": "z"}, C.INVALID_MESSAGE, "z", "room"),
    _case("missing-nick", {"type": "hello"}, C.INVALID_MESSAGE, None, "nick"),
    _case("missing-to", {"type": "dm", "text": "x"}, C.INVALID_MESSAGE, None, "to"),
    _case(
        "before-and-after",
        {"type": "history", "room": "a", "before": 9, "after": 2, "id": "k"},
        C.INVALID_MESSAGE,
        "k",
        "before",
    ),
    _case(
        "limit-zero",
        {"type": "history", "room": "a", "limit": 0, "id": "k"},
        C.INVALID_MESSAGE,
        "k",
        "limit",
    ),
    _case(
        "limit-501",
        {"type": "history", "room": "a", "limit": 501},
        C.INVALID_MESSAGE,
        None,
        "limit",
    ),
    _case(
        "limit-string",
        {"type": "history", "room": "a", "limit": "5"},
        C.INVALID_MESSAGE,
        None,
        "limit",
    ),
    _case("id-too-long", {"type": "rooms", "id": LONG_ID}, C.INVALID_MESSAGE, None, "id"),
    _case("id-int", {"type": "rooms", "id": 5}, C.INVALID_MESSAGE, None, "id"),
    _case(
        "password-too-long",
        {"type": "hello", "nick": "a", "password": "p" * 1025},
        C.INVALID_MESSAGE,
        None,
        "password",
    ),
    _case("empty-text", _say("", id="e"), C.INVALID_TEXT, "e", "text"),
    _case("text-4001", _say("x" * 4001), C.INVALID_TEXT, None, "4000"),
    _case("text-esc", _say("\x1b[31mred", id="c"), C.INVALID_TEXT, "c", "control"),
    _case("text-nul", _say("a\x00"), C.INVALID_TEXT, None, "control"),
    _case("text-del", _say("a\x7f"), C.INVALID_TEXT, None, "control"),
    _case("text-cr", _say("a\rb"), C.INVALID_TEXT, None, "control"),
    _case("text-nel", _say("a\x85b"), C.INVALID_TEXT, None, "control"),
    _case("text-csi", _say("\x9b31m"), C.INVALID_TEXT, None, "control"),
    _case("text-bel", _say("\x07"), C.INVALID_TEXT, None, "control"),
    _case("dm-text-esc", {"type": "dm", "to": "bob", "text": "\x1b"}, C.INVALID_TEXT, None, "text"),
    _case("dm-empty-text", {"type": "dm", "to": "bob", "text": ""}, C.INVALID_TEXT, None, "text"),
    _case(
        "topic-newline",
        {"type": "topic", "room": "a", "topic": "a\nb", "id": "t"},
        C.INVALID_TEXT,
        "t",
        "topic",
    ),
    _case(
        "topic-tab", {"type": "topic", "room": "a", "topic": "a\tb"}, C.INVALID_TEXT, None, "topic"
    ),
    _case(
        "topic-301",
        {"type": "topic", "room": "a", "topic": "t" * 301},
        C.INVALID_TEXT,
        None,
        "topic",
    ),
    _case(
        "part-reason-esc",
        {"type": "part", "room": "a", "reason": "\x1b"},
        C.INVALID_TEXT,
        None,
        "reason",
    ),
    _case(
        "part-reason-301",
        {"type": "part", "room": "a", "reason": "r" * 301},
        C.INVALID_TEXT,
        None,
        "reason",
    ),
    _case(
        "quit-reason-newline", {"type": "quit", "reason": "a\nb"}, C.INVALID_TEXT, None, "reason"
    ),
    _case(
        "client-del",
        {"type": "hello", "nick": "a", "client": "x\x7f"},
        C.INVALID_TEXT,
        None,
        "client",
    ),
    _case(
        "client-101",
        {"type": "hello", "nick": "a", "client": "c" * 101},
        C.INVALID_TEXT,
        None,
        "client",
    ),
    _case("ping-token-65", {"type": "ping", "token": "k" * 65}, C.INVALID_TEXT, None, "token"),
    _case("pong-token-cr", {"type": "pong", "token": "a\r"}, C.INVALID_TEXT, None, "token"),
    _case(
        "nick-space", {"type": "hello", "nick": "bad nick", "id": "n"}, C.INVALID_NICK, "n", "nick"
    ),
    _case("nick-empty", {"type": "hello", "nick": ""}, C.INVALID_NICK, None, "nick"),
    _case("nick-33", {"type": "hello", "nick": "n" * 33}, C.INVALID_NICK, None, "nick"),
    _case("nick-non-ascii", {"type": "hello", "nick": "ålice"}, C.INVALID_NICK, None, "nick"),
    _case("nick-change", {"type": "nick", "nick": "a.b", "id": "n2"}, C.INVALID_NICK, "n2", "nick"),
    _case("dm-to", {"type": "dm", "to": "bob!", "text": "x"}, C.INVALID_NICK, None, "to"),
    _case("room-upper", {"type": "join", "room": "Lobby", "id": "r"}, C.INVALID_ROOM, "r", "room"),
    _case("room-empty", {"type": "join", "room": ""}, C.INVALID_ROOM, None, "room"),
    _case("room-hash-only", {"type": "join", "room": "#"}, C.INVALID_ROOM, None, "room"),
    _case("room-two-hashes", {"type": "join", "room": "##a"}, C.INVALID_ROOM, None, "room"),
    _case("room-space", _say("x", room="a b"), C.INVALID_ROOM, None, "room"),
    _case("room-65", {"type": "who", "room": "r" * 65}, C.INVALID_ROOM, None, "room"),
    _case("history-room", {"type": "history", "room": "A"}, C.INVALID_ROOM, None, "room"),
]


@pytest.mark.parametrize(("line", "code", "re", "words"), REFUSALS)
def test_bad_line_is_refused_with_its_code(
    line: bytes, code: ErrorCode, re: str | None, words: str
) -> None:
    error = _refusal(line)
    assert error.code is code, error
    assert error.re == re
    assert words in error.message
    assert str(error) == error.message
    assert "Value error" not in error.message
    assert "https://" not in error.message


def test_every_single_line_code_is_reachable() -> None:
    single_line = {
        C.BAD_ENCODING,
        C.BAD_JSON,
        C.INVALID_MESSAGE,
        C.INVALID_TEXT,
        C.INVALID_NICK,
        C.INVALID_ROOM,
    }
    assert {case.values[1] for case in REFUSALS} == single_line


@pytest.mark.parametrize(
    ("field", "line"),
    [
        ("since", b'{"type":"join","room":"a","since":"5"}'),
        ("action", b'{"type":"say","room":"a","text":"x","action":1}'),
        ("text", b'{"type":"say","room":"a"}'),
        ("limit", b'{"type":"history","room":"a","limit":600}'),
        ("topic", b'{"type":"topic","room":"a","topic":"\\n"}'),
        ("room", b'{"type":"part","room":"A"}'),
        ("nick", b'{"type":"nick","nick":""}'),
    ],
)
def test_error_message_names_the_field_in_plain_words(field: str, line: bytes) -> None:
    message = _refusal(line).message
    assert message.startswith(f"field '{field}'"), message


def test_id_is_echoed_for_every_validation_error_but_not_for_unreadable_lines() -> None:
    assert _refusal(b'{"type":"say","room":"a","text":"","id":"x1"}').re == "x1"
    assert _refusal(b'{"type":"say","room":"A","text":"x","id":"x2"}').re == "x2"
    assert _refusal(b'{"type":"join","room":"a","since":"1","id":"x3"}').re == "x3"
    assert _refusal(b'{"id":"x4"}').re == "x4"
    assert _refusal(b'{"type":"rooms","id":"x5"').re is None
    assert _refusal(b'{"type":"rooms","id":"x6","x":"\xff"}').re is None


def test_text_over_a_custom_limit_is_invalid_text() -> None:
    line = b'{"type":"say","room":"a","text":"01234567890","id":"m"}'
    assert isinstance(decode_client_line(line), Say)
    error = _refusal(line, max_text=10)
    assert error.code is ErrorCode.INVALID_TEXT
    assert error.re == "m"
    assert "10" in error.message


def test_custom_limit_does_not_leak_into_later_calls() -> None:
    line = b'{"type":"say","room":"a","text":"01234567890"}'
    _refusal(line, max_text=10)
    assert isinstance(decode_client_line(line), Say)


def test_decoded_models_are_frozen() -> None:
    message = decode_client_line(b'{"type":"part","room":"a"}')
    assert isinstance(message, Part)
    with pytest.raises(ValueError, match="frozen"):
        message.room = "b"  # type: ignore[misc]


def test_who_round_trips_with_id() -> None:
    assert decode_client_line(b'{"type":"who","room":"a","id":"w"}') == Who(room="a", id="w")


# --- server lines --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b"\xfe", ErrorCode.BAD_ENCODING),
        (b"{", ErrorCode.BAD_JSON),
        (b'{"type":"say","room":"a","text":"x"}', ErrorCode.INVALID_MESSAGE),
        (b'{"type":"ack"}', ErrorCode.INVALID_MESSAGE),
        (
            b'{"type":"message","room":"a","seq":"1","from":"b","text":"x","ts":"t"}',
            C.INVALID_MESSAGE,
        ),
        (b"[]", ErrorCode.INVALID_MESSAGE),
    ],
)
def test_bad_server_line_is_refused(line: bytes, code: ErrorCode) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_server_line(line)
    assert caught.value.code is code


def test_server_message_reads_from_field() -> None:
    line = b'{"type":"message","room":"a","seq":3,"from":"bob","text":"hi","action":false,"ts":"t"}'
    message = decode_server_line(line)
    assert isinstance(message, ChatMessage)
    assert message.sender == "bob"
    assert message.seq == 3


# --- line_too_long belongs to the framer ---------------------------------------------------------


def test_line_too_long_comes_from_the_framer() -> None:
    out = LineFramer(max_line=8).feed(b"123456789\n")
    assert len(out) == 1
    marker = out[0]
    assert isinstance(marker, LineTooLong)
    assert isinstance(marker, ProtocolError)
    assert marker.code is ErrorCode.LINE_TOO_LONG
    assert marker.re is None
    assert "8" in marker.message


@pytest.mark.parametrize("request_id", ["k", 'quote " and \\ backslash', "é ü \u2028", ""])
@pytest.mark.parametrize("seq", [None, 0, 7, 10**12])
def test_encode_ack_matches_the_model(request_id: str, seq: int | None) -> None:
    assert protocol.encode_ack(request_id, seq) == protocol.encode(
        protocol.Ack(re=request_id, seq=seq)
    )


def test_format_ts_crosses_seconds_correctly() -> None:
    assert protocol.format_ts(1_764_000_000_999) == "2025-11-24T16:00:00.999Z"
    assert protocol.format_ts(1_764_000_001_000) == "2025-11-24T16:00:01.000Z"
    assert protocol.format_ts(1_764_000_000_123) == "2025-11-24T16:00:00.123Z"


def test_a_model_built_directly_is_refused_with_the_same_code_and_words() -> None:
    with pytest.raises(ValidationError) as built:
        Say(room="Lobby", text="hi")
    direct = validation_error(built.value)
    from_line = _refusal(b'{"type":"say","room":"Lobby","text":"hi"}')
    assert (direct.code, direct.message) == (from_line.code, from_line.message)
    with pytest.raises(ValidationError) as built:
        GetHistory(room="a", limit=0)
    assert validation_error(built.value).code is ErrorCode.INVALID_MESSAGE
    assert validation_error(built.value).message.startswith("field 'limit'")


def test_features_are_optional_in_both_hellos_and_in_welcome() -> None:
    hello = decode_client_line(b'{"type":"hello","nick":"a","features":["reply","nope"]}')
    assert isinstance(hello, Register) and hello.features == ["reply", "nope"]
    assert b"features" not in encode(Register(nick="a"))
    old = decode_server_line(b'{"type":"welcome","nick":"a","rooms":[]}')
    assert isinstance(old, Welcome) and old.features == []  # a version-1 server: none granted
    assert b'"features":[]' in encode(ServerHello(server="s"))  # a version-2 server says so


def test_more_than_32_features_is_invalid_message_with_re() -> None:
    names = json.dumps([f"f{n}" for n in range(33)]).encode()
    error = _refusal(b'{"type":"hello","nick":"a","features":' + names + b',"id":"r"}')
    assert (error.code, error.re) == (ErrorCode.INVALID_MESSAGE, "r")
    assert "features" in error.message
