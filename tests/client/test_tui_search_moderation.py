"""The search pane and moderation in the TUI, with Pilot against a real server on
loopback (its in-memory store searches by scanning)."""

from __future__ import annotations

from typing import Any

from textual.content import Content
from textual.widgets import OptionList

from chat_client.tui.app import ChatApp
from chat_client.tui.screens import ChatScreen
from chat_client.tui.screens.search import SearchScreen
from chat_client.tui.widgets import MemberList
from chat_server.server import ChatServer
from tests.support import LineClient, open_client

from .tui_support import SIZE, joined, log_text, log_view, make_app, type_line, until

FEATURES = ["accounts", "reply", "edit", "react", "typing", "search", "moderation"]


async def member(port: int, nick: str, *rooms: str) -> LineClient:
    client = await open_client(port)
    welcome = await client.request({"type": "hello", "nick": nick, "features": FEATURES})
    assert welcome["type"] == "welcome", welcome
    for room in rooms:
        reply = await client.request({"type": "join", "room": room})
        assert reply["type"] == "room", reply
        await client.expect("joined", nick=nick, room=room)
    return client


async def say(client: LineClient, room: str, text: str) -> int:
    ack = await client.request({"type": "say", "room": room, "text": text})
    assert ack["type"] == "ack", ack
    seq: int = ack["seq"]
    return seq


def pane(app: ChatApp) -> SearchScreen:
    screen = app.screen
    assert isinstance(screen, SearchScreen)
    return screen


def hits_listing(app: ChatApp) -> OptionList:
    return app.screen.query_one("#search-hits", OptionList)


def row(app: ChatApp, index: int) -> Content:
    prompt = hits_listing(app).get_option_at_index(index).prompt
    assert isinstance(prompt, Content)
    return prompt


def marked(content: Content) -> list[str]:
    """The parts of a row drawn highlighted (the matching words)."""
    return [content.plain[s.start : s.end] for s in content.spans if "reverse" in str(s.style)]


async def test_search_pane_pages_highlights_and_opens_a_hit(server: ChatServer) -> None:
    bob = await member(server.port, "bob", "lobby", "dev")
    app = make_app(server.port, "alice", "lobby", "dev")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby", "dev"), "the joins")
        seqs = [await say(bob, "lobby", f"deploy step {n}") for n in range(1, 26)]
        await say(bob, "lobby", "something else")
        await say(bob, "dev", "[red]Deploys[/red] are on friday")
        await until(pilot, lambda: "something else" in log_text(app), "bob's lines")
        app.chat.switch_to("#lobby")
        await type_line(pilot, "/clear")  # the hit opened below is fetched with `around`

        await type_line(pilot, "/search deploy*")
        await until(pilot, lambda: isinstance(app.screen, SearchScreen), "the pane")
        screen = pane(app)
        await until(pilot, lambda: len(screen.hits) >= 20, "the first page")
        assert len(screen.hits) == 20  # the server's default page
        first = row(app, 0)
        assert first.plain.startswith("#dev ") and "bob: [red]Deploys[/red] are on friday" in (
            first.plain
        )
        assert marked(first) == ["Deploys"]
        assert marked(row(app, 1)) == ["deploy"]
        # Going down the list fetches the next page: 26 hits in all, newest first.
        await pilot.press("end")
        await until(pilot, lambda: len(screen.hits) == 26, "the second page")
        await pilot.pause(0.1)
        assert [hit.seq for hit in screen.hits if hit.room == "lobby"] == seqs[::-1]
        assert len({(hit.room, hit.seq) for hit in screen.hits}) == 26  # no repeats
        # Enter on the oldest opens it in its room, selected and on screen.
        listing = hits_listing(app)
        listing.highlighted = 25
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ChatScreen), "back in the chat")
        target = app.presenter.conversations.get("#lobby")
        await until(pilot, lambda: target.find(seqs[0]) is not None, "the hit, fetched")
        await pilot.pause(0.1)
        assert app.presenter.conversations.current == "#lobby"
        assert app.chat.selected is target.find(seqs[0])
        assert log_view(app).shows(target.find(seqs[0]))  # type: ignore[arg-type]

        # in:#room and from:nick narrow it; Ctrl+F opens the pane empty.
        await pilot.press("ctrl+f")
        await until(pilot, lambda: isinstance(app.screen, SearchScreen), "the pane again")
        await pilot.press(*"deploys in:#dev from:bob", "enter")
        screen = pane(app)
        await until(pilot, lambda: len(screen.hits) == 1, "one hit")
        assert screen.hits[0].room == "dev"
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ChatScreen), "closed")
    await bob.close()


