"""`chat-server` / `python -m chat_server`: argv -> config -> asyncio; signals live here only."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import resource
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cli import fail, parse_accounts_args, parse_history_args, parse_serve_args
from .config import MEMORY_DB, ServerConfig

if TYPE_CHECKING:
    from .server import ChatServer

__all__ = ["main"]

log = logging.getLogger("chat_server")

FILES_DIR = "files"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["history"]:
        return _history(args[1:])
    if args[:1] == ["accounts"]:
        return _accounts(args[1:])
    parsed = parse_serve_args(args)
    logging.basicConfig(
        level=parsed.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = parsed.config
    if not parsed.db_given:
        config = _with_default_db(config)
    config = _with_files_dir(config, parsed.data_dir)
    _raise_fd_limit()
    try:
        _run(_serve(config))
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        return 130
    return 0


def _with_default_db(config: ServerConfig) -> ServerConfig:
    from .datadir import DB_FILE, default_db_path

    if config.data_dir is None:
        return replace(config, db_path=str(default_db_path()))
    data_dir = Path(config.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    return replace(config, db_path=str(data_dir / DB_FILE))


def _with_files_dir(config: ServerConfig, data_dir: Path | None) -> ServerConfig:
    """Files live in `--files-dir`, else `<data dir>/files`; with `--db :memory:` (and no
    `--data-dir`) nowhere. With `--redis` only in `--files-dir`, the directory every
    node is given: without it the node does not share files."""
    if config.files is None or config.files.directory is not None:
        return config
    if config.redis_url is not None:
        log.warning("files: off on this node: with --redis, give every node the same --files-dir")
        return replace(config, files=None)
    if config.db_path == MEMORY_DB and data_dir is None:
        return config
    import platformdirs

    from .datadir import APP_NAME

    if data_dir is not None:
        base = data_dir
    elif config.data_dir is not None:
        base = Path(config.data_dir)
    else:
        base = platformdirs.user_data_path(APP_NAME)
    return replace(config, files=replace(config.files, directory=base / FILES_DIR))


def _run(coro: Coroutine[Any, Any, None]) -> None:
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        pass
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(coro)


async def _serve(config: ServerConfig) -> None:
    # Imported here, not at the top: a mistyped flag is answered before TLS and mDNS load.
    from .server import ChatServer, FilesListenError, ListenError
    from .store import StoreError
    from .tls import TlsSetupError

    # The history writer thread needs the GIL briefly for every commit; with the default
    # 5 ms switch interval a busy event loop makes each commit (and so each ack) wait.
    sys.setswitchinterval(0.0005)
    asyncio.get_running_loop().set_exception_handler(_QuietAcceptErrors())
    server = ChatServer(config)
    try:
        await server.start()
    except (StoreError, TlsSetupError) as exc:
        fail(str(exc))
    except FilesListenError as exc:
        if exc.errno == errno.EADDRINUSE:
            fail(
                f"files port {exc.port} is already in use; "
                "pick another with --files-port, or --no-files"
            )
        fail(f"cannot listen for files on port {exc.port}: {exc.strerror or exc}")
    except ListenError as exc:
        flag = "--tls-port (or --no-tls)" if exc.kind == "tls" else "--port"
        if exc.errno == errno.EADDRINUSE:
            fail(f"{exc.kind} port {exc.port} is already in use; pick another with {flag}")
        fail(f"cannot listen on {config.host or '*'}:{exc.port}: {exc.strerror or exc}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    _announce(server, config)
    # Everything made so far (modules, schemas, the loaded history's rooms) lives as long
    # as the server: a full collection need not walk it again. Without this, one run of
    # scenario c (bench/load.py) saw a 42 ms generation-2 collection hold up the loop.
    gc.freeze()
    stopping = asyncio.ensure_future(stop.wait())
    serving = asyncio.ensure_future(server.serve_forever())
    await asyncio.wait([stopping, serving], return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not serving.done():
        log.info("shutting down")
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
    if server.fatal is not None:
        fail(server.fatal)


class _QuietAcceptErrors:
    """Log `accept()` running out of descriptors once a minute, without a traceback.

    asyncio reports every failed `accept()` of a pass with a traceback (and retries a
    second later); with descriptors exhausted that is megabytes of log a second.
    """

    INTERVAL = 60.0

    def __init__(self) -> None:
        self._next = 0.0
        self._hidden = 0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exception = context.get("exception")
        if not (isinstance(exception, OSError) and "accept" in str(context.get("message"))):
            loop.default_exception_handler(context)
            return
        now = loop.time()
        if now < self._next:
            self._hidden += 1
            return
        self._next = now + self.INTERVAL
        hidden, self._hidden = self._hidden, 0
        log.warning(
            "cannot accept connections: %s (%d more like it since the last warning)",
            exception.strerror or exception,
            hidden,
        )


def _announce(server: ChatServer, config: ServerConfig) -> None:
    """The start-up lines: what the host tells the others."""
    if config.redis_url is not None:
        log.info("history: in Redis at %s, shared by every node of this chat", config.redis_url)
    elif config.db_path == MEMORY_DB:
        log.info("history: nowhere (history is not kept)")
    else:
        log.info(
            "history: %s%s", config.db_path, " (fsync on every commit)" if config.fsync else ""
        )
    for host, port, kind in server.listeners:
        log.info("listening on %s:%d (%s)", _shown(host), port, kind)
    for host, port in server.files_addresses:
        log.info("listening on %s:%d (files)", _shown(host), port)
    if config.files is not None:
        where = config.files.directory or "nowhere (a temporary directory)"
        log.info("files: %s", where)
    if server.fingerprint is not None:
        log.info("TLS certificate fingerprint (SHA-256): %s", server.fingerprint)
        log.info(
            "  people joining over TLS are shown this on their first visit: "
            "tell them to check it against what you read here"
        )
    if server.announcer is not None:
        log.info(
            "chat-client on this LAN finds this server by itself (it is announced as %r)",
            server.announcer.instance,
        )
    if config.host in (None, "", "0.0.0.0", "::"):
        from .discovery import lan_addresses

        _tell_addresses(server, lan_addresses(config.announce_interfaces))


def _tell_addresses(server: ChatServer, lan: list[str]) -> None:
    tls_port, plain_port = server.tls_port, None if server.config.tls_only else server.port
    if not lan:
        log.info("others join with this machine's address, port %d", server.port)
        return
    address = lan[0]
    if plain_port is not None and tls_port is not None:
        log.info(
            "or by address: chat-client %s:%d (it moves to TLS on port %d by itself)",
            address,
            plain_port,
            tls_port,
        )
    elif plain_port is not None:
        log.info("or by address: chat-client %s:%d (plain text: no TLS)", address, plain_port)
    elif tls_port is not None:
        log.info("or by address: chat-client --tls %s:%d", address, tls_port)
    if plain_port is not None:
        log.info("netcat users: nc %s %d", address, plain_port)
    if tls_port is not None:
        log.info("netcat over TLS: openssl s_client -quiet -connect %s:%d", address, tls_port)
    if len(lan) > 1:
        log.info("this machine's other addresses: %s", ", ".join(lan[1:]))


def _shown(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    if soft < 16384:
        log.warning(
            "only %d file descriptors allowed (hard limit %s): at most about %d clients",
            soft,
            hard,
            soft - 64,
        )


def _history(argv: list[str]) -> int:
    args = parse_history_args(argv)
    from .admin import print_history
    from .datadir import default_db_path

    db_path = args.db or str(default_db_path())
    return print_history(db_path, args.room.removeprefix("#"), int(args.limit), sys.stdout)


def _accounts(argv: list[str]) -> int:
    args = parse_accounts_args(argv)
    from .admin import manage_accounts
    from .datadir import default_db_path

    db_path = args.db or str(default_db_path())
    return manage_accounts(db_path, args.action, args.nick, sys.stdin, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
