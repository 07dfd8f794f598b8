"""The main screen: rooms on the left, the log in the middle, members on the right.

It turns network events (posted by the app's worker) into widget updates
through the `Presenter`, and runs what the user types: plain text is said in
the conversation in view, `/commands` go through the command table.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Static, TextArea

from protocol import ChatMessage, ErrorCode, SearchResults
from protocol.limits import MAX_TEXT_CHARS

from ...connection import ChatClient
from ...events import ChatClientError, Connected, RequestError
from .. import commands
from ..completion import Completer
from ..conversations import MAX_ENTRIES
from ..entries import Entry, Kind
from ..messages import NetworkEvents
from ..presenter import Changes, Presenter
from ..reasons import account_problem, reason_code
from ..search import SearchRequest
from ..text import literal
from ..transfers import Transfers, complete_path
from ..widgets import Composer, MemberList, MessageLog, RoomList, StatusBar
from .account import AccountLogin, RegisterScreen
from .connect import Field, Problem
from .message_actions import ConfirmDelete, ReactionPicker
from .search import SearchScreen

if TYPE_CHECKING:
    from ..app import ChatApp

__all__ = ["ChatScreen", "split_text"]

OLDER_PAGE = 100
BATCH_DRAW_INTERVAL = 0.5  # seconds between redraws while a long batch is applied
PARTIAL_TAIL = 200  # entries shown meanwhile
ROOMS_SHOWN = 30
NARROW, TINY = 90, 70  # columns: below them the member list goes, then the footer
READ_SYNC_DELAY = 0.3  # seconds: markers read meanwhile go to the server in one go
DM_PAGE = 50  # stored DMs fetched per conversation at start (a page that fits: paging.py)
TYPING_TICK = 1.0  # seconds between checks of who is still typing
AROUND_PAGE = 21  # messages fetched around a reply's original that is not in memory
GAP_FILL = 1000  # messages loaded between that page and the log; beyond, a line says so
HISTORY_PAGE_MAX = 500  # the most one `history` reply holds


def split_text(text: str, limit: int = MAX_TEXT_CHARS) -> list[str]:
    """Text over the server's limit as several messages, cut at a newline or space."""
    parts: list[str] = []
    while len(text) > limit:
        cut = max(text.rfind("\n", 0, limit), text.rfind(" ", 0, limit))
        cut = cut if cut > limit // 2 else limit
        parts.append(text[:cut])
        text = text[cut:].lstrip("\n ") if cut < limit else text[cut:]
    if text:
        parts.append(text)
    return parts


