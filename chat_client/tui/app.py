"""`ChatApp`: screens, the network worker, and what is remembered between runs.

One worker owns the `ChatClient`: it connects, then pumps the client's events
to the chat screen as `NetworkEvents` messages in bounded slices, waiting for
each to be drawn, so a flood never freezes the UI. Every string from the
network is shown through `literal()`: never markup, never escape sequences.

Accounts (version 2): a nick that is an account gets a password prompt
(`PasswordScreen`) and the connection is tried again with it; the password
lives in memory only, unless the user ticks "remember it in the system
keyring". The app also owns auto-away: after `auto_away` minutes without a key
press it sets the user away, and the next key press brings them back.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rich.traceback import Traceback
from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from protocol import ErrorCode

from ..connection import ChatClient, ClientSettings
from ..events import ClientEvent, RequestError
from ..routing import Route, RouteError, route_to_address
from ..settings import ClientConfig, Profile, load_config, save_config
from ..trust import FingerprintChanged, KnownServers, TrustError, Verdict
from . import keychain
from .commands import COMMANDS
from .keys import use_alt_digits
from .logbook import Logbook, default_log_dir
from .messages import NetworkEvents
from .presenter import Presenter
from .reasons import account_problem, plain_reason
from .screens import ChatScreen, ConnectRequest, ConnectScreen, Problem
from .screens.account import AccountLogin, PasswordScreen
from .screens.connect import Field
from .screens.fingerprint_changed import FingerprintChangedScreen
from .widgets.security_badge import security_text

__all__ = ["ChatApp", "StartOptions", "crash_report"]

SLICE = 500  # events drawn per message: the UI answers between slices
IN_FLIGHT = 4  # slices posted and not yet drawn
# The version-2 features the TUI uses.
FEATURES: tuple[str, ...] = ("accounts", "read", "away", "reply", "edit", "react", "typing")
FEATURES += ("search", "moderation")
AUTO_AWAY_TEXT = "idle"


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
    account_password: str | None = field(default=None, repr=False)  # else asked when needed
    auto_away: float = 10.0  # minutes without a key press before going away; 0: never
    typing: bool | None = None  # send typing notices; None: as configured


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
        typing = self.options.typing
        self.send_typing = self.config.send_typing if typing is None else typing
        self.presenter = Presenter(
            bell=self.config.bell if self.options.bell is None else self.options.bell
        )
        self.client: ChatClient | None = None
        self.request: ConnectRequest | None = None
        self.quitting = False
        self.logbook: Logbook | None = None
        self._started = False  # theme changes before this are not the user's
        self._last_key = time.monotonic()
        self.auto_away = False  # away because idle (a key press ends it)
        self._keyring_said = False  # "no keyring" is said once
        self.chat = ChatScreen(self.presenter)
        if self.config.theme in self.available_themes:
            self.theme = self.config.theme

    def on_mount(self) -> None:
        self._started = True
        self.push_screen(self.chat)
        # What start-up made (Textual, its styles, the screens) lives as long as the
        # app: full collections need not walk it again. Without this a generation-2
        # collection took 70-85 ms mid-scroll (bench/tui_open.py), with it about 13.
        self.call_after_refresh(gc.freeze)
        options = self.options
        if options.auto_away > 0:
            idle = options.auto_away * 60
            self.set_interval(min(30.0, idle / 4), self._check_idle)
        host = options.host or self.config.host
        port = options.port or (self.config.port if not options.host else 7777)
        nick = options.nick or self.config.nick
        request = ConnectRequest(
            host,
            port,
            nick,
            options.password,
            options.route,
            account_password=options.account_password,
        )
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

    def on_unmount(self) -> None:
        if not self.quitting:
            self.remember_rooms()  # closed some other way than /quit or Ctrl+Q

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
        kept = False  # the account password came from the keyring
        if request.account_password is None and self._profile(request).keyring:
            found = await asyncio.to_thread(keychain.load, request.host, request.port, request.nick)
            if found is not None:
                request = _with_account_password(request, found, None)
                kept = True
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
            features=FEATURES,
            account_password=request.account_password,
        )
        try:
            await client.connect()
        except RequestError as exc:
            await client.close()
            if account_problem(exc.code, request.account_password is not None):
                if kept and exc.code is ErrorCode.AUTH_FAILED:
                    exc = RequestError(exc.code, "the password kept in the keyring was refused")
                self.ask_account_password(request, exc)
            else:
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
        await self._keep_password(request)
        self._open_logbook(request, client.nick)
        self._open_rooms(client)
        try:
            await self._pump(client)
        finally:
            if self.logbook is not None:
                self.logbook.close()
            await client.close()

    def ask_account_password(self, request: ConnectRequest, error: RequestError | None) -> None:
        """The nick is an account: ask for its password, then connect again with it.
        Esc (or "Another nick") opens the connect screen on the nick."""
        problem = None
        if error is not None and error.code is not ErrorCode.AUTH_REQUIRED:
            problem = f"not logged in: {error.message}. Try again, or Esc for another nick."

        def answered(login: AccountLogin | None) -> None:
            if login is None:
                self.ask_where(
                    Problem(f"{request.nick} is an account: choose another nick", "nick"),
                    _with_account_password(request, None, None),
                )
            else:
                self.connect(_with_account_password(request, login.password, login.remember))

        where = f"{request.host}:{request.port}"
        remember = self._profile(request).keyring
        self.push_screen(PasswordScreen(request.nick, where, problem, remember=remember), answered)

    def registered(self, login: AccountLogin) -> None:
        """`/register` succeeded: later logins (this run's reconnects too) use the password."""
        request = self.request
        if request is None:
            return
        self.request = _with_account_password(request, login.password, None)
        if login.remember:
            self.run_worker(
                self.keep_account_password(
                    request.host, request.port, request.nick, login.password, True
                ),
                group="keyring",
            )

    def _profile(self, request: ConnectRequest) -> Profile:
        return self.config.profile(request.host, request.port, request.nick)

    async def _keep_password(self, request: ConnectRequest) -> None:
        """After a login from the prompt: keep the password in the keyring, or forget it."""
        if request.keyring is None or request.account_password is None:
            return
        await self.keep_account_password(
            request.host, request.port, request.nick, request.account_password, request.keyring
        )

    async def keep_account_password(
        self, host: str, port: int, nick: str, password: str, remember: bool
    ) -> None:
        """Keep `password` in the system keyring (remember) or remove it from there."""
        profile = self.config.profile(host, port, nick)
        if remember:
            try:
                await asyncio.to_thread(keychain.save, host, port, nick, password)
            except keychain.KeychainUnavailable as exc:
                self.notify(f"The password was not saved: {exc}.", title="Keyring", markup=False)
                return
        elif profile.keyring:
            await asyncio.to_thread(keychain.forget, host, port, nick)
        if profile.keyring != remember and self.options.remember:
            self.config.set_profile(
                host, port, nick, profile.model_copy(update={"keyring": remember})
            )
            save_config(self.config)

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
            conversation.line_seq = max(conversation.line_seq, conversation.read_seq)
        if client.session.welcome is not None and client.session.welcome.account:
            for partner in profile.dms:  # their history is fetched once connected
                conversation = self.presenter.conversations.dm(partner)
                read = profile.dm_read.get(partner.lower(), 0)
                conversation.read_seq = max(conversation.read_seq, read)
                conversation.line_seq = max(conversation.line_seq, conversation.read_seq)
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

    def set_send_typing(self, on: bool) -> None:
        """`/typing on|off`: kept in the settings file when remembering is on."""
        self.send_typing = on
        if self.options.remember:
            self.config.send_typing = on
            save_config(self.config)

    def remember_rooms(self) -> None:
        """Save the rooms we are in and how far we read, for this server and nick."""
        client, request = self.client, self.request
        if client is None or request is None or not self.options.remember:
            return
        conversations = list(self.presenter.conversations)
        rooms = [c.name for c in conversations if c.is_room and c.joined]
        read = {c.name: c.read_seq for c in conversations if c.is_room}
        old = self.config.profile(request.host, request.port, client.nick)
        known = {nick.lower() for nick in old.dms}
        # Stored conversations (their DMs carry a seq), and those remembered that are still open.
        dms = [
            c.name
            for c in conversations
            if not c.is_room
            and (c.name.lower() in known or any(e.seq is not None for e in c.entries))
        ]
        dm_read = {c.name.lower(): c.read_seq for c in conversations if c.name in dms}
        profile = old.model_copy(
            update={"rooms": rooms or ["lobby"], "read": read, "dms": dms, "dm_read": dm_read}
        )
        self.config.set_profile(request.host, request.port, client.nick, profile)
        save_config(self.config)

    def watch_theme(self, theme: str) -> None:
        if self._started and self.options.remember and self.config.theme != theme:
            self.config.theme = theme
            save_config(self.config)

    def watch_app_focus(self, focused: bool) -> None:
        self.presenter.focused = focused
        if self.chat.is_mounted:
            self.chat.focus_changed(focused)

    # -- auto-away -----------------------------------------------------------------

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self._last_key = time.monotonic()
            if self.auto_away:
                self.chat.set_away(None)
        await super().on_event(event)

    def _check_idle(self) -> None:
        idle = time.monotonic() - self._last_key
        client = self.client
        if (
            self.auto_away
            or self.presenter.status.away is not None
            or client is None
            or not client.connected
            or idle < self.options.auto_away * 60
        ):
            return
        self.chat.set_away(AUTO_AWAY_TEXT, auto=True)

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


def _with_account_password(
    request: ConnectRequest, password: str | None, keyring: bool | None
) -> ConnectRequest:
    return ConnectRequest(
        request.host,
        request.port,
        request.nick,
        request.password,
        request.route,
        account_password=password,
        keyring=keyring,
    )


def _field_for(code: str) -> Field:
    if code == ErrorCode.AUTH_FAILED:
        return "password"
    if code in (ErrorCode.NICK_TAKEN, ErrorCode.INVALID_NICK):
        return "nick"
    return "address"
