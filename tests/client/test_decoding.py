"""Long server lines: a history page read a slice at a time must equal the whole decode."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chat_client
from chat_client.decoding import SLICE_ABOVE, PageInSlices, decode_line
from protocol import (
    ChatMessage,
    HistoryPage,
    ProtocolError,
    RoomInfo,
    RoomList,
    RoomSummary,
    encode,
)

TS = "2026-11-23T15:04:05.123Z"
PAD = "p" * 300  # makes a page of a few thousand messages longer than SLICE_ABOVE


def page_line(count: int, *, more: bool = False, re: str | None = "h1") -> bytes:
    messages = [
        ChatMessage(room="lobby", seq=n, sender="bob", text=f"{n} {PAD}", ts=TS)
        for n in range(1, count + 1)
    ]
    return encode(HistoryPage(room="lobby", messages=messages, more=more, re=re))[:-1]


def finish(page: PageInSlices, budget: int) -> HistoryPage | RoomList | None:
    while not page.finished:
        page.advance(budget)
    return page.page()


def test_short_lines_are_decoded_at_once() -> None:
    line = page_line(3)
    assert len(line) <= SLICE_ABOVE
    assert isinstance(decode_line(line), HistoryPage)


@pytest.mark.parametrize("budget", [1, 7, 1000, 10_000])
def test_a_long_page_read_in_slices_equals_the_whole_decode(budget: int) -> None:
    line = page_line(1200, more=True)
    assert len(line) > SLICE_ABOVE
    sliced = decode_line(line)
    assert isinstance(sliced, PageInSlices)
    assert finish(sliced, budget) == HistoryPage.model_validate_json(line)


@settings(max_examples=25, deadline=None)
@given(
    spaces=st.sampled_from(["", " ", "\n\t ", "\r\n"]),
    re=st.none() | st.text(st.characters(exclude_categories=["Cs"]), max_size=8),
    more=st.booleans(),
)
def test_whitespace_and_field_order_do_not_matter(spaces: str, re: str | None, more: bool) -> None:
    body = f",{spaces}".join(
        ChatMessage(room="r", seq=n, sender="b", text=PAD, ts=TS).model_dump_json(by_alias=True)
        for n in range(1, 1000)
    )
    tail = "" if re is None else f',{spaces}"re":{spaces}{json.dumps(re)}'
    text = (
        f'{spaces}{{"type":"history",{spaces}"room"{spaces}:"r","messages":{spaces}[{spaces}'
        f"{body}{spaces}],"
        f'"more":{json.dumps(more)}{tail}{spaces}}}{spaces}'
    )
    sliced = PageInSlices.start(text)
    assert sliced is not None
    page = finish(sliced, 100)
    assert page == HistoryPage.model_validate_json(text)


def test_a_long_room_list_read_in_slices_equals_the_whole_decode() -> None:
    rooms = [RoomSummary(room=f"room-{n}", topic=PAD[:40], members=n) for n in range(5000)]
    line = encode(RoomList(rooms=rooms, re="r1"))[:-1]
    assert len(line) > SLICE_ABOVE
    sliced = decode_line(line)
    assert isinstance(sliced, PageInSlices)
    assert finish(sliced, 700) == RoomList.model_validate_json(line)


def test_type_after_messages_or_another_type_falls_back_to_one_decode() -> None:
    line = page_line(1200)
    moved = b'{"room":"lobby","messages"' + line.split(b'"messages"', 1)[1][:-1]
    moved += b',"type":"history"}'
    assert isinstance(decode_line(moved), HistoryPage)
    members = [f"user{n}" for n in range(30_000)]
    room = encode(RoomInfo(room="big", topic="", members=members))[:-1]
    assert len(room) > SLICE_ABOVE
    assert isinstance(decode_line(room), RoomInfo)


def test_a_long_line_that_is_not_json_is_refused() -> None:
    with pytest.raises(ProtocolError):
        decode_line(b"{" + b"x" * (SLICE_ABOVE + 1))
    with pytest.raises(ProtocolError):
        decode_line(b"\xff" * (SLICE_ABOVE + 1))


def test_a_page_cut_short_keeps_what_was_read_and_says_more() -> None:
    line = page_line(3000)
    cut = line[: len(line) // 2]
    assert len(cut) > SLICE_ABOVE
    sliced = decode_line(cut)
    assert isinstance(sliced, PageInSlices)
    page = finish(sliced, 100)
    assert isinstance(page, HistoryPage) and page.more and page.re is None
    assert [m.seq for m in page.messages] == list(range(1, len(page.messages) + 1))
    assert len(page.messages) > 100


def test_extra_data_after_the_object_breaks_the_page() -> None:
    sliced = decode_line(page_line(1200, more=False) + b' {"x":1}')
    assert isinstance(sliced, PageInSlices)
    page = finish(sliced, 5000)
    assert isinstance(page, HistoryPage) and page.more


PURE = [
    "session.py",
    "requests.py",
    "says.py",
    "decoding.py",
    "paging.py",
    "tracking.py",
    "events.py",
]


@pytest.mark.parametrize("name", PURE)
def test_the_protocol_side_of_the_client_does_no_io(name: str) -> None:
    tree = ast.parse((Path(chat_client.__file__).parent / name).read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 0
    }
    assert not imported & {"asyncio", "socket", "ssl", "selectors", "textual"}, imported
