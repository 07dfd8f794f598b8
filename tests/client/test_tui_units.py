"""Conversations, commands, completion and rendering, each on its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chat_client.tui import commands
from chat_client.tui.completion import Completer
from chat_client.tui.conversations import MAX_ENTRIES, Conversations
from chat_client.tui.entries import Entry, Kind, mentions
from chat_client.tui.reasons import plain_reason, reason_code
from chat_client.tui.render import DARK_NICKS, LIGHT_NICKS, entry_lines, nick_style
from chat_client.tui.screens.chat import split_text
from protocol import ErrorCode

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def chat(seq: int, text: str = "x", author: str = "bob") -> Entry:
    return Entry(Kind.CHAT, text, T0, author, seq)


def test_conversations_drop_repeats_and_keep_a_bound() -> None:
    conversation = Conversations().get("#lobby")
    assert conversation.append(chat(1)) and not conversation.append(chat(1))
    for seq in range(2, MAX_ENTRIES + 10):
        conversation.append(chat(seq))
    assert len(conversation.entries) == MAX_ENTRIES
    assert conversation.oldest_seq == 10 and not conversation.older_exhausted


def test_clearing_reloads_from_the_newest_seq() -> None:
    conversation = Conversations().get("#dev")
    for seq in range(1, 151):
        conversation.append(chat(seq))
    conversation.clear(Entry(Kind.MARK, "log cleared", T0))
    assert [e.kind for e in conversation.entries] == [Kind.MARK]
    assert conversation.oldest_seq == 151


def test_rename_keeps_the_order_and_the_view() -> None:
    conversations = Conversations()
    for key in ("#a", "@bob", "#b"):
        conversations.get(key)
    conversations.show("@bob")
    conversations.rename("@bob", "@bobby")
    assert list(conversations.by_key) == ["#a", "@bobby", "#b"]
    assert conversations.current == "@bobby"
    assert conversations.nth(3) == "#b" and conversations.nth(4) is None


def test_next_active_prefers_mentions() -> None:
    conversations = Conversations()
    for key in ("#a", "#b", "#c"):
        conversations.get(key)
    conversations.get("#b").unread = 1
    conversations.get("#c").unread = 1
    conversations.get("#c").mentioned = True
    assert conversations.next_active() == "#c"


def test_mentions_are_whole_words() -> None:
    assert mentions("ALICE, lunch?", "alice") and not mentions("malice", "alice")


class Recorder:
    """An `Actions` that writes down what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def join(self, room: str) -> None:
        self.calls.append(("join", room))

    def part(self, reason: str | None) -> None:
        self.calls.append(("part", reason))

    def open_dm(self, nick: str, text: str | None) -> None:
        self.calls.append(("dm", (nick, text)))

    def say(self, text: str, *, action: bool = False) -> None:
        self.calls.append(("say", (text, action)))

    def change_nick(self, nick: str) -> None:
        self.calls.append(("nick", nick))

    def topic(self, text: str | None) -> None:
        self.calls.append(("topic", text))

    def who(self, room: str | None) -> None:
        self.calls.append(("who", room))

    def list_rooms(self, prefix: str) -> None:
        self.calls.append(("rooms", prefix))

    def clear(self) -> None:
        self.calls.append(("clear", None))

    def show_help(self) -> None:
        self.calls.append(("help", None))

    def reconnect(self) -> None:
        self.calls.append(("reconnect", None))

    def quit(self, reason: str | None) -> None:
        self.calls.append(("quit", reason))

    def upload(self, path: str) -> None:
        self.calls.append(("upload", path))

    def download(self, name: str | None) -> None:
        self.calls.append(("download", name))

    def register(self) -> None:
        self.calls.append(("register", None))

    def forget_typed(self) -> None:
        self.calls.append(("forget", None))

    def set_away(self, text: str | None) -> None:
        self.calls.append(("away", text))

    def reply(self, seq: int, text: str) -> None:
        self.calls.append(("reply", (seq, text)))

    def edit(self, seq: int, text: str) -> None:
        self.calls.append(("edit", (seq, text)))

    def delete(self, seq: int) -> None:
        self.calls.append(("delete", seq))

    def react(self, seq: int, emoji: str) -> None:
        self.calls.append(("react", (seq, emoji)))

    def set_typing(self, on: bool) -> None:
        self.calls.append(("typing", on))

    def search(self, line: str) -> None:
        self.calls.append(("search", line))

    def set_op(self, nick: str, op: bool) -> None:
        self.calls.append(("op", (nick, op)))

    def kick(self, nick: str, reason: str | None) -> None:
        self.calls.append(("kick", (nick, reason)))

    def ban(self, nick: str, reason: str | None) -> None:
        self.calls.append(("ban", (nick, reason)))

    def unban(self, nick: str) -> None:
        self.calls.append(("unban", nick))

    def list_bans(self) -> None:
        self.calls.append(("bans", None))


