"""`chat-client [HOST[:PORT]] [--nick NAME] [--room ROOM]...`: the terminal chat client."""

from __future__ import annotations

import argparse
import os
import sys

__all__ = ["main"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="chat-client",
        description="Chat on a LAN chat server from the terminal. Without a server and a nick "
        "it opens a connect screen filled in with what you used last time. The password is "
        "read from CHAT_PASSWORD or asked for on the connect screen.",
    )
    parser.add_argument("server", nargs="?", help="HOST or HOST:PORT (port 7777 by default)")
    parser.add_argument("--nick", help="your nick: letters, digits, _ and -")
    parser.add_argument(
        "--room",
        action="append",
        default=[],
        metavar="ROOM",
        help="join ROOM (repeat for more; default: the rooms of last time, or lobby)",
    )
    parser.add_argument("--theme", help="a Textual theme, e.g. nord, gruvbox, textual-light")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from .tui.app import ChatApp, StartOptions
    from .tui.connect_screen import parse_address

    host: str | None = None
    port: int | None = None
    if args.server:
        try:
            host, port = parse_address(args.server)
        except ValueError as exc:
            print(f"chat-client: {exc}", file=sys.stderr)
            return 2
    options = StartOptions(
        host=host,
        port=port,
        nick=args.nick,
        password=os.environ.get("CHAT_PASSWORD") or None,
        rooms=tuple(room.removeprefix("#") for room in args.room),
    )
    app = ChatApp(options)
    if args.theme:
        app.theme = args.theme
    app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