class ChatScreen(Screen[None]):
    """Implements `commands.Actions`; widgets get their data from here, never the network."""

    AUTO_FOCUS = "#composer"
    BINDINGS = [
        Binding("f2,alt+left", "step(-1)", "Prev"),
        Binding("f3,alt+right", "step(1)", "Next"),
        *(Binding(f"alt+{n}", f"go({n})", f"Window {n}", show=False) for n in range(1, 10)),
        Binding("alt+a", "next_active", "Next active", show=False),
        Binding("pageup", "page(-1)", "Scroll up", show=False, priority=True),
        Binding("pagedown", "page(1)", "Scroll down", show=False, priority=True),
        Binding("ctrl+end", "bottom", "Newest", show=False, priority=True),
        Binding("ctrl+l", "clear_log", "Clear"),
        Binding("f1", "help", "Help"),
        Binding("f4", "save_file", "Save file", show=False),  # each file line says so
        Binding("alt+up", "select(-1)", "Select message", show=False),
        Binding("alt+down", "select(1)", "Select next", show=False),
        Binding("alt+r", "reply", "Reply", show=False),
        Binding("alt+e", "edit", "Edit", show=False),
        Binding("alt+d", "delete", "Delete", show=False),
        Binding("alt+s", "react", "React", show=False),
        Binding("alt+j", "jump", "Original", show=False),
        Binding("escape", "unselect", "Cancel", show=False),
        Binding("ctrl+f", "search", "Search", show=False),
    ]

    def __init__(self, presenter: Presenter) -> None:
        super().__init__()
        self.presenter = presenter
        self._loading_older: set[str] = set()
        self._held: Changes | None = None  # changes of a long batch not drawn yet
        self._drawn_at = 0.0
        self._partial = False  # the log shows only the tail of a long batch
        self.completer = Completer(self._nick_candidates, self._room_candidates, complete_path)
        self.downloads: Path | None = None  # None: the platform's downloads directory
        self._read_sync_due = False
        self._dms_fetched = False  # the DMs remembered from the last run were fetched once
        self._dm_keys: frozenset[str] = frozenset()  # DM conversations last remembered
        self.selected: Entry | None = None  # the message the Alt keys act on
        self._mode: tuple[str, str, Entry] | None = None  # ("reply"|"edit", key, message)
        self._typing_line = ""  # what the line under the log says

    @property
    def chat_app(self) -> ChatApp:
        from ..app import ChatApp

        assert isinstance(self.app, ChatApp)
        return self.app

    @property
    def client(self) -> ChatClient | None:
        return self.chat_app.client

    # -- layout ----------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="topic")
        with Horizontal(id="body"):
            yield RoomList(id="rooms")
            with Vertical(id="center"):
                yield MessageLog(id="log")
                yield Static(id="more")
                yield Static(id="typing")
            yield MemberList(id="members")
        yield StatusBar(id="status")
        yield Transfers(id="transfers")
        yield Static(id="context")
        yield Composer(self.completer, placeholder="Type a message or /help", id="composer")
        yield Footer()

    @property
    def log_view(self) -> MessageLog:
        return self.query_one("#log", MessageLog)

    @property
    def composer(self) -> Composer:
        return self.query_one("#composer", Composer)

    def on_mount(self) -> None:
        self.query_one("#more").display = False
        self.query_one("#context").display = False
        self.composer.on_empty_up = self._edit_last
        self.composer.on_recall = self._leave_edit
        self.set_interval(TYPING_TICK, self._draw_typing)
        self._fit(self.app.size.width)
        self.app.theme_changed_signal.subscribe(self, lambda _: self.log_view.refresh_theme())
        self.redraw()

    def on_resize(self, event: events.Resize) -> None:
        self._fit(event.size.width)

    def _fit(self, width: int) -> None:
        self.set_class(width < NARROW, "-narrow")
        self.set_class(width < TINY, "-tiny")

    def on_click(self, event: events.Click) -> None:
        self.composer.focus()  # typing always goes to the composer

    # -- network events ----------------------------------------------------------

    def on_network_events(self, message: NetworkEvents) -> None:
        """Apply a slice of events and draw them, but in a batch longer than the log
        holds (a 100,000-message replay) show only the newest lines about twice a
        second and the whole log once at the end, so what would scroll out of the log
        is never wrapped."""
        try:
            changes = self.presenter.apply(message.events)
            if self._held is not None:
                self._held.merge(changes)
                changes = self._held
            if message.last:
                self._held = None
                changes.reload |= self._partial
                self._partial = False
                self.render_changes(changes)
            elif len(changes.appended) > MAX_ENTRIES:
                now = time.monotonic()
                if now - self._drawn_at > BATCH_DRAW_INTERVAL:
                    self._drawn_at = now
                    self._held = None
                    self._draw_partial(changes)
                else:
                    self._held = changes
            else:
                self._held = None
                self.render_changes(changes)
        finally:
            message.done.release()

    def _draw_partial(self, changes: Changes) -> None:
        current = self.presenter.conversations.current
        if changes.appended and current is not None:
            conversation = self.presenter.conversations.get(current)
            tail = list(conversation.entries)[-PARTIAL_TAIL:]
            self.log_view.show(tail, conversation.pending, conversation.line_seq)
            self._partial = True
        changes.appended = []
        self.render_changes(changes)

    def render_changes(self, changes: Changes) -> None:
        current = self.presenter.conversations.current
        conversation = self.presenter.conversations.by_key.get(current) if current else None
        if changes.reload:
            self.redraw()
        else:
            self.log_view.append(changes.appended)
            if changes.pending and conversation is not None:
                self.log_view.set_pending(conversation.pending)
            for entry in changes.updated:
                self.log_view.update_entry(entry)
        if changes.typing:
            self._draw_typing()
        if current in changes.put_out:
            self._moved_out(current)
        if changes.rooms or changes.appended:
            self._draw_rooms()
        if changes.details:
            self._draw_details()
        if changes.status:
            self.query_one("#status", StatusBar).show_status(self.presenter.status)
        if changes.ring:
            self.app.bell()
        if changes.final is not None:
            self._connection_lost(changes.final.reason)
        if changes.lagged and self.client is not None:
            self._catch_up(self.client)
        if changes.marker and conversation is not None and not changes.reload:
            self.log_view.set_read_line(conversation.line_seq)
        if changes.connected is not None and self.client is not None:
            self._connected(self.client, changes.connected)
        if changes.appended or changes.marker:
            self._check_seen()
        dm_keys = frozenset(c.key for c in self.presenter.conversations if not c.is_room)
        if dm_keys != self._dm_keys:
            self._dm_keys = dm_keys
            self.chat_app.remember_rooms()

    # -- version 2: read markers, stored DMs, away --------------------------------

    def _check_seen(self) -> None:
        """The newest line in view is seen (terminal focused, log at the bottom): mark it
        read, and tell the server soon (one `mark_read` per conversation for a burst)."""
        key = self.presenter.conversations.current
        if key is None or not self.app.app_focus or not self.log_view.following:
            return
        if self.presenter.seen(key):
            self._draw_rooms()
            self._sync_read_soon()

    def _sync_read_soon(self) -> None:
        if not self._read_sync_due:
            self._read_sync_due = True
            self.set_timer(READ_SYNC_DELAY, self._sync_read)

    def _sync_read(self) -> None:
        """Send `mark_read` for every conversation read further than the server knows."""
        self._read_sync_due = False
        client = self.client
        if client is None or not client.connected or "read" not in client.features:
            return
        account = self.presenter.account
        for conversation in self.presenter.conversations:
            if conversation.read_seq <= conversation.synced_seq:
                continue
            if conversation.is_room and conversation.joined:
                request = client.mark_read(conversation.read_seq, room=conversation.name)
            elif not conversation.is_room and account:
                request = client.mark_read(conversation.read_seq, with_=conversation.name)
            else:
                continue
            conversation.synced_seq = conversation.read_seq
            self.run_worker(_quietly(request), group="read")

    def focus_changed(self, focused: bool) -> None:
        """The terminal gained focus (what is in view is seen) or lost it (the read line
        moves to where reading stopped, so what comes meanwhile is below it)."""
        if focused:
            self._check_seen()
        else:
            self.render_changes(self.presenter.blurred())

    def _connected(self, client: ChatClient, event: Connected) -> None:
        """(Re)connected: fetch the stored DMs, and be away again if we were."""
        if event.account:
            self._fetch_dms(client)
        away = self.presenter.status.away
        if away is not None:
            self.run_worker(_quietly(client.away(away)), group="away")

    @work(group="dms")
    async def _fetch_dms(self, client: ChatClient) -> None:
        """Every DM conversation: its newest stored page, or what came after the newest shown."""
        first, self._dms_fetched = not self._dms_fetched, True
        for conversation in self.presenter.conversations:
            if conversation.is_room:
                continue
            after = conversation.newest_seq
            while True:
                try:
                    if after is None:
                        page = await client.dm_history(conversation.name, limit=DM_PAGE)
                    else:
                        page = await client.dm_history(conversation.name, after=after)
                except RequestError as exc:
                    # At start the empty DM conversations are the remembered ones: one
                    # whose partner is no account any more (deleted) is dropped.
                    gone = exc.code is ErrorCode.NO_SUCH_USER and not conversation.entries
                    if gone and first and conversation.key != self.presenter.conversations.current:
                        self.presenter.conversations.remove(conversation.key)
                        self._draw_rooms()
                    break  # a guest (their DMs are not stored), or no account any more
                except ChatClientError:
                    break  # the connection dropped: the next Connected fetches again
                self.render_changes(self.presenter.dm_page(page))
                if after is None or not page.more or not page.messages:
                    break
                after = page.messages[-1].seq
        self.chat_app.remember_rooms()

    def set_away(self, text: str | None, *, auto: bool = False) -> None:
        """`/away [TEXT]` (and auto-away): be away with TEXT, or back without it."""
        self.chat_app.auto_away = auto and text is not None
        client = self._need_client()
        if client is not None:
            self._set_away(client, text, auto)

    @work(group="away")
    async def _set_away(self, client: ChatClient, text: str | None, auto: bool) -> None:
        if not await self._request(client.away(text)):
            return
        status = self.presenter.status
        was_away, status.away = status.away is not None, text or None
        self.query_one("#status", StatusBar).show_status(status)
        if text and auto:
            self.notice(f"you are away ({text}): any key brings you back")
        elif text:
            self.notice(f"you are away: {text} (/away alone: back)")
        elif was_away:
            self.notice("you are back")

    def register(self) -> None:
        """`/register`: the password is asked twice in a masked prompt, never in the line."""
        client = self._need_client()
        if client is None:
            return
        nick = client.nick

        def answered(login: AccountLogin | None) -> None:
            if login is not None:
                self._register(client, nick, login)

        self.app.push_screen(RegisterScreen(nick), answered)

    @work(group="requests")
    async def _register(self, client: ChatClient, nick: str, login: AccountLogin) -> None:
        try:
            await client.register(login.password)
        except (RequestError, ChatClientError) as exc:
            self._failed(exc)
            return
        self.notice(
            f"{nick} is now an account: it logs in with this password, from several "
            "terminals at once, and DMs between accounts wait for you while you are away"
        )
        self.chat_app.registered(login)

    def forget_typed(self) -> None:
        """The line just typed held a secret: it leaves the input history."""
        self.composer.forget_last()

    @work(group="history")
    async def _catch_up(self, client: ChatClient) -> None:
        """After dropped events: the messages after the newest shown, and the members."""
        for conversation in self.presenter.conversations:
            if not conversation.is_room or not conversation.joined:
                continue
            try:
                newest = conversation.newest_seq or 0
                page = await client.history(conversation.name, after=newest, limit=OLDER_PAGE)
                members = await client.who(conversation.name)
            except ChatClientError:
                continue
            changes = self.presenter.apply(page.messages)
            conversation.set_members(members)
            changes.details = True
            self.render_changes(changes)

    def _connection_lost(self, reason: str) -> None:
        if self.chat_app.quitting:
            return
        code = reason_code(reason)
        request = self.chat_app.request
        if (
            code is not None
            and request is not None
            and account_problem(code, request.account_password is not None)
        ):
            self.chat_app.ask_account_password(request, RequestError(code, reason))
            return
        if code is ErrorCode.AUTH_FAILED:
            field: Field = "password"
        elif code in (ErrorCode.INVALID_NICK, ErrorCode.NICK_TAKEN):
            field = "nick"
        else:
            field = "address"
        self.chat_app.ask_where(Problem(reason, field))

    # -- drawing -------------------------------------------------------------

    def redraw(self, keep: Entry | None = None) -> None:
        """Draw the conversation in view from scratch (with `keep` in view, if given)."""
        current = self.presenter.conversations.current
        if current is None:
            self.log_view.show([])
        else:
            conversation = self.presenter.show(current)
            self.log_view.show(
                conversation.entries, conversation.pending, conversation.line_seq, keep=keep
            )
        self._draw_rooms()
        self._draw_details()
        self.query_one("#status", StatusBar).show_status(self.presenter.status)
        self._check_seen()

    def _draw_rooms(self) -> None:
        conversations = self.presenter.conversations
        self.query_one("#rooms", RoomList).update_rooms(list(conversations), conversations.current)

    def _draw_details(self) -> None:
        current = self.presenter.conversations.current
        conversation = self.presenter.conversations.by_key.get(current) if current else None
        topic = self.query_one("#topic", Static)
        members = self.query_one("#members", MemberList)
        if conversation is None:
            topic.update("")
            members.update_members([])
            return
        title = literal(conversation.key, "bold", single_line=True)
        if conversation.topic:
            title += Content(" — ") + literal(conversation.topic, single_line=True)
        topic.update(title)
        members.update_members(
            conversation.members if conversation.is_room else [],
            self.presenter.away,
            conversation.ops,
        )

    def switch_to(self, key: str) -> None:
        if key != self.presenter.conversations.current:
            self._typing_done()
            self._select(None)
            self._set_mode(None)
        self.presenter.show(key)
        self.redraw()
        self._draw_typing()

    def notice(self, text: str, kind: Kind = Kind.NOTICE, key: str | None = None) -> None:
        self.render_changes(self.presenter.notice(text, kind, key=key))

    @on(MessageLog.Following)
    def _following(self, event: MessageLog.Following) -> None:
        self.presenter.at_bottom = event.following
        if event.following:
            self._check_seen()
        more = self.query_one("#more", Static)
        more.display = not event.following
        below = f"{event.unseen} new below" if event.unseen else "scrolled up"
        more.update(Content.styled(f"── {below} · Ctrl+End or click for the newest ──", "bold"))

    @on(events.TextSelected)
    def _copy_selection(self) -> None:
        """A mouse selection in the log goes to the clipboard, as in a terminal."""
        text = self.get_selected_text()
        if text:
            self.app.copy_to_clipboard(text)
            self.notify(f"copied {len(text):,} characters", timeout=2, markup=False)

    @on(events.Click, "#more")
    def _more_clicked(self) -> None:
        self.action_bottom()

    # -- typing --------------------------------------------------------------

    @on(Composer.Submitted)
    def _submitted(self, event: Composer.Submitted) -> None:
        text = event.text
        self._typing_done()
        try:
            if commands.run(self, text):
                return
        except commands.CommandError as exc:
            self.notice(str(exc), Kind.ERROR)
            return
        text = text.removeprefix("/") if text.startswith("//") else text
        mode, self._mode = self._mode, None
        self._set_mode(None)
        if mode is not None and mode[1] == self.presenter.conversations.current:
            what, _, message = mode
            if what == "edit" and message.seq is not None:
                self.edit(message.seq, text)
                return
            if what == "reply" and message.seq is not None:
                self.reply(message.seq, text)
                return
        self.say(text)

    # -- typing notices (version 2) ------------------------------------------

    @on(TextArea.Changed, "#composer")
    def _composer_changed(self, event: TextArea.Changed) -> None:
        """Tell the conversation in view that we type (`ChatClient.composing`: `active` at
        most every 3 s, `paused` once the keys stop, `done` once the input is empty).
        Never for a slash command."""
        text = self.composer.text
        if not text.strip() or (text.startswith("/") and not text.startswith("//")):
            self._typing_done()
            return
        if self._mode is not None and self._mode[0] == "edit":
            return  # changing a message already sent is not typing one
        key = self.presenter.conversations.current
        client = self.client
        if key is None or client is None or not self._may_send_typing(client):
            return
        conversation = self.presenter.conversations.by_key.get(key)
        if conversation is None:
            return
        if conversation.is_room:
            client.composing(text, room=conversation.name)
        else:
            client.composing(text, to=conversation.name)

    def _may_send_typing(self, client: ChatClient) -> bool:
        return self.chat_app.send_typing and client.connected and "typing" in client.features

    def _typing_done(self) -> None:
        client = self.client
        if client is not None:
            client.stopped_composing()

    def _draw_typing(self) -> None:
        """The line under the log; checked every second (expiry), drawn only on a change."""
        line = self.presenter.typing_line(self.presenter.conversations.current)
        if line != self._typing_line:
            self._typing_line = line
            self.query_one("#typing", Static).update(literal(line, single_line=True))

    def set_typing(self, on: bool) -> None:
        """`/typing on|off`: whether others are told while we type (saved)."""
        if not on:
            self._typing_done()
        self.chat_app.set_send_typing(on)
        self.notice("others are told while you type" if on else "others are not told any more")

    # -- search and moderation (version 2) ---------------------------------------

    def action_search(self) -> None:
        self.search("")

    def search(self, line: str) -> None:
        """`/search WORDS [in:#room] [from:nick]` (or Ctrl+F): the results pane."""
        client = self._need_client()
        if client is None:
            return
        if "search" not in client.features:
            self.notice("this server does not offer search", Kind.ERROR)
            return

        async def fetch(request: SearchRequest, cursor: str | None) -> SearchResults:
            return await client.search(
                request.query, room=request.room, sender=request.sender, before=cursor
            )

        def chosen(hit: ChatMessage | None) -> None:
            if hit is not None:
                self.open_message(hit.room, hit.seq)

        self.app.push_screen(SearchScreen(fetch, line), chosen)

    def open_message(self, room: str, seq: int) -> None:
        """Show message `seq` of `room`, centred and selected (fetched if not in memory)."""
        key = "#" + room
        conversation = self.presenter.conversations.by_key.get(key)
        client = self._need_client()
        if client is None:
            return
        if conversation is None or not conversation.joined:
            self._join_then_open(client, room, seq)
            return
        self.switch_to(key)
        found = conversation.find(seq)
        if found is not None:
            self._select(found)
            self.log_view.scroll_to_entry(found)
        else:
            self._load_around(client, key, seq)

    @work(group="requests")
    async def _join_then_open(self, client: ChatClient, room: str, seq: int) -> None:
        if await self._request(client.join(room)):
            self.switch_to("#" + room)
            self.chat_app.remember_rooms()
            self.open_message(room, seq)

    def _moved_out(self, key: str) -> None:
        """We were kicked or banned from the room in view: the input goes elsewhere."""
        conversation = self.presenter.conversations.get(key)
        self._set_mode(None)
        self._select(None)
        others = [c.key for c in self.presenter.conversations if c.key != key and not c.put_out]
        if others:
            self.switch_to(others[0])
            self.notice(f"{conversation.put_out} (its log stays in the list)", Kind.ERROR)
        self._draw_rooms()

    def _room_in_view(self, what: str) -> str | None:
        key = self.presenter.conversations.current
        if key is None or not key.startswith("#"):
            self.notice(f"{what} works in a room: open one first", Kind.ERROR)
            return None
        return key[1:]

    def set_op(self, nick: str, op: bool) -> None:
        room = self._room_in_view("/op" if op else "/deop")
        client = self._need_client() if room else None
        if room and client is not None:
            self._run(client.op(room, nick) if op else client.deop(room, nick))

    def kick(self, nick: str, reason: str | None) -> None:
        room = self._room_in_view("/kick")
        client = self._need_client() if room else None
        if room and client is not None:
            self._run(client.kick(room, nick, reason))

    def ban(self, nick: str, reason: str | None) -> None:
        room = self._room_in_view("/ban")
        client = self._need_client() if room else None
        if room and client is not None:
            self._run(client.ban(room, nick, reason))

    def unban(self, nick: str) -> None:
        room = self._room_in_view("/unban")
        client = self._need_client() if room else None
        if room and client is not None:
            self._run(client.unban(room, nick))

    def list_bans(self) -> None:
        room = self._room_in_view("/bans")
        client = self._need_client() if room else None
        if room and client is not None:
            self._list_bans(client, room)

    @work(group="requests")
    async def _list_bans(self, client: ChatClient, room: str) -> None:
        try:
            bans = await client.bans(room)
        except (RequestError, ChatClientError) as exc:
            self._failed(exc)
            return
        if not bans:
            self.notice(f"nobody is banned from #{room}")
            return
        self.notice(f"banned from #{room} ({len(bans)}):")
        for ban in bans:
            reason = f": {ban.reason}" if ban.reason else ""
            self.notice(f"  {ban.nick}, by {ban.by} at {ban.ts[:16].replace('T', ' ')}{reason}")

    # -- acting on a message (version 2) ---------------------------------------

    def _messages(self) -> list[Entry]:
        key = self.presenter.conversations.current
        conversation = self.presenter.conversations.by_key.get(key or "")
        if conversation is None:
            return []
        return [e for e in conversation.entries if e.is_message and e.seq is not None]

    def _select(self, entry: Entry | None) -> None:
        old, self.selected = self.selected, entry
        if old is not None and old is not entry:
            old.selected = False
            self.log_view.update_entry(old)
        if entry is not None:
            entry.selected = True
            self.log_view.update_entry(entry)
            if not self.log_view.shows(entry):
                self.log_view.scroll_to_entry(entry)

    def action_select(self, step: int) -> None:
        messages = self._messages()
        if not messages:
            return
        if self.selected is None or self.selected not in messages:
            if step > 0:
                return
            target = messages[-1]
        else:
            index = messages.index(self.selected) + step
            if index >= len(messages):
                self._select(None)
                self.log_view.jump_to_bottom()
                return
            target = messages[max(0, index)]
        self._select(target)

    def action_unselect(self) -> None:
        if self._mode is not None:
            self._set_mode(None)
            self.composer.load_text("")
        self._select(None)

    @on(MessageLog.Clicked)
    def _clicked(self, event: MessageLog.Clicked) -> None:
        self._select(None if event.entry is self.selected else event.entry)

    def _target(self, action: str) -> tuple[str, Entry] | None:
        """The room in view and the selected message in it, or say why not."""
        key = self.presenter.conversations.current
        entry = self.selected
        if key is None or not key.startswith("#"):
            self.notice(f"{action} works on room messages", Kind.ERROR)
            return None
        if entry is None or entry.seq is None:
            self.notice(f"select a message first (Alt+Up, or click it), then {action}")
            return None
        return key, entry

    def _set_mode(self, mode: tuple[str, str, Entry] | None) -> None:
        self._mode = mode
        context = self.query_one("#context", Static)
        context.display = mode is not None
        if mode is None:
            return
        what, _, entry = mode
        preview = entry.text.replace("\n", " ")
        label = "replying to" if what == "reply" else f"editing message {entry.seq}:"
        context.update(
            Content.assemble(
                (f"{label} ", "bold"),
                literal(
                    f"{entry.author}: {preview}" if what == "reply" else preview, single_line=True
                ),
                ("  (Esc cancels)", "dim"),
            )
        )

    def action_reply(self) -> None:
        target = self._target("reply")
        if target is None:
            return
        key, entry = target
        if entry.deleted:
            self.notice("that message was deleted", Kind.ERROR)
            return
        self._set_mode(("reply", key, entry))
        self.composer.focus()

    def action_edit(self) -> None:
        target = self._target("edit")
        if target is not None:
            self._start_edit(*target)

    def _edit_last(self) -> bool:
        """Up in an empty input: edit our last message in the room in view."""
        key = self.presenter.conversations.current
        entry = self.presenter.last_own(key) if key is not None else None
        if key is None or entry is None:
            return False
        self._select(entry)
        self._start_edit(key, entry)
        return True

    def _leave_edit(self) -> bool:
        """Up/Down browse the input history: an edit under way ends (True)."""
        if self._mode is None or self._mode[0] != "edit":
            return False
        self._set_mode(None)
        return True

    def _start_edit(self, key: str, entry: Entry) -> None:
        if entry.author.lower() != self.presenter.nick.lower() or entry.deleted:
            self.notice("you can edit only your own messages", Kind.ERROR)
            return
        self._set_mode(("edit", key, entry))
        self.prefill(entry.text)

    def action_delete(self) -> None:
        target = self._target("delete")
        if target is not None:
            self._confirm_delete(*target)

    def action_react(self) -> None:
        target = self._target("react")
        if target is None:
            return
        key, entry = target

        def picked(emoji: str | None) -> None:
            if emoji:
                self._toggle_reaction(key, entry, emoji)

        self.app.push_screen(ReactionPicker(entry), picked)

    def action_jump(self) -> None:
        """Go to the original of the selected reply, loading it `around` if not in memory."""
        target = self._target("jump to the original")
        if target is None:
            return
        key, entry = target
        if entry.reply_to is None:
            self.notice("the selected message is not a reply")
            return
        original = self.presenter.conversations.get(key).find(entry.reply_to)
        if original is not None:
            self._select(original)
            self.log_view.scroll_to_entry(original)
            return
        client = self._need_client()
        if client is not None:
            self._load_around(client, key, entry.reply_to)

    @work(group="history")
    async def _load_around(self, client: ChatClient, key: str, seq: int) -> None:
        try:
            page = await client.history_around(key[1:], seq, limit=AROUND_PAGE)
        except (RequestError, ChatClientError) as exc:
            self._failed(exc)
            return
        self.presenter.around_page(key, page)
        original = self.presenter.conversations.get(key).find(seq)
        if self.presenter.conversations.current == key:
            self.redraw(keep=original)
            if original is None:
                self.notice(f"message {seq} is not there any more", Kind.ERROR)
            else:
                self._select(original)
                self.call_after_refresh(self.log_view.scroll_to_entry, original)
        await self._fill_gap(client, key, original)

    async def _fill_gap(self, client: ChatClient, key: str, keep: Entry | None) -> None:
        """Load what lies between a page fetched `around` and the log (up to GAP_FILL
        messages, so a jump far back costs a few requests), keeping `keep` in view."""
        conversation = self.presenter.conversations.get(key)
        loaded = 0
        while conversation.gap is not None and loaded < GAP_FILL:
            first, last = conversation.gap_seqs
            limit = min(HISTORY_PAGE_MAX, last - first + 1, GAP_FILL - loaded)
            try:
                page = await client.history(key[1:], after=first - 1, limit=limit)
            except (RequestError, ChatClientError) as exc:
                self._failed(exc)
                return
            added = self.presenter.gap_page(key, page)
            if not added:
                break
            loaded += len(added)
            if self.presenter.conversations.current == key:
                self.redraw(keep=keep)

    def _room_message(self, seq: int) -> tuple[str, Entry | None] | None:
        key = self.presenter.conversations.current
        if key is None or not key.startswith("#"):
            self.notice("this works in rooms only", Kind.ERROR)
            return None
        return key, self.presenter.conversations.get(key).find(seq)

    def reply(self, seq: int, text: str) -> None:
        """`/reply SEQ TEXT` (and Enter in reply mode): pending until the server has it."""
        found = self._room_message(seq)
        client = self._need_client()
        if found is None or client is None:
            return
        key, _ = found
        conversation = self.presenter.conversations.get(key)
        entry = self.presenter.typed_reply(key, text, seq)
        self._send(client, key, entry)
        self.log_view.set_pending(conversation.pending)
        self.log_view.jump_to_bottom()

    def edit(self, seq: int, text: str) -> None:
        found = self._room_message(seq)
        client = self._need_client()
        if found is not None and client is not None:
            self._run(client.edit(found[0][1:], seq, text))

    def delete(self, seq: int) -> None:
        found = self._room_message(seq)
        if found is None:
            return
        key, entry = found
        if entry is None:
            entry = Entry(Kind.CHAT, f"message {seq} (not loaded)", None, "?", seq)
        self._confirm_delete(key, entry)

    def _confirm_delete(self, key: str, entry: Entry) -> None:
        seq = entry.seq
        if seq is None:
            return

        def answered(yes: bool | None) -> None:
            client = self._need_client() if yes else None
            if client is not None:
                self._run(client.delete(key[1:], seq))

        self.app.push_screen(ConfirmDelete(entry), answered)

    def react(self, seq: int, emoji: str) -> None:
        found = self._room_message(seq)
        if found is None:
            return
        key, entry = found
        if entry is None:
            client = self._need_client()
            if client is not None:
                self._run(client.react(key[1:], seq, emoji))
            return
        self._toggle_reaction(key, entry, emoji)

    def _toggle_reaction(self, key: str, entry: Entry, emoji: str) -> None:
        """React with `emoji`, or take it back if it is already ours."""
        client = self._need_client()
        if client is None or entry.seq is None:
            return
        remove = emoji in entry.mine
        self._run(client.react(key[1:], entry.seq, emoji, remove=remove))

    def _nick_candidates(self) -> list[str]:
        conversations = self.presenter.conversations
        current = conversations.by_key.get(conversations.current or "")
        first = list(current.members) if current is not None else []
        rest: list[str] = []
        for conversation in conversations:
            rest.extend(conversation.members if conversation.is_room else [conversation.name])
        me = self.presenter.nick.lower()
        return [nick for nick in first + sorted(rest, key=str.lower) if nick.lower() != me]

    def _room_candidates(self) -> list[str]:
        joined = {c.name for c in self.presenter.conversations if c.is_room}
        return sorted(joined | self.presenter.server_rooms)

    # -- commands.Actions ----------------------------------------------------

    def _need_client(self) -> ChatClient | None:
        client = self.client
        if client is None:
            self.notice("not connected: /reconnect opens the connect screen", Kind.ERROR)
        elif not client.connected:
            self.notice("not connected right now: this runs once the connection is back")
        return client

    def say(self, text: str, *, action: bool = False) -> None:
        key = self.presenter.conversations.current
        if key is None:
            self.notice("join a room first: /join ROOM", Kind.ERROR)
            return
        conversation = self.presenter.conversations.get(key)
        if action and not conversation.is_room:
            self.notice("/me works in rooms only", Kind.ERROR)
            return
        if conversation.put_out:
            self.notice(f"not sent: {conversation.put_out}", Kind.ERROR)
            return
        client = self.client
        if client is None:
            self.notice("not connected: /reconnect opens the connect screen", Kind.ERROR)
            self.composer.recall_last(text)
            return
        for part in split_text(text):
            entry = self.presenter.typed(key, part, action=action)
            self._send(client, key, entry)
        self.log_view.set_pending(conversation.pending)
        self.log_view.jump_to_bottom()

    @work(group="say")
    async def _send(self, client: ChatClient, key: str, entry: Entry) -> None:
        conversation = self.presenter.conversations.get(key)
        try:
            if conversation.is_room and entry.reply_to is not None:
                seq: int | None = await client.reply(conversation.name, entry.reply_to, entry.text)
            elif conversation.is_room:
                seq = await client.say(conversation.name, entry.text, entry.kind is Kind.ACTION)
            else:
                await client.dm(conversation.name, entry.text)
                seq = None
        except (RequestError, ChatClientError) as exc:
            reason = exc.message if isinstance(exc, RequestError) else str(exc)
            self.render_changes(self.presenter.refused(key, entry, reason))
            return
        if self.presenter.acked(key, entry, seq) and key == self.presenter.conversations.current:
            self.log_view.set_pending(conversation.pending)

    def join(self, room: str) -> None:
        key = "#" + room
        known = self.presenter.conversations.by_key.get(key)
        if known is not None and known.joined:
            self.switch_to(key)
            return
        client = self._need_client()
        if client is not None:
            self._join(client, room, typed_in=self.presenter.conversations.current)

    @work(group="requests")
    async def _join(self, client: ChatClient, room: str, typed_in: str | None) -> None:
        if await self._request(client.join(room)):
            # Only if the user is still where they typed it: a join queued while
            # disconnected must not pull them away later.
            if self.presenter.conversations.current == typed_in:
                self.switch_to("#" + room)
            else:
                self._draw_rooms()
            self.chat_app.remember_rooms()

    def part(self, reason: str | None) -> None:
        key = self.presenter.conversations.current
        if key is None:
            return
        if not key.startswith("#"):
            self.presenter.conversations.remove(key)
            self.redraw()
            self.chat_app.remember_rooms()  # a closed DM is not fetched at the next start
            return
        client = self._need_client()
        if client is not None:
            self._part(client, key, reason)

    @work(group="requests")
    async def _part(self, client: ChatClient, key: str, reason: str | None) -> None:
        if await self._request(client.part(key[1:], reason)):
            self.presenter.conversations.remove(key)
            self.redraw()
            self.chat_app.remember_rooms()

    def open_dm(self, nick: str, text: str | None) -> None:
        if nick.lower() == self.presenter.nick.lower() and text is None:
            self.notice("that is you", Kind.ERROR)
            return
        self.switch_to(self.presenter.conversations.dm(nick).key)
        if text:
            self.say(text)

    def change_nick(self, nick: str) -> None:
        client = self._need_client()
        if client is not None:
            self._change_nick(client, nick)

    @work(group="requests")
    async def _change_nick(self, client: ChatClient, nick: str) -> None:
        if await self._request(client.set_nick(nick)):
            status = self.presenter.status
            status.nick = client.nick
            if status.connected:
                status.text = f"connected to {status.server} as {client.nick}"
            self.query_one("#status", StatusBar).show_status(status)

    def topic(self, text: str | None) -> None:
        key = self.presenter.conversations.current
        if key is None or not key.startswith("#"):
            self.notice("/topic works in rooms only", Kind.ERROR)
            return
        if text is None:
            topic = self.presenter.conversations.get(key).topic
            self.notice(f"the topic of {key}: {topic}" if topic else f"{key} has no topic")
            return
        client = self._need_client()
        if client is not None:
            self._run(client.set_topic(key[1:], text))

    def who(self, room: str | None) -> None:
        current = self.presenter.conversations.current or ""
        if room is None and not current.startswith("#"):
            self.notice("usage: /who ROOM (a DM has no member list)", Kind.ERROR)
            return
        client = self._need_client()
        if client is not None:
            self._who(client, room or current[1:])

    @work(group="requests")
    async def _who(self, client: ChatClient, room: str) -> None:
        try:
            members = await client.who(room)
        except (RequestError, ChatClientError) as exc:
            self._failed(exc)
            return
        self.notice(f"in #{room} ({len(members)}): " + ", ".join(members))

    def list_rooms(self, prefix: str) -> None:
        client = self._need_client()
        if client is not None:
            self._list_rooms(client, prefix)

    @work(group="requests")
    async def _list_rooms(self, client: ChatClient, prefix: str) -> None:
        try:
            listing = await client.list_rooms()
        except (RequestError, ChatClientError) as exc:
            self._failed(exc)
            return
        self.presenter.server_rooms.update(summary.room for summary in listing)
        matching = [s for s in listing if s.room.startswith(prefix)]
        matching.sort(key=lambda s: (-s.members, s.room))
        shown = matching[:ROOMS_SHOWN]
        what = f"rooms starting with {prefix!r}" if prefix else "rooms"
        self.notice(f"{len(matching):,} {what}" + (", busiest first:" if shown else ""))
        for summary in shown:
            topic = f" — {summary.topic}" if summary.topic else ""
            self.notice(f"  #{summary.room} ({summary.members}){topic}")
        if len(matching) > len(shown):
            self.notice(f"  … and {len(matching) - len(shown):,} more: /rooms PREFIX narrows it")

    def clear(self) -> None:
        self.action_clear_log()

    def show_help(self) -> None:
        self.action_help()

    def reconnect(self) -> None:
        self.chat_app.ask_where(None)

    def quit(self, reason: str | None) -> None:
        self.chat_app.leave(reason)

    # -- files ---------------------------------------------------------------

    def upload(self, path: str) -> None:
        key = self.presenter.conversations.current
        if key is None:
            self.notice("open a room or a DM first, then /upload PATH", Kind.ERROR)
            return
        source = Path(path.strip()).expanduser()
        if not source.is_file():
            self.notice(f"no file at {path.strip()}", Kind.ERROR)
            return
        client = self._need_client()
        if client is None:
            return
        conversation = self.presenter.conversations.get(key)
        target = {"room": conversation.name} if conversation.is_room else {"to": conversation.name}
        self.query_one(Transfers).upload(client.upload, source, **target)

    def download(self, name: str | None) -> None:
        key = self.presenter.conversations.current
        conversation = self.presenter.conversations.by_key.get(key or "")
        shared = [
            entry.file
            for entry in (conversation.entries if conversation is not None else ())
            if entry.file is not None and (name is None or entry.file.name == name)
        ]
        if not shared:
            what = f"called {name}" if name else "shared"
            self.notice(f"no file {what} in this conversation", Kind.ERROR)
            return
        if shared[-1].expired:
            self.notice(f"{shared[-1].name} has expired on the server", Kind.ERROR)
            return
        client = self._need_client()
        if client is None:
            return
        self.query_one(Transfers).download(client.download, shared[-1], self.downloads)

    def action_save_file(self) -> None:
        self.download(None)

    @on(Transfers.Finished)
    def _transfer_finished(self, message: Transfers.Finished) -> None:
        self.notice(message.text, Kind.NOTICE if message.ok else Kind.ERROR)

    # -- requests ------------------------------------------------------------

    def _run(self, request: Awaitable[object]) -> None:
        self.run_worker(self._request(request), group="requests")

    async def _request(self, request: Awaitable[object]) -> bool:
        try:
            await request
        except (RequestError, ChatClientError) as exc:
            self._failed(exc)
            return False
        return True

    def _failed(self, exc: Exception) -> None:
        message = exc.message if isinstance(exc, RequestError) else f"not done: {exc}"
        self.notice(message, Kind.ERROR)

    # -- older history -------------------------------------------------------

    @on(MessageLog.NearTop)
    def _near_top(self) -> None:
        key = self.presenter.conversations.current
        client = self.client
        if key is None or client is None or not key.startswith("#") or key in self._loading_older:
            return
        conversation = self.presenter.conversations.get(key)
        if conversation.older_exhausted or conversation.oldest_seq in (None, 1):
            return
        self._loading_older.add(key)
        self._load_older(client, key, conversation.oldest_seq or 1)

    @work(group="history")
    async def _load_older(self, client: ChatClient, key: str, before: int) -> None:
        try:
            page = await client.history(key[1:], before=before, limit=OLDER_PAGE)
        except ChatClientError as exc:
            self.notice(f"could not load older messages: {exc}", Kind.ERROR, key=key)
            return
        finally:
            self._loading_older.discard(key)
        # A server that sends more than asked for gets its newest OLDER_PAGE shown.
        page = page.model_copy(update={"messages": page.messages[-OLDER_PAGE:]})
        added = self.presenter.older_page(key, page)
        requoted = self.presenter.quote_replies_to(key, added)
        if added and self.presenter.conversations.current == key:
            self.log_view.prepend(added)
            for reply in requoted:
                self.log_view.update_entry(reply)

    # -- key actions -----------------------------------------------------------

    def on_room_list_chosen(self, event: RoomList.Chosen) -> None:
        self.switch_to(event.key)
        self.composer.focus()

    def on_member_list_chosen(self, event: MemberList.Chosen) -> None:
        if event.nick.lower() != self.presenter.nick.lower():
            self.switch_to(self.presenter.conversations.dm(event.nick).key)
        self.composer.focus()

    def action_step(self, offset: int) -> None:
        key = self.presenter.conversations.step(offset)
        if key is not None:
            self.switch_to(key)

    def action_go(self, number: int) -> None:
        key = self.presenter.conversations.nth(number)
        if key is not None:
            self.switch_to(key)

    def action_next_active(self) -> None:
        key = self.presenter.conversations.next_active()
        if key is not None:
            self.switch_to(key)

    def action_page(self, direction: int) -> None:
        if direction < 0:
            self.log_view.page_up()
        else:
            self.log_view.page_down()

    def action_bottom(self) -> None:
        self.log_view.jump_to_bottom()

    def action_clear_log(self) -> None:
        key = self.presenter.conversations.current
        if key is not None:
            self.presenter.clear(key)
            self.redraw()

    def action_help(self) -> None:
        for line in commands.help_lines():
            self.notice(line)

    def prefill(self, text: str) -> None:
        composer = self.composer
        composer.load_text(text)
        composer.move_cursor(composer.document.end)
        composer.focus()


async def _quietly(request: Awaitable[object]) -> None:
    """A request whose failure is not worth a line in the log (a marker, a re-sent away)."""
    with contextlib.suppress(ChatClientError):
        await request