@pytest.mark.parametrize(
    ("line", "call"),
    [
        ("/join #Dev", ("join", "dev")),
        ("/close", ("part", None)),
        ("/part see you", ("part", "see you")),
        ("/msg bob hi there", ("dm", ("bob", "hi there"))),
        ("/query bob", ("dm", ("bob", None))),
        ("/me waves", ("say", ("waves", True))),
        ("/names", ("who", None)),
        ("/who #Ops", ("who", "ops")),
        ("/topic", ("topic", None)),
        ("/rooms #De", ("rooms", "de")),
        ("/connect", ("reconnect", None)),
        ("/QUIT bye", ("quit", "bye")),
        ("/upload ~/My Files/report.pdf", ("upload", "~/My Files/report.pdf")),
        ("/download", ("download", None)),
        ("/save report.pdf", ("download", "report.pdf")),
        ("/register", ("register", None)),
        ("/away lunch, back at 2", ("away", "lunch, back at 2")),
        ("/away", ("away", None)),
        ("/reply 7 [b]yes[/b] indeed", ("reply", (7, "[b]yes[/b] indeed"))),
        ("/reply #7 ok", ("reply", (7, "ok"))),
        ("/edit 12 fixed text", ("edit", (12, "fixed text"))),
        ("/delete 12", ("delete", 12)),
        ("/react 3 🎉", ("react", (3, "🎉"))),
        ("/typing off", ("typing", False)),
        ("/search deploy in:#dev from:bob", ("search", "deploy in:#dev from:bob")),
        ("/op carol", ("op", ("carol", True))),
        ("/deop carol", ("op", ("carol", False))),
        ("/kick bob", ("kick", ("bob", None))),
        ("/kick bob spamming [links]", ("kick", ("bob", "spamming [links]"))),
        ("/ban bob flooding", ("ban", ("bob", "flooding"))),
        ("/unban bob", ("unban", "bob")),
        ("/bans", ("bans", None)),
    ],
)
def test_the_command_table(line: str, call: tuple[str, object]) -> None:
    recorder = Recorder()
    assert commands.run(recorder, line)
    assert recorder.calls == [call]


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("/nope", "unknown command /nope"),
        ("/join", "usage: /join ROOM"),
        ("/join bad room!", "a room name has no spaces"),
        ("/join b@d", "a room name is 1-64 characters"),
        ("/nick bad nick!", "a nick has no spaces"),
        ("/nick zoë", "a nick is 1-32 characters"),
        ("/msg zoë hi", "a nick is 1-32 characters"),
        ("/upload", "usage: /upload PATH"),
        ("/reply hello there", "needs a message number first"),
        ("/reply 7", "usage: /reply SEQ TEXT"),
        ("/edit 0 x", "needs a message number first"),
        ("/delete 3 now", "usage: /delete SEQ"),
        ("/react 3", "usage: /react SEQ EMOJI"),
        ("/typing maybe", "usage: /typing on|off"),
        ("/kick", "usage: /kick NICK"),
        ("/op two words", "a nick has no spaces"),
    ],
)
def test_command_mistakes_say_what_to_type(line: str, error: str) -> None:
    with pytest.raises(commands.CommandError, match=error):
        commands.run(Recorder(), line)


