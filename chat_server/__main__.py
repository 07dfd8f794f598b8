"""`chat-server` / `python -m chat_server`: argv -> config -> asyncio; signals live here only."""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import signal
import socket
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from .cli import fail, parse_accounts_args, parse_history_args, parse_serve_args
from .config import MEMORY_DB, ServerConfig
from .server import ChatServer
from .store import StoreError

__all__ = ["main"]

log = logging.getLogger("chat_server")


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
    _raise_fd_limit()
    try:
        _run(_serve(config))
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        return 130
    return 0


def _with_default_db(config: ServerConfig) -> ServerConfig:
    from dataclasses import replace

    from .datadir import default_db_path

    return replace(config, db_path=str(default_db_path()))


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
    # The history writer thread needs the GIL briefly for every commit; with the default
    # 5 ms switch interval a busy event loop makes each commit (and so each ack) wait.
    sys.setswitchinterval(0.0005)
    asyncio.get_running_loop().set_exception_handler(_QuietAcceptErrors())
    server = ChatServer(config)
    try:
        await server.start()
    except StoreError as exc:
        fail(str(exc))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            fail(f"port {config.port} is already in use; pick another with --port")
        fail(f"cannot listen on {config.host or '*'}:{config.port}: {exc.strerror or exc}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    _announce(server, config)
    await stop.wait()
    log.info("shutting down")
    await server.close()


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
    if config.db_path == MEMORY_DB:
        log.info("history: nowhere (history is not kept)")
    else:
        log.info(
            "history: %s%s", config.db_path, " (fsync on every commit)" if config.fsync else ""
        )
    for host, port in server.addresses:
        shown = f"[{host}]" if ":" in host else host
        log.info("listening on %s:%d", shown, port)
    if config.host in (None, "", "0.0.0.0", "::"):
        lan = _lan_addresses()
        port = server.port
        if lan:
            log.info(
                "others on the LAN can join with: chat-client %s:%d  (or nc %s %d)",
                lan[0],
                port,
                lan[0],
                port,
            )
            if len(lan) > 1:
                log.info("this machine's other addresses: %s", ", ".join(lan[1:]))
        else:
            log.info("others on the LAN can join with this machine's address, port %d", port)


def _lan_addresses() -> list[str]:
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
    except OSError:
        return []
    found = {str(info[4][0]) for info in infos}
    return sorted(a for a in found if not a.startswith("127."))


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
