"""`ChatApp`: screens, the network worker, and what is remembered between runs.

One worker owns the `ChatClient`: it connects, then pumps the client's events
to the chat screen as `NetworkEvents` messages in bounded slices, waiting for
each to be drawn, so a flood never freezes the UI. Every string from the
network is shown through `literal()`: never markup, never escape sequences.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rich.traceback import Traceback
from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from protocol import ErrorCode

from ..connection import ChatClient, ClientSettings
from ..events import ClientEvent, RequestError
from ..routing import Route, RouteError, route_to_address
from ..settings import ClientConfig, Profile, load_config, save_config
from ..trust import FingerprintChanged, KnownServers, TrustError, Verdict
from .commands import COMMANDS
from .keys import use_alt_digits
from .logbook import Logbook, default_log_dir
from .messages import NetworkEvents
from .presenter import Presenter
from .reasons import plain_reason
from .screens import ChatScreen, ConnectRequest, ConnectScreen, Problem
from .screens.connect import Field
from .screens.fingerprint_changed import FingerprintChangedScreen
from .widgets.security_badge import security_text

__all__ = ["ChatApp", "StartOptions", "crash_report"]

SLICE = 500  # events drawn per message: the UI answers between slices
IN_FLIGHT = 4  # slices posted and not yet drawn


@dataclass(frozen=True, slots=True)
class StartOptions:
    """What the command line asked for; missing host or nick opens the connect screen."""

    host: str | None = None
    port: int | None = None
    nick: str | None = None
    password: str | None = field(default=None, repr=False)
    rooms: tuple[str, ...] = ()
    remember: bool = True  # save server, nick, rooms and theme for next time
    bell: bool | None = None  # None: as configured
    log: bool | None = None  # keep logs on disk; None: as configured
    settings: ClientSettings = field(default_factory=ClientSettings)
    route: Route | None = None  # decided on the command line (an announced name)
    tls: bool = False  # the port given is a TLS port
    fingerprint: str | None = None  # the user's: checked, then trusted
    insecure: bool = False  # plain text allowed to a host once reached over TLS
    lan: tuple[str, ...] | None = ()  # where the connect screen looks: None all, () nowhere
    alternates: tuple[tuple[str, int], ...] = ()  # the chat's other nodes (host:port,...)


class ChatApp(App[None]):
    """The terminal chat client."""

    TITLE = "chat"
    CSS_PATH = Path(__file__).parent / "chat.tcss"  # absolute: subclasses live elsewhere
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", priority=True)]

    def __init__(self, options: StartOptions | None = None) -> None:
        use_alt_digits()
        super().__init__()
        self.options = options or StartOptions()
        self.config: ClientConfig = load_config()
        self.presenter = Presenter(
            bell=self.config.bell if self.options.bell is None else self.options.bell
        )
        self.client: ChatClient | None = None
        self.request: ConnectRequest | None = None
        self.quitting = False
        self.logbook: Logbook | None = None
        self._started = False  # theme changes before this are not the user's
        self.chat = ChatScreen(self.presenter)
        if self.config.theme in self.available_themes:
            self.theme = self.config.theme

    def on_mount(self) -> None:
        self._started = True
        self.push_screen(self.chat)
        options = self.options
        host = options.host or self.config.host
        port = options.port or (self.config.port if not options.host else 7777)
        nick = options.nick or self.config.nick
        request = ConnectRequest(host, port, nick, options.password, options.route)
        if options.host and options.nick:
            self.connect(request)
        else:
            self.ask_where(None, request)

    def ask_where(self, problem: Problem | None, last: ConnectRequest | None = None) -> None:
        """Open the connect screen; what it returns is connected to."""
        if isinstance(self.screen, ConnectScreen):
            if problem is not None:
                self.screen.show_problem(problem)
            return
        last = last or self.request or ConnectRequest(self.config.host, self.config.port, "")

        def chosen(request: ConnectRequest | None) -> None:
            if request is not None:
                self.connect(request)

        self.push_screen(ConnectScreen(last, problem, self.options.lan), chosen)

    # -- the network worker ----------------------------------------------------

    @work(exclusive=True, group="net")
    async def connect(self, request: ConnectRequest) -> None:
        old, self.client = self.client, None
        if old is not None:
            await old.close()
        where = f"{request.host}:{request.port}"
        options = self.options
        try:
            route = request.route or await route_to_address(
                request.host, request.port, tls=options.tls, fingerprint=options.fingerprint
            )
        except (RouteError, OSError) as exc:
            self.ask_where(
                Problem(f"cannot reach {where}: {plain_reason(exc)}", "address"), request
            )
            return
        client = ChatClient(
            route.host,
            route.port,
            request.nick,
            password=request.password,
            settings=options.settings,
            tls=route.tls,
            insecure=options.insecure,
            alternates=options.alternates
            if (request.host, request.port) == (options.host, options.port)
            else (),
        )
        try:
            await client.connect()
        except RequestError as exc:
            await client.close()
            self.ask_where(Problem(exc.message, _field_for(exc.code)), request)
            return
        except FingerprintChanged as exc:
            await client.close()
            self._ask_trust(exc, route, request)
            return
        except TrustError as exc:
            await client.close()
            self.ask_where(Problem(str(exc), "address"), request)
            return
        except Exception as exc:  # any failure to connect is shown, never a traceback
            await client.close()
            self.ask_where(
                Problem(f"cannot reach {where}: {plain_reason(exc)}", "address"), request
            )
            return
        self.presenter.status.security = security_text(
            client.security, request.password is not None
        ).plain
        if client.security.verdict is Verdict.PINNED:  # first visit: say what to check
            self.notify(
                f"First visit: the certificate of {route.host}:{route.port} is now pinned.\n"
                f"Fingerprint: {client.security.fingerprint}\n"
                "Check it against the one the host's server printed at start-up.",
                title="New server",
                timeout=20,
                markup=False,
            )
        self.client, self.request = client, request
        self._open_logbook(request, client.nick)
        self._open_rooms(client)
        try:
            await self._pump(client)
        finally:
            if self.logbook is not None:
                self.logbook.close()
            await client.close()

    def _ask_trust(
        self, changed: FingerprintChanged, route: Route, request: ConnectRequest
    ) -> None:
        """The fingerprint-changed warning; connect again only if the user trusts the new one."""

        def answered(trust: bool | None) -> None:
            if trust:
                KnownServers().trust(route.host, route.port, changed.presented)
                self.connect(request)
            else:
                self.ask_where(
                    Problem(
                        f"not connected: the certificate of {changed.address} changed", "address"
                    ),
                    request,
                )

        self.push_screen(
            FingerprintChangedScreen(changed.address, changed.pinned, changed.presented), answered
        )

    def _open_logbook(self, request: ConnectRequest, nick: str) -> None:
        if self.logbook is not None:
            self.logbook.close()
            self.logbook = self.presenter.sink = None
        wanted = self.config.log if self.options.log is None else self.options.log
        if wanted:
            self.logbook = Logbook(default_log_dir(), f"{request.host}_{request.port}", nick)
            self.presenter.sink = self.logbook.write

    def _open_rooms(self, client: ChatClient) -> None:
        request = self.request
        assert request is not None
        profile = self.config.profile(request.host, request.port, client.nick)
        rooms = [r.removeprefix("#") for r in self.options.rooms] or profile.rooms or ["lobby"]
        self.presenter.status.nick = client.nick
        for room in rooms:
            conversation = self.presenter.conversations.get("#" + room)
            conversation.read_seq = max(conversation.read_seq, profile.read.get(room, 0))
        if self.options.remember:
            self.config.host, self.config.port, self.config.nick = (
                request.host,
                request.port,
                client.nick,
            )
            save_config(self.config)
        self.chat.redraw()
        self.run_worker(self._join_all(client, rooms), group="join")

    async def _join_all(self, client: ChatClient, rooms: list[str]) -> None:
        for room in rooms:
            await self.chat._request(client.join(room))
        self.remember_rooms()

    async def _pump(self, client: ChatClient) -> None:
        in_flight = asyncio.Semaphore(IN_FLIGHT)
        async for first in client.events():
            batch: list[ClientEvent] = [first, *client.events_nowait()]
            for start in range(0, len(batch), SLICE):
                await in_flight.acquire()
                last = start + SLICE >= len(batch)
                self.chat.post_message(NetworkEvents(batch[start : start + SLICE], in_flight, last))

    # -- remembering -------------------------------------------------------------

    def remember_rooms(self) -> None:
        """Save the rooms we are in and how far we read, for this server and nick."""
        client, request = self.client, self.request
        if client is None or request is None or not self.options.remember:
            return
        rooms = [c.name for c in self.presenter.conversations if c.is_room and c.joined]
        read = {c.name: c.read_seq for c in self.presenter.conversations if c.is_room}
        profile = Profile(rooms=rooms or ["lobby"], read=read)
        self.config.set_profile(request.host, request.port, client.nick, profile)
        save_config(self.config)

    def watch_theme(self, theme: str) -> None:
        if self._started and self.options.remember and self.config.theme != theme:
            self.config.theme = theme
            save_config(self.config)

    def watch_app_focus(self, focused: bool) -> None:
        self.presenter.focused = focused

    # -- leaving -------------------------------------------------------------------

    def leave(self, reason: str | None) -> None:
        self.quitting = True
        self.remember_rooms()

        async def close() -> None:
            if self.client is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.client.close(reason), 2.0)
            if self.logbook is not None:
                self.logbook.close()
            self.exit()

        self.run_worker(close(), group="quit")

    async def action_quit(self) -> None:
        self.leave(None)

    def _fatal_error(self) -> None:
        """Textual's crash report, without the local variables (they may hold a password)."""
        self.bell()
        self._exit_renderables.append(crash_report())
        self._close_messages_no_wait()

    # -- the command palette ---------------------------------------------------------

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        chat = self.chat
        for spec in COMMANDS:

            def prefill(text: str = f"/{spec.name} ") -> None:
                chat.prefill(text)

            yield SystemCommand(f"/{spec.name} {spec.usage}".rstrip(), spec.help, prefill)


def crash_report() -> Traceback:
    """The exception being handled, as Rich renders it, but never with local variables."""
    return Traceback(show_locals=False, width=None)


def _field_for(code: str) -> Field:
    if code == ErrorCode.AUTH_FAILED:
        return "password"
    if code in (ErrorCode.NICK_TAKEN, ErrorCode.INVALID_NICK):
        return "nick"
    return "address"