def test_a_password_typed_after_register_is_refused_and_forgotten() -> None:
    recorder = Recorder()
    with pytest.raises(commands.CommandError) as caught:
        commands.run(recorder, "/register hunter22hunter")
    assert "hunter22" not in str(caught.value)
    assert recorder.calls == [("forget", None)]


def test_plain_text_is_no_command() -> None:
    assert not commands.run(Recorder(), "hello /join")
    assert not commands.run(Recorder(), "//join is how you join")


def test_help_lists_every_command_once() -> None:
    text = "\n".join(commands.help_lines())
    assert all(f"/{spec.name} " in text for spec in commands.COMMANDS)
    assert "Alt+1..9" in text


def test_search_lines_and_what_they_mark() -> None:
    from chat_client.tui.search import SearchRequest, matches, parse_search

    assert parse_search('deploy "at noon" in:#Dev from:bob') == SearchRequest(
        'deploy "at noon"', "dev", "bob"
    )
    with pytest.raises(ValueError, match="usage"):
        parse_search("in:#dev")
    text = "Deploys: the deploy is at noon, redeploy later"
    assert [text[a:b] for a, b in matches(text, "deploy*")] == ["Deploys", "deploy"]
    assert [text[a:b] for a, b in matches(text, "deploy noon")] == ["deploy", "noon"]
    assert matches("[b]x[/b]", 'NEAR( col: ^ "') == []
    cafe = "Le Café ouvre: cafe, CAFÉS"
    assert [cafe[a:b] for a, b in matches(cafe, "cafe*")] == ["Café", "cafe", "CAFÉS"]
    assert [cafe[a:b] for a, b in matches(cafe, "Café")] == ["Café", "cafe"]


def completer(current: list[str], others: list[str], rooms: list[str]) -> Completer:
    return Completer(lambda: current + others, lambda: rooms)


def test_completion_cycles_and_always_adds_the_separator() -> None:
    done = completer(["bobby", "bob"], [], []).complete("bo", 2)
    assert done is not None and done.text == "bobby: "
    c = completer(["bobby", "bob"], [], [])
    first = c.complete("bo", 2)
    assert first is not None
    second = c.complete(first.text, first.cursor)
    assert second is not None and second.text == "bob: "
    mid = completer(["bobby"], [], []).complete("hi bo", 5)
    assert mid is not None and mid.text == "hi bobby "


def test_completion_of_rooms_and_commands() -> None:
    c = completer([], [], ["dev", "newroom", "news"])
    done = c.complete("/join ne", 8)
    assert done is not None and done.text == "/join #newroom "
    done = completer([], [], ["dev"]).complete("see #d", 6)
    assert done is not None and done.text == "see #dev "
    done = completer([], [], []).complete("/cl", 3)
    assert done is not None and done.text.startswith("/clear ")


def test_completion_puts_the_room_in_view_first() -> None:
    done = completer(["carol"], ["carla"], []).complete("car", 3)
    assert done is not None and done.text == "carol: "


def test_wrapped_lines_hang_under_the_text() -> None:
    entry = Entry(Kind.CHAT, "word " * 30, T0, "alice")
    lines = entry_lines(entry, 40)
    head = len(lines[0].plain) - len(lines[0].plain.lstrip())
    indent = len(lines[1].plain) - len(lines[1].plain.lstrip())
    assert head == 0 and indent == len(lines[0].plain.split("word")[0])
    assert all(len(line.plain) <= 40 for line in lines)


def test_links_become_hyperlinks_and_authors_are_literal() -> None:
    entry = Entry(Kind.CHAT, "see https://example.lan/a?b=1.", T0, "\x1b]0;pwn\x07")
    (line,) = entry_lines(entry, 100)
    assert "\x1b" not in line.plain and "\x07" not in line.plain
    links = [span.style for span in line.spans if "link" in str(span.style)]
    assert links and "https://example.lan/a?b=1" in str(links[0])


def test_nick_colours_suit_the_theme() -> None:
    assert nick_style("alice", dark=False).split()[1] in LIGHT_NICKS
    assert nick_style("alice").split()[1] in DARK_NICKS
    assert nick_style("alice") != nick_style("carol")


