"""Command-line flags of `chat-server`, turned into a `ServerConfig`.

A bad value gets a one-line error and exit code 2 (argparse's convention).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from protocol.limits import MAX_LINE_BYTES, MAX_TEXT_CHARS, NICK_RE

from .config import DEFAULT_PORT, DEFAULT_TLS_PORT, MEMORY_DB, ServerConfig
from .datadir import default_data_dir
from .files.config import DEFAULT_FILES_PORT, FilesConfig, parse_size

__all__ = ["ServeArgs", "parse_history_args", "parse_serve_args"]

PASSWORD_ENV = "CHAT_PASSWORD"
HISTORY_COMMAND_MAX = 10_000_000


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _number(
    kind: Callable[[str], float], low: float, name: str, high: float | None = None
) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {name}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{name} must be at least {low:g}, not {text}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{name} must be at most {high:g}, not {text}")
        return value

    return parse


def _port(text: str) -> int:
    port = int(_number(int, 0, "port")(text))
    if port > 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, not {text}")
    return port


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _addresses(text: str) -> tuple[str, ...]:
    parts = tuple(part.strip() for part in text.split(",") if part.strip())
    if not parts:
        raise argparse.ArgumentTypeError("give at least one address, e.g. 192.168.1.5")
    return parts


class ServeArgs:
    """Parsed `chat-server` arguments: the config plus how to log."""

    def __init__(
        self, config: ServerConfig, log_level: str, db_given: bool, data_dir: Path | None = None
    ) -> None:
        self.config = config
        self.log_level = log_level
        self.db_given = db_given
        self.data_dir = data_dir  # --data-dir, if given


class _DefaultsFormatter(argparse.HelpFormatter):
    """Adds `(default: X)` to a flag's help once, and only where there is a default to show."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if "default" in text or default in (None, False, argparse.SUPPRESS):
            return text
        return (
            f"{text} (default: {default:g})"
            if isinstance(default, float)
            else (f"{text} (default: {default})")
        )