async def test_an_op_kicks_and_bans_from_the_tui(server: ChatServer) -> None:
    app = make_app(server.port, "alice", "lobby")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby"), "the join")  # the first in: its op
        bob = await member(server.port, "bob", "lobby")
        members = app.chat.query_one("#members", MemberList)
        await until(pilot, lambda: members.option_count == 2, "bob in the list")
        assert members.is_op("alice") and not members.is_op("bob")
        await type_line(pilot, "/kick bob being [b]rude[/b]")
        kicked: dict[str, Any] = await bob.expect("kicked", nick="bob")
        assert (kicked["by"], kicked["reason"]) == ("alice", "being [b]rude[/b]")
        await until(
            pilot,
            lambda: "alice kicked bob from #lobby: being [b]rude[/b]" in log_text(app),
            "the kick line",
        )
        await until(pilot, lambda: members.option_count == 1, "bob gone from the list")
        await bob.request({"type": "join", "room": "lobby"})
        await until(pilot, lambda: members.option_count == 2, "bob back")
        registered = await bob.request({"type": "register", "password": "correct horse"})
        assert registered["type"] == "ack", registered  # ops are accounts
        await type_line(pilot, "/op bob")
        await bob.expect("mode", nick="bob", op=True)
        await until(pilot, lambda: members.is_op("bob"), "bob marked @")
        await type_line(pilot, "/deop bob")
        await until(pilot, lambda: not members.is_op("bob"), "bob not @ any more")
        await type_line(pilot, "/ban bob flooding")
        await bob.expect("banned", nick="bob")
        await until(pilot, lambda: "alice banned bob from #lobby: flooding" in log_text(app), "ban")
        refused = await bob.request({"type": "join", "room": "lobby"})
        assert refused["type"] == "error" and refused["code"] == "banned"
        await type_line(pilot, "/bans")
        await until(pilot, lambda: "  bob, by alice at" in log_text(app), "the ban list")
        await type_line(pilot, "/unban bob")
        await until(pilot, lambda: "alice lifted the ban on bob" in log_text(app), "unban")
        await bob.close()


async def test_being_kicked_says_so_and_moves_the_input_away(server: ChatServer) -> None:
    alice = await member(server.port, "alice", "ops")  # the first in #ops: its op
    app = make_app(server.port, "bob", "lobby", "ops")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, joined(app, "lobby", "ops"), "the joins")
        app.chat.switch_to("#ops")
        await alice.request({"type": "kick", "room": "ops", "nick": "bob", "reason": "off topic"})
        await until(pilot, lambda: app.presenter.conversations.current == "#lobby", "moved out")
        text = log_text(app)
        assert "alice kicked you from #ops: off topic" in text  # said where the input is now
        ops = app.presenter.conversations.get("#ops")
        assert not ops.joined
        assert "you were kicked from #ops by alice: off topic" in "\n".join(
            e.text for e in ops.entries
        )
        # Typing into the room one was kicked from is refused plainly, and nothing is sent.
        app.chat.switch_to("#ops")
        await type_line(pilot, "can I stay?")
        assert "not sent: alice kicked you from #ops: off topic" in log_text(app)
        assert not [m for m in await alice.quiet() if m.get("type") == "message"]
        # /join comes back (a kick is no ban).
        await type_line(pilot, "/join ops")
        await until(pilot, lambda: ops.joined and not ops.put_out, "back in #ops")
    await alice.close()