def test_long_text_is_split_at_spaces() -> None:
    text = " ".join(["abcdefghi"] * 1000)
    parts = split_text(text)
    assert all(len(p) <= 4000 for p in parts) and " ".join(parts) == text
    assert split_text("x" * 9000) == ["x" * 4000, "x" * 4000, "x" * 1000]


def test_reasons_in_plain_words() -> None:
    assert reason_code("wrong or missing password (auth_failed)") is ErrorCode.AUTH_FAILED
    assert reason_code("no code here") is None and reason_code("(nonsense)") is None
    assert plain_reason(ConnectionRefusedError(111, "Connect call failed")) == (
        "the server is not accepting connections"
    )
    assert plain_reason(TimeoutError()) == "the server did not answer"


def test_day_of_an_entry_is_local() -> None:
    assert chat(1).day == (T0).astimezone().date()
    assert Entry(Kind.NOTICE, "x").day is None
    assert (T0 + timedelta(days=1)).astimezone().date() != chat(1).day


def test_alt_digits_reach_the_app_as_keys() -> None:
    from textual._xterm_parser import XTermParser

    from chat_client.tui.keys import use_alt_digits

    use_alt_digits()
    for digit in "39":
        parser = XTermParser()
        tokens = [*parser.feed(f"\x1b{digit}"), *parser.feed("")]  # "" flushes a lone ESC
        keys = [getattr(token, "key", None) for token in tokens]
        assert keys == [f"alt+{digit}"]


def test_upload_completes_paths_and_folders_take_no_space() -> None:
    listing = {"re": ["report.pdf", "reports/"], "reports/": ["reports/q1.csv"]}
    c = Completer(lambda: ["rex"], lambda: [], lambda typed: listing.get(typed, []))
    first = c.complete("/upload re", 10)
    assert first is not None and first.text == "/upload report.pdf "
    second = c.complete(first.text, first.cursor)
    assert second is not None and second.text == "/upload reports/"
    inside = Completer(lambda: [], lambda: [], lambda typed: listing.get(typed, []))
    deeper = inside.complete(second.text, len(second.text))
    assert deeper is not None and deeper.text == "/upload reports/q1.csv "
    nick = c.complete("re", 2)
    assert nick is not None and nick.text == "rex: "  # not a path outside /upload


def test_the_keychain_says_when_there_is_no_keyring_and_keeps_nothing() -> None:
    from chat_client.tui import keychain

    with pytest.raises(keychain.KeychainUnavailable, match="no system keyring"):
        keychain.save("h", 7777, "alice", "correct horse")
    assert keychain.load("h", 7777, "alice") is None
    keychain.forget("h", 7777, "alice")  # nothing to do, no error


def test_the_keychain_keeps_one_password_per_server_and_nick() -> None:
    from chat_client.tui import keychain

    from .memory_keyring import memory_keyring

    with memory_keyring() as kept:
        keychain.save("h", 7777, "Alice", "correct horse")
        assert keychain.load("h", 7777, "alice") == "correct horse"
        assert keychain.load("h", 7778, "alice") is None
        keychain.forget("h", 7777, "alice")
        assert kept.passwords == {}
        keychain.forget("h", 7777, "alice")  # twice is fine


@pytest.mark.parametrize(
    ("sent", "shown", "cells"),
    [
        ("❤️ ok", "❤ ok", 4),  # tmux 3.3 draws ❤️ in 1 cell, Rich counted 2
        ("👍🏽 yes", "👍 yes", 6),  # tmux: 4 cells, Rich: 2
        ("שלום עולם", "שלום עולם", 9),
        ("a\u202eevil\u202c b", "a\ufffdevil\ufffd b", 9),  # no reordering of what follows
        ("中文 ok", "中文 ok", 7),
    ],
)
def test_display_text_has_one_width_in_every_terminal(sent: str, shown: str, cells: int) -> None:
    from rich.cells import cell_len

    from chat_client.tui.text import literal, visible

    assert visible(sent) == shown
    assert cell_len(shown) == cells == literal(sent).cell_length
