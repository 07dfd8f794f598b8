"""`chat-client [HOST[:PORT] | NAME] [--nick NAME] [--room ROOM]...`: the terminal chat client.

`chat-client --list` prints the servers announced on the LAN and exits.
Everything the command line says is checked before the screen is taken over,
so a mistake is one line on stderr and exit code 2, never a traceback (which
could show the password).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from pydantic import TypeAdapter, ValidationError

from protocol.fields import NickName, normalize_room

__all__ = ["main"]

if TYPE_CHECKING:
    from .routing import Route
    from .tui.app import StartOptions

_NICK: TypeAdapter[str] = TypeAdapter(NickName)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="chat-client",
        description="Chat on a LAN chat server from the terminal. Without a server and a nick "
        "it opens a connect screen filled in with what you used last time. The password is "
        "read from CHAT_PASSWORD or asked for on the connect screen.",
    )
    parser.add_argument(
        "server",
        nargs="?",
        help="HOST, HOST:PORT (port 7777 by default), the NAME a server announces on the LAN, "
        "or HOST:PORT,HOST:PORT,... for the nodes of one chat (the next is tried on a drop)",
    )
    parser.add_argument("--nick", help="your nick: letters, digits, _ and -")
    parser.add_argument(
        "--room",
        action="append",
        default=[],
        metavar="ROOM",
        help="join ROOM (repeat for more; default: the rooms you were in when you last quit "
        "this server with this nick, or lobby)",
    )
    parser.add_argument("--theme", help="a Textual theme, e.g. nord, gruvbox, textual-light")
    parser.add_argument(
        "--no-bell", action="store_true", help="never ring the bell for mentions and DMs"
    )
    parser.add_argument(
        "--no-typing",
        action="store_true",
        help='never tell others that you are typing (also "send_typing": false in the '
        "settings file, or /typing off)",
    )
    parser.add_argument(
        "--log",
        action="store_true",
        help="keep a plain-text log of every conversation on disk (~/.local/state/lanchat/log)",
    )
    parser.add_argument(
        "--list", action="store_true", help="print the servers found on the LAN within 2 s, exit"
    )
    parser.add_argument("--json", action="store_true", help="with --list: JSON for scripts")
    parser.add_argument(
        "--interfaces",
        metavar="ADDR[,ADDR...]",
        help="look for servers only on the interfaces with these addresses",
    )
    parser.add_argument(
        "--tls", action="store_true", help="the port given is a TLS port (default port 7778)"
    )
    parser.add_argument(
        "--fingerprint",
        help="the server's certificate fingerprint, as its host read it to you: checked, "
        "then trusted (also to accept a changed certificate)",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow plain text to a server that was reached over TLS before",
    )
    parser.add_argument(
        "--auto-away",
        type=float,
        default=10.0,
        metavar="MINUTES",
        help="be away after MINUTES without a key press, back at the next one (0: never; "
        "default: %(default)s)",
    )
    return parser.parse_args(argv)


def _interfaces(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [part.strip() for part in text.split(",") if part.strip()] or None


def _list(args: argparse.Namespace) -> int:
    import asyncio

    from .server_list import print_servers

    return asyncio.run(
        print_servers(
            sys.stdout, sys.stderr, json_output=args.json, interfaces=_interfaces(args.interfaces)
        )
    )


def _by_name(
    target: str, interfaces: list[str] | None, fingerprint: str | None
) -> Route | str | None:
    """The route to a server announced as `target`; a message when it cannot be used."""
    import asyncio

    from .routing import RouteError, find_by_name, looks_like_address, route_to_discovered

    if looks_like_address(target):
        return None
    found = asyncio.run(find_by_name(target, interfaces))
    if found is None:
        return None  # not announced here: perhaps a host name
    try:
        return route_to_discovered(found, fingerprint)
    except RouteError as exc:
        return str(exc)


def _fail(message: str) -> int:
    print(f"chat-client: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        return _list(args)
    if args.json:
        return _fail("--json goes with --list")
    from .tui.app import ChatApp

    options = start_options(args)
    if isinstance(options, str):
        return _fail(options)
    app = ChatApp(options)
    if args.theme:
        app.theme = args.theme
    app.run()
    return app.return_code or 0


def start_options(args: argparse.Namespace) -> StartOptions | str:
    """What the TUI starts with, from the command line; a message when an argument is wrong."""
    from .tui.app import StartOptions
    from .tui.screens.connect import parse_address
    from .tui.themes import theme_names

    fingerprint = None
    if args.fingerprint is not None:
        from protocol import InvalidFingerprint, normalize_fingerprint

        try:
            fingerprint = normalize_fingerprint(args.fingerprint)
        except InvalidFingerprint as exc:
            return f"--fingerprint: {exc}"
    interfaces = _interfaces(args.interfaces)
    host: str | None = None
    port: int | None = None
    alternates: list[tuple[str, int]] = []
    if args.server and "," in args.server:  # the nodes of one chat: the first, then the others
        try:
            nodes = [parse_address(part) for part in args.server.split(",")]
        except ValueError as exc:
            return str(exc)
        args.server, alternates = args.server.split(",")[0], nodes[1:]
    route = _by_name(args.server, interfaces, fingerprint) if args.server else None
    if isinstance(route, str):
        return route
    if route is not None:
        host, port = route.host, route.port
    elif args.server:
        try:
            host, port = parse_address(args.server)
        except ValueError as exc:
            return str(exc)
    if args.nick is not None:
        try:
            _NICK.validate_python(args.nick)
        except ValidationError as exc:
            return f"--nick {args.nick!r}: {exc.errors(include_url=False)[0]['msg']}"
    rooms: list[str] = []
    for room in args.room:
        try:
            rooms.append(normalize_room(room.lower()))
        except ValueError as exc:
            return f"--room {room!r}: {exc}"
    if args.theme is not None and args.theme not in theme_names():
        return f"no theme {args.theme!r}; choose one of: {', '.join(theme_names())}"
    if args.auto_away < 0:
        return "--auto-away is minutes: 0 or more"
    return StartOptions(
        host=host,
        port=port,
        nick=args.nick,
        password=os.environ.get("CHAT_PASSWORD") or None,
        rooms=tuple(rooms),
        bell=False if args.no_bell else None,
        log=True if args.log else None,
        route=route,
        tls=args.tls,
        fingerprint=fingerprint,
        insecure=args.insecure,
        lan=tuple(interfaces) if interfaces else None,
        alternates=tuple(alternates),
        auto_away=args.auto_away,
        typing=False if args.no_typing else None,
    )


if __name__ == "__main__":
    sys.exit(main())