def _serve_parser() -> argparse.ArgumentParser:
    d = ServerConfig()
    p = _Parser(
        prog="chat-server",
        description="A LAN chat server: JSON lines for programs, plain text for netcat. "
        "`chat-server history ROOM` prints a room's stored messages.",
        formatter_class=_DefaultsFormatter,
    )
    p.add_argument("--host", default=None, help="address to listen on (default: all interfaces)")
    p.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help="plain-text TCP port; 0 picks a free one"
    )
    p.add_argument(
        "--tls-port",
        type=_port,
        default=DEFAULT_TLS_PORT,
        help="TLS port (same protocol, encrypted); 0 picks a free one",
    )
    tls = p.add_mutually_exclusive_group()
    tls.add_argument("--no-tls", action="store_true", help="no TLS listener")
    tls.add_argument(
        "--tls-only",
        action="store_true",
        help="only the TLS listener: nothing, passwords included, crosses the network in clear",
    )
    p.add_argument(
        "--cert", default=None, help="TLS certificate (PEM) instead of the self-signed one"
    )
    p.add_argument("--key", default=None, help="the private key (PEM) of --cert")
    p.add_argument(
        "--data-dir",
        default=None,
        metavar="PATH",
        help="where the certificate, its key, the server id, uploaded files and the history "
        "(without --db) are kept (default: your data directory for lanchat)",
    )
    p.add_argument(
        "--no-announce",
        action="store_true",
        help="do not announce the server on the LAN (clients then need its address)",
    )
    p.add_argument(
        "--announce-interfaces",
        type=_addresses,
        default=None,
        metavar="ADDR[,ADDR...]",
        help="announce only on the interfaces with these addresses (default: every LAN one)",
    )
    p.add_argument(
        "--db",
        default=None,
        metavar="PATH",
        help="SQLite history file, or :memory: to keep nothing (default: in your data directory); "
        "with --redis, this node's search index (without it: a temporary file, rebuilt at start)",
    )
    p.add_argument(
        "--redis",
        default=None,
        metavar="URL",
        help="share one chat with every server on this Redis (redis://HOST:PORT/DB); "
        "it needs appendonly yes and appendfsync always (see docs/ARCHITECTURE.md)",
    )
    p.add_argument(
        "--fsync",
        action="store_true",
        help="flush every commit to disk, so the last messages survive a power cut too "
        "(without it they survive a crash or kill of the server); costs some throughput",
    )
    p.add_argument(
        "--admin",
        action="append",
        default=[],
        type=_nick_argument,
        metavar="NICK",
        help="an account that is op in every room (repeatable)",
    )
    p.add_argument("--name", default=d.name, help="server name sent in the greeting")
    p.add_argument(
        "--motd", default=None, help="message of the day sent in the greeting (default: a welcome)"
    )
    p.add_argument(
        "--password",
        default=None,
        help=f"password clients must give (better: set {PASSWORD_ENV}, which stays out of ps)",
    )
    number = _number
    flags: list[tuple[str, Callable[[str], float], float, str, str]] = [
        (
            "--rate",
            number(float, 0, "rate"),
            d.rate,
            "N",
            "lines/s per client; 0 turns all flood control off, bytes too",
        ),
        ("--burst", number(int, 1, "burst"), d.burst, "N", "lines a client may send at once"),
        (
            "--byte-rate",
            number(float, 0, "byte rate"),
            d.byte_rate,
            "BYTES",
            "bytes/s per client, with a burst of 4 s of it; 0=off",
        ),
        (
            "--address-byte-rate",
            number(float, 0, "byte rate"),
            d.address_byte_rate,
            "BYTES",
            "bytes/s for all clients of one address together, burst 4 s; 0=off",
        ),
        (
            "--typing-interval",
            number(float, 0, "typing interval"),
            d.typing_interval,
            "SECONDS",
            "at most one typing `active` per sender and target this often",
        ),
        ("--max-line", number(int, 256, "line limit"), MAX_LINE_BYTES, "BYTES", "longest line"),
        ("--max-text", number(int, 1, "text limit"), MAX_TEXT_CHARS, "N", "characters per message"),
        (
            "--send-buffer",
            number(int, 1024, "send buffer"),
            d.send_buffer,
            "BYTES",
            "unsent broadcast bytes a client may have for --slow-timeout seconds "
            "before it is dropped as a slow consumer",
        ),
        (
            "--slow-timeout",
            number(float, 0.01, "timeout"),
            d.slow_timeout,
            "SECONDS",
            "how long a client may stay above --send-buffer",
        ),
        (
            "--ping-interval",
            number(float, 0.01, "interval"),
            d.ping_interval,
            "SECONDS",
            "silence before the server pings a JSON client",
        ),
        (
            "--idle-timeout",
            number(float, 0.01, "timeout"),
            d.idle_timeout,
            "SECONDS",
            "silence before a JSON client is disconnected",
        ),
        (
            "--register-timeout",
            number(float, 0.01, "timeout"),
            d.register_timeout,
            "SECONDS",
            "time a connection (text mode too) has to register",
        ),
        (
            "--max-per-ip",
            number(int, 0, "connection limit"),
            d.max_per_ip,
            "N",
            "connections from one address; 0=unlimited",
        ),
        ("--max-rooms", number(int, 0, "room limit"), d.max_rooms, "N", "rooms; 0=unlimited"),
        (
            "--presence-limit",
            number(int, 0, "presence limit"),
            d.presence_limit,
            "N",
            "in a room with more members than this, joined and left go only to the session "
            "concerned; 0=no limit",
        ),
        (
            "--max-rooms-per-client",
            number(int, 0, "room limit"),
            d.max_rooms_per_client,
            "N",
            "rooms one connection may create; 0=unlimited",
        ),
        (
            "--room-expiry",
            number(float, 0.01, "expiry"),
            d.room_expiry,
            "SECONDS",
            "an empty room with no history and no topic is forgotten after this",
        ),
        (
            "--tail-bytes",
            number(int, 0, "tail size"),
            d.tail_bytes,
            "BYTES",
            "recent messages kept in memory, all rooms together (older ones are read "
            "from the store)",
        ),
        (
            "--nick-grace",
            number(float, 0, "grace"),
            d.nick_grace,
            "SECONDS",
            "a dropped user's nick is held this long against other addresses",
        ),
        (
            "--max-sessions",
            number(int, 1, "sessions"),
            d.max_sessions,
            "N",
            "connections one account may be logged in from at once",
        ),
        (
            "--hash-memory",
            number(int, 1024, "memory"),
            d.hash_memory_kib,
            "KIB",
            "memory of each new argon2id password hash (lower only on small machines)",
        ),
    ]
    for flag, kind, default, metavar, text in flags:
        p.add_argument(flag, type=kind, default=default, metavar=metavar, help=text)
    f = FilesConfig()
    p.add_argument(
        "--files-port",
        type=_port,
        default=DEFAULT_FILES_PORT,
        metavar="PORT",
        help="HTTP(S) port for file uploads and downloads; 0 picks a free one",
    )
    p.add_argument("--no-files", action="store_true", help="turn file sharing off")
    p.add_argument(
        "--files-dir",
        default=None,
        metavar="PATH",
        help="where shared files are kept (default: DATA_DIR/files); with --redis it is "
        "needed for files, and every node must be given the same directory",
    )
    sizes = [
        ("--max-file", f.max_file, "largest file a client may share (default: 100M)"),
        ("--files-quota", f.quota, "bytes of files kept; beyond, the oldest expire (default: 2G)"),
        ("--upload-rate", f.upload_rate, "upload bytes/s per client; 0=unlimited (default: 20M)"),
    ]
    for flag, size_default, text in sizes:
        p.add_argument(flag, type=_size, default=size_default, metavar="SIZE", help=text)
    p.add_argument(
        "--files-host",
        default=None,
        metavar="HOST",
        help="host name to put in file URLs (default: the address each client connected to)",
    )
    p.add_argument(
        "--log-level",
        default="info",
        type=str.lower,
        choices=["debug", "info", "warning", "error"],
        help="how much to log (message text is logged only at debug)",
    )
    return p


