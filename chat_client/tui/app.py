"""`ChatApp`: the terminal chat client.

The network lives in `ChatClient`; one worker pumps its events, taking
everything queued at once and refreshing the screen once per batch, so a
flood of messages never freezes the UI. Every string from the network is
shown through `literal()`: never markup, never escape sequences.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from protocol import (
    Bye,
    ChatMessage,
    DirectMessage,
    ErrorReply,
    Joined,
    Left,
    NickChanged,
    RoomInfo,
    TopicChanged,
    parse_ts,
)

from ..connection import ChatClient, ClientSettings
from ..events import (
    ChatClientError,
    ClientEvent,
    Connected,
    Connecting,
    Disconnected,
    RequestError,
    RoundTrip,
)
from ..settings import LastConnection, load_last, save_last
from .chat_input import ChatInput
from .chat_log import ChatLog
from .commands import Command, CommandError, help_lines, parse
from .connect_screen import ConnectRequest, ConnectScreen
from .conversations import Conversation, Conversations
from .lines import LogEntry, chat_line, event_line, mentions, notice_line
from .text import literal

__all__ = ["ChatApp", "StartOptions"]

OLDER_PAGE = 100
NARROW = 90  # columns
REGISTRATION_PROBLEMS = frozenset({"nick_taken", "invalid_nick", "auth_failed"})


@dataclass(frozen=True, slots=True)
class StartOptions:
    """What the command line asked for; missing host or nick opens the connect screen."""

    host: str | None = None
    port: int | None = None
    nick: str | None = None
    password: str | None = None
    rooms: tuple[str, ...] = ()
    remember: bool = True  # save host/nick/rooms for next time
    settings: ClientSettings = field(default_factory=ClientSettings)


class ChatApp(App[None]):
    """Rooms on the left, the log in the middle, members on the right."""

    TITLE = "chat"
    CSS = """
    #topic { height: 1; background: $primary-background; color: $text; padding: 0 1; }
    #body { height: 1fr; }
    #rooms { width: 18; height: 1fr; border: none; border-right: solid $primary-background; }
    #members { width: 16; height: 1fr; border: none; border-left: solid $primary-background; }
    ChatApp.-narrow #members { display: none; }
    #log { width: 1fr; }
    #status { height: 1; background: $panel; color: $text-muted; padding: 0 1; }
    #input { border: none; height: 1; padding: 0 1; }
    """
    BINDINGS = [
        Binding("f2", "step(-1)", "Prev"),
        Binding("f3", "step(1)", "Next"),
        Binding("alt+left", "step(-1)", "Prev", show=False),
        Binding("alt+right", "step(1)", "Next", show=False),
        Binding("pageup", "scroll_log(-1)", "Scroll up", show=False),
        Binding("pagedown", "scroll_log(1)", "Scroll down", show=False),
        Binding("ctrl+l", "clear_log", "Clear"),
        Binding("f1", "help", "Help"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]
    AUTO_FOCUS = "#input"

    def __init__(self, options: StartOptions | None = None) -> None:
        super().__init__()
        self.options = options or StartOptions()
        self.client: ChatClient | None = None
        self.conversations = Conversations()
        self._last = load_last()
        self._status = "not connected"
        self._rtt: float | None = None
        self._retry_at: float | None = None
        self._loading_older: set[str] = set()
        self._shown_rooms: tuple[tuple[str, str], ...] = ()

    # -- layout --------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="topic")
        with Horizontal(id="body"):
            yield OptionList(id="rooms")
            yield ChatLog(id="log")
            yield OptionList(id="members")
        yield Static(id="status")
        yield ChatInput(self._completions, placeholder="Type a message or /help", id="input")
        yield Footer()

    @property
    def log_view(self) -> ChatLog:
        return self.query_one("#log", ChatLog)

    def on_resize(self, event: events.Resize) -> None:
        self._fit(event.size.width)

    def _fit(self, width: int) -> None:
        # Below 90 columns the log needs the members' room more than they do (/who lists them).
        self.set_class(width < NARROW, "-narrow")

    def on_mount(self) -> None:
        self._fit(self.size.width)
        self.set_interval(1.0, self._refresh_status)
        self._refresh_status()
        options = self.options
        if options.host and options.nick:
            request = ConnectRequest(
                options.host, options.port or self._last.port, options.nick, options.password
            )
            self._start(request)
        else:
            self._ask_where(self._last_with_options())

    def _last_with_options(self) -> LastConnection:
        last = self._last
        return LastConnection(
            host=self.options.host or last.host,
            port=self.options.port or last.port,
            nick=self.options.nick or last.nick,
            rooms=list(self.options.rooms) or last.rooms,
        )

    def _ask_where(
        self, last: LastConnection, problem: str = "", focus_password: bool = False
    ) -> None:
        def chosen(request: ConnectRequest | None) -> None:
            if request is not None:
                self._start(request)

        self.push_screen(ConnectScreen(last, problem, focus_password), chosen)

    # -- connecting and the event pump ---------------------------------------

    @work(exclusive=True, group="net")
    async def _start(self, request: ConnectRequest) -> None:
        self._set_status(f"connecting to {request.host}:{request.port}…")
        client = ChatClient(
            request.host,
            request.port,
            request.nick,
            password=request.password,
            settings=self.options.settings,
        )
        try:
            await client.connect()
        except RequestError as exc:
            await client.close()
            last = LastConnection(request.host, request.port, request.nick, self._wanted_rooms())
            self._ask_where(last, exc.message, focus_password=exc.code == "auth_failed")
            return
        except (OSError, TimeoutError, ChatClientError) as exc:
            await client.close()
            last = LastConnection(request.host, request.port, request.nick, self._wanted_rooms())
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self._ask_where(last, f"cannot reach {request.host}:{request.port}: {reason}")
            return
        self.client = client
        rooms = self._wanted_rooms()
        if self.options.remember:
            save_last(LastConnection(request.host, request.port, client.nick, rooms))
        for room in rooms:
            self.conversations.get("#" + room)
        self.run_worker(self._join_all(client, rooms), group="join")
        try:
            await self._pump(client)
        finally:
            await client.close()

    def _wanted_rooms(self) -> list[str]:
        return [room.removeprefix("#") for room in self.options.rooms] or self._last.rooms

    async def _join_all(self, client: ChatClient, rooms: list[str]) -> None:
        for room in rooms:
            await self._run_request(client.join(room))
        if rooms:
            self._switch_to("#" + rooms[0].removeprefix("#"))

    async def _pump(self, client: ChatClient) -> None:
        async for first in client.events():
            self._apply([first, *client.events_nowait()])

    def _apply(self, events: Iterable[ClientEvent]) -> None:
        fresh: list[LogEntry] = []
        current = self.conversations.current
        for event in events:
            for key, entry in self._entries_for(event):
                added = self.conversations.get(key).append(entry)
                if key == current:
                    fresh.extend(added)
                else:
                    self._count_unread(key, entry)
        self.log_view.append(fresh)
        self._refresh_rooms()
        self._refresh_room_details()

    def _count_unread(self, key: str, entry: LogEntry) -> None:
        if entry.seq is None and key.startswith("#"):
            return  # joins and parts are not worth a count
        conversation = self.conversations.get(key)
        conversation.unread += 1
        if entry.mention or not key.startswith("#"):
            if not conversation.mentioned:
                self.bell()
            conversation.mentioned = True

    def _entries_for(self, event: ClientEvent) -> list[tuple[str, LogEntry]]:
        """Where an event shows up in the logs, and how."""
        nick = self.client.nick if self.client else ""
        if isinstance(event, ChatMessage):
            mention = event.sender.lower() != nick.lower() and mentions(event.text, nick)
            ts = parse_ts(event.ts)
            entry = chat_line(
                ts, event.sender, event.text, action=event.action, mention=mention, seq=event.seq
            )
            return [("#" + event.room, entry)]
        if isinstance(event, DirectMessage):
            other = event.to if event.sender.lower() == nick.lower() else event.sender
            entry = chat_line(
                parse_ts(event.ts), event.sender, event.text, action=False, mention=False
            )
            return [("@" + other, entry)]
        if isinstance(event, RoomInfo):
            conversation = self.conversations.get("#" + event.room)
            conversation.topic, conversation.members = (
                event.topic,
                sorted(event.members, key=str.lower),
            )
            conversation.joined = True
            return []
        if isinstance(event, Joined | Left):
            return self._membership(event)
        if isinstance(event, NickChanged):
            return self._nick_changed(event)
        if isinstance(event, TopicChanged):
            self.conversations.get("#" + event.room).topic = event.topic
            text = (
                f"{event.by} set the topic: {event.topic}"
                if event.topic
                else f"{event.by} cleared the topic"
            )
            return [("#" + event.room, event_line(parse_ts(event.ts), text))]
        if isinstance(event, ErrorReply):
            return [(self._here(), notice_line(f"server: {event.message}", "bold red"))]
        if isinstance(event, Bye):
            text = f"the server closed the connection: {event.reason}"
            return [(self._here(), notice_line(text, "bold"))]
        self._connection_event(event)
        return []

    def _membership(self, event: Joined | Left) -> list[tuple[str, LogEntry]]:
        key = "#" + event.room
        conversation = self.conversations.get(key)
        members = [m for m in conversation.members if m.lower() != event.nick.lower()]
        if isinstance(event, Joined):
            members.append(event.nick)
            text = f"{event.nick} joined #{event.room}"
        else:
            reason = f" ({event.reason})" if event.reason else ""
            text = f"{event.nick} left #{event.room}{reason}"
        conversation.members = sorted(members, key=str.lower)
        return [(key, event_line(parse_ts(event.ts), text))]

    def _nick_changed(self, event: NickChanged) -> list[tuple[str, LogEntry]]:
        line = f"{event.old} is now known as {event.new}"
        shown: list[tuple[str, LogEntry]] = []
        for conversation in list(self.conversations.by_key.values()):
            if not conversation.is_room:
                continue
            names = [n.lower() for n in conversation.members]
            if event.old.lower() in names:
                conversation.members = sorted(
                    [
                        event.new if n.lower() == event.old.lower() else n
                        for n in conversation.members
                    ],
                    key=str.lower,
                )
                shown.append((conversation.key, event_line(parse_ts(event.ts), line)))
        return shown

    def _connection_event(self, event: ClientEvent) -> None:
        loop = asyncio.get_running_loop()
        if isinstance(event, Connecting):
            self._retry_at = None
            self._set_status(f"connecting to {event.host}:{event.port}…")
        elif isinstance(event, Connected):
            self._retry_at = None
            self._set_status(f"connected to {event.server} as {event.nick}")
        elif isinstance(event, Disconnected):
            if event.retry_in is None:
                self._set_status(f"disconnected: {event.reason}")
            else:
                self._retry_at = loop.time() + event.retry_in
                self._set_status(f"reconnecting ({event.reason})")
        elif isinstance(event, RoundTrip):
            self._rtt = event.seconds
            self._refresh_status()

    # -- what is on screen ---------------------------------------------------

    def _here(self) -> str:
        return self.conversations.current or "#lobby"

    def _switch_to(self, key: str) -> None:
        conversation = self.conversations.show(key)
        self.log_view.show(conversation.entries)
        self._refresh_rooms()
        self._refresh_room_details()

    def _refresh_rooms(self) -> None:
        rows = tuple(
            (key, self._room_label(conversation))
            for key, conversation in self.conversations.by_key.items()
        )
        if rows == self._shown_rooms:
            return
        self._shown_rooms = rows
        rooms = self.query_one("#rooms", OptionList)
        rooms.clear_options()
        rooms.add_options(
            Option(self._room_prompt(conversation), id=key)
            for key, conversation in self.conversations.by_key.items()
        )
        if self.conversations.current in self.conversations.by_key:
            rooms.highlighted = list(self.conversations.by_key).index(self.conversations.current)

    @staticmethod
    def _room_label(conversation: Conversation) -> str:
        c = conversation
        return f"{c.key}|{c.unread}|{c.mentioned}|{c.joined}"

    def _room_prompt(self, conversation: Conversation) -> Content:
        name = literal(conversation.key, "" if conversation.joined else "dim strike")
        if conversation.key == self.conversations.current:
            name = name.stylize("bold")
        if not conversation.unread:
            return name
        badge = f" {conversation.unread}" + (" !" if conversation.mentioned else "")
        return name + literal(badge, "bold yellow" if conversation.mentioned else "bold cyan")

    def _refresh_room_details(self) -> None:
        key = self.conversations.current
        conversation = self.conversations.by_key.get(key) if key else None
        topic = self.query_one("#topic", Static)
        members = self.query_one("#members", OptionList)
        if conversation is None:
            topic.update("")
            members.clear_options()
            return
        title = literal(conversation.key, "bold")
        if conversation.topic:
            title += Content(" — ") + literal(conversation.topic, single_line=True)
        topic.update(title)
        wanted = conversation.members if conversation.is_room else []
        current = [str(members.get_option_at_index(i).id) for i in range(members.option_count)]
        if current != wanted:
            members.clear_options()
            members.add_options(Option(literal(nick), id=nick) for nick in wanted)

    def _set_status(self, status: str) -> None:
        self._status = status
        self._refresh_status()

    def _refresh_status(self) -> None:
        status = self._status
        if self._retry_at is not None:
            left = max(0.0, self._retry_at - asyncio.get_running_loop().time())
            status = f"{status}; retrying in {left:.0f} s"
        if self._rtt is not None and self.client is not None and self.client.connected:
            status += f" · rtt {self._rtt * 1000:.0f} ms"
        self.query_one("#status", Static).update(literal(status, single_line=True))

    def _notice(self, text: str, style: str = "italic") -> None:
        key = self._here()
        added = self.conversations.get(key).append(notice_line(text, style))
        if self.conversations.current == key:
            self.log_view.append(added)
        self._refresh_rooms()

    def _completions(self) -> list[str]:
        nicks: set[str] = set()
        for conversation in self.conversations.by_key.values():
            nicks.update(conversation.members)
            if not conversation.is_room:
                nicks.add(conversation.name)
        return sorted(nicks)

    # -- input ---------------------------------------------------------------

    @on(ChatInput.Submitted, "#input")
    def _submitted(self, event: ChatInput.Submitted) -> None:
        line = event.value
        chat_input = self.query_one("#input", ChatInput)
        chat_input.value = ""
        if not line.strip():
            return
        chat_input.remember(line)
        try:
            command = parse(line)
        except CommandError as exc:
            self._notice(str(exc), "bold red")
            return
        if command is None:
            self._say(line.removeprefix("/") if line.startswith("//") else line)
        else:
            self._run_command(command)

    def _say(self, text: str, action: bool = False) -> None:
        client, key = self.client, self.conversations.current
        if client is None or key is None:
            self._notice("not connected yet", "bold red")
            return
        conversation = self.conversations.get(key)
        if conversation.is_room:
            self._request(client.say(conversation.name, text, action))
        elif action:
            self._notice("/me works in rooms only", "bold red")
        else:
            self._request(client.dm(conversation.name, text))

    def _run_command(self, command: Command) -> None:
        if command.name == "help":
            for line in help_lines():
                self._notice(line, "")
            return
        if command.name == "clear":
            self.action_clear_log()
            return
        if command.name == "quit":
            self._quit(command.rest or None)
            return
        client = self.client
        if client is None:
            self._notice("not connected yet", "bold red")
            return
        handlers: dict[str, Callable[[ChatClient, Command], None]] = {
            "join": self._cmd_join,
            "part": self._cmd_part,
            "msg": self._cmd_msg,
            "me": lambda _, cmd: self._say(cmd.rest, action=True),
            "nick": lambda c, cmd: self._request(c.set_nick(cmd.args[0])),
            "topic": self._cmd_topic,
            "who": self._cmd_who,
            "rooms": self._cmd_rooms,
        }
        handlers[command.name](client, command)

    def _cmd_join(self, client: ChatClient, command: Command) -> None:
        room = command.args[0].removeprefix("#")

        async def join() -> None:
            await client.join(room)
            self._switch_to("#" + room)

        self._request(join())

    def _cmd_part(self, client: ChatClient, command: Command) -> None:
        key = self._here()
        if not key.startswith("#"):
            self.conversations.remove(key)  # closing a DM conversation
            self._switch_to(self._here())
            return

        async def part() -> None:
            await client.part(key[1:], command.rest or None)
            self.conversations.remove(key)
            self._shown_rooms = ()
            self._switch_to(self._here())

        self._request(part())

    def _cmd_msg(self, client: ChatClient, command: Command) -> None:
        nick, _, text = command.rest.partition(" ")
        if not text.strip():
            self._notice("usage: /msg NICK TEXT", "bold red")
            return

        async def send() -> None:
            await client.dm(nick, text)
            self._switch_to("@" + nick)

        self._request(send())

    def _cmd_topic(self, client: ChatClient, command: Command) -> None:
        key = self._here()
        if not key.startswith("#"):
            self._notice("/topic works in rooms only", "bold red")
            return
        self._request(client.set_topic(key[1:], command.rest))

    def _cmd_who(self, client: ChatClient, command: Command) -> None:
        room = command.args[0].removeprefix("#") if command.args else self._here()[1:]

        async def who() -> None:
            members = await client.who(room)
            self._notice(f"in #{room} ({len(members)}): " + ", ".join(members), "")

        self._request(who())

    def _cmd_rooms(self, client: ChatClient, command: Command) -> None:
        async def rooms() -> None:
            listing = await client.list_rooms()
            self._notice(f"{len(listing)} rooms:", "")
            for summary in listing:
                topic = f" — {summary.topic}" if summary.topic else ""
                self._notice(f"  #{summary.room} ({summary.members}){topic}", "")

        self._request(rooms())

    def _request(self, request: Awaitable[object]) -> None:
        """Run a request without blocking the UI; its failure is shown in plain words."""
        self.run_worker(self._run_request(request), group="requests")

    async def _run_request(self, request: Awaitable[object]) -> None:
        try:
            await request
        except RequestError as exc:
            self._notice(f"{exc.message}", "bold red")
        except ChatClientError as exc:
            self._notice(f"not sent: {exc}", "bold red")

    # -- older history -------------------------------------------------------

    @on(ChatLog.NearTop)
    def _near_top(self) -> None:
        key = self.conversations.current
        client = self.client
        if key is None or client is None or not key.startswith("#") or key in self._loading_older:
            return
        conversation = self.conversations.get(key)
        if conversation.older_exhausted or conversation.oldest_seq in (None, 1):
            return
        self._loading_older.add(key)
        self.run_worker(self._load_older(client, conversation), group="history")

    async def _load_older(self, client: ChatClient, conversation: Conversation) -> None:
        try:
            before = conversation.oldest_seq or 1
            page = await client.history(conversation.name, before=before, limit=OLDER_PAGE)
        except ChatClientError as exc:
            self._notice(f"could not load older messages: {exc}", "bold red")
            return
        finally:
            self._loading_older.discard(conversation.key)
        nick = client.nick
        older = [
            chat_line(
                parse_ts(m.ts),
                m.sender,
                m.text,
                action=m.action,
                mention=m.sender.lower() != nick.lower() and mentions(m.text, nick),
                seq=m.seq,
            )
            for m in page.messages
        ]
        if not page.more:
            conversation.older_exhausted = True
        added = conversation.prepend(older)
        if added and self.conversations.current == conversation.key:
            self.log_view.prepend(list(conversation.entries)[:added])

    # -- actions -------------------------------------------------------------

    @on(OptionList.OptionSelected, "#rooms")
    def _room_chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option_id:
            self._switch_to(event.option_id)
        self.query_one("#input").focus()

    @on(OptionList.OptionSelected, "#members")
    def _member_chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option_id and self.client and event.option_id.lower() != self.client.nick.lower():
            self._switch_to("@" + event.option_id)
        self.query_one("#input").focus()

    def action_step(self, offset: int) -> None:
        key = self.conversations.step(offset)
        if key is not None:
            self._switch_to(key)

    def action_scroll_log(self, direction: int) -> None:
        log_view = self.log_view
        if direction < 0:
            log_view.scroll_page_up(animate=False)
        else:
            log_view.scroll_page_down(animate=False)

    def action_clear_log(self) -> None:
        key = self.conversations.current
        if key is not None:
            self.conversations.get(key).entries.clear()
            self.log_view.clear()

    def action_help(self) -> None:
        for line in help_lines():
            self._notice(line, "")

    def action_prefill(self, text: str) -> None:
        chat_input = self.query_one("#input", ChatInput)
        chat_input.value = text
        chat_input.cursor_position = len(text)
        chat_input.focus()

    def _quit(self, reason: str | None) -> None:
        async def leave() -> None:
            if self.client is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.client.close(reason), 2.0)
            self.exit()

        self.run_worker(leave(), group="quit")

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        prefill, step = self.action_prefill, self.action_step
        yield SystemCommand("Join a room", "Type /join ROOM", lambda: prefill("/join "))
        yield SystemCommand("Direct message", "Type /msg NICK TEXT", lambda: prefill("/msg "))
        yield SystemCommand("Next conversation", "The next room or DM", lambda: step(1))
        yield SystemCommand("Previous conversation", "The previous room or DM", lambda: step(-1))
        yield SystemCommand("Clear log", "Clear the log in view", self.action_clear_log)
        yield SystemCommand("Help", "Show commands and keys", self.action_help)