def parse_serve_args(argv: Sequence[str]) -> ServeArgs:
    """Parse server flags; exits with code 2 and one line on a bad value."""
    parser = _serve_parser()
    ns = parser.parse_args(argv)
    if (ns.cert is None) != (ns.key is None):
        parser.error("--cert and --key go together")
    if ns.no_tls and (ns.cert or ns.key):
        parser.error("--cert/--key make no sense with --no-tls")
    password = ns.password if ns.password is not None else os.environ.get(PASSWORD_ENV) or None
    data_dir = ns.data_dir if ns.data_dir is not None else str(default_data_dir())
    config = ServerConfig(
        host=ns.host,
        port=ns.port,
        tls_port=None if ns.no_tls else ns.tls_port,
        tls_only=ns.tls_only,
        cert_path=ns.cert,
        key_path=ns.key,
        data_dir=data_dir,
        announce=not ns.no_announce,
        announce_interfaces=ns.announce_interfaces,
        db_path=ns.db if ns.db is not None else MEMORY_DB,
        fsync=ns.fsync,
        name=ns.name,
        motd=ns.motd if ns.motd is not None else ServerConfig().motd,
        password=password,
        rate=ns.rate,
        burst=int(ns.burst),
        byte_rate=ns.byte_rate,
        address_byte_rate=ns.address_byte_rate,
        max_line=int(ns.max_line),
        max_text=int(ns.max_text),
        send_buffer=int(ns.send_buffer),
        slow_timeout=ns.slow_timeout,
        ping_interval=ns.ping_interval,
        idle_timeout=ns.idle_timeout,
        register_timeout=ns.register_timeout,
        max_per_ip=int(ns.max_per_ip),
        max_rooms=int(ns.max_rooms),
        max_rooms_per_client=int(ns.max_rooms_per_client),
        presence_limit=int(ns.presence_limit),
        room_expiry=ns.room_expiry,
        tail_bytes=int(ns.tail_bytes),
        nick_grace=ns.nick_grace,
        max_sessions=ns.max_sessions,
        admins=tuple(ns.admin),
        hash_memory_kib=ns.hash_memory,
        files=None if ns.no_files else _files_config(ns),
        redis_url=ns.redis,
    )
    explicit_dir = Path(ns.data_dir) if ns.data_dir is not None else None
    # With --redis the chat lives in Redis: no default SQLite file is opened.
    db_given = ns.db is not None or ns.redis is not None
    return ServeArgs(config, ns.log_level, db_given=db_given, data_dir=explicit_dir)


def _files_config(ns: argparse.Namespace) -> FilesConfig:
    # The directory is settled in __main__: under the data directory, or a temporary one
    # when nothing is kept (`--db :memory:`).
    return FilesConfig(
        directory=Path(ns.files_dir) if ns.files_dir is not None else None,
        port=ns.files_port,
        max_file=ns.max_file,
        quota=ns.files_quota,
        upload_rate=ns.upload_rate,
        public_host=ns.files_host,
    )


def parse_history_args(argv: Sequence[str]) -> argparse.Namespace:
    """`chat-server history ROOM [--limit N] [--db PATH]`."""
    p = _Parser(prog="chat-server history", description="Print a room's latest messages as JSON.")
    p.add_argument("room", help="room name (a leading # is fine)")
    p.add_argument(
        "--limit",
        type=_number(int, 1, "limit", HISTORY_COMMAND_MAX),
        default=50,
        help=f"how many messages (at most {HISTORY_COMMAND_MAX:,})",
    )
    p.add_argument("--db", default=None, help="history file (default: in your data directory)")
    return p.parse_args(argv)


def parse_accounts_args(argv: Sequence[str]) -> argparse.Namespace:
    """`chat-server accounts list | delete NICK | reset-password NICK [--db PATH]`."""
    p = _Parser(
        prog="chat-server accounts",
        description="Manage accounts, also while the server runs. reset-password reads "
        "the new password from standard input (one line), never from the command line.",
    )
    p.add_argument("action", choices=["list", "delete", "reset-password"])
    p.add_argument("nick", nargs="?", help="the account (for delete and reset-password)")
    p.add_argument("--db", default=None, help="history file (default: in your data directory)")
    ns = p.parse_args(argv)
    if ns.action != "list" and ns.nick is None:
        p.error(f"{ns.action} needs the account's NICK")
    return ns


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one line to stderr and exit."""
    print(f"chat-server: {message}", file=sys.stderr)
    raise SystemExit(code)


def _nick_argument(value: str) -> str:
    """`--admin NICK`: a valid nick."""
    if NICK_RE.fullmatch(value) is None:
        raise argparse.ArgumentTypeError(f"{value!r} is not a nick (1-32 letters, digits, _ or -)")
    return value
