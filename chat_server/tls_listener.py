"""The TLS listener: its own accept loop, a handshake, then the same `ClientConnection`.

Each accepted socket goes through `loop.connect_accepted_socket(ssl=...)`, which
returns only once the handshake is done, or raises why it failed. That is what
lets a failed handshake (a plain-text client on the TLS port, a scanner, a
client giving up) be logged in one line and closed without a traceback:
`create_server(ssl=...)` tells the program nothing about those (asyncio logs
them only in debug mode, and never says who it was). Upgrading an accepted
plain transport with `start_tls` was tried and loses the ClientHello under
uvloop, which may deliver it to the plain protocol first. Only a connection
whose handshake succeeded becomes a `ClientConnection` and counts against the
per-address limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from typing import TYPE_CHECKING

from .connection import ClientConnection

if TYPE_CHECKING:
    from .context import ServerContext

__all__ = ["HANDSHAKE_TIMEOUT", "TlsListener"]

log = logging.getLogger("chat_server.tls")

HANDSHAKE_TIMEOUT = 10.0  # seconds a client has to finish the handshake
BACKLOG = 4096


class TlsListener:
    """Listening sockets for TLS on `host:port` (every address of the host for None)."""

    def __init__(
        self, context: ServerContext, ssl_context: ssl.SSLContext, host: str | None, port: int
    ) -> None:
        self._context = context
        self._ssl_context = ssl_context
        self._sockets = _bind(host, port)
        self._accepting: list[asyncio.Task[None]] = []
        self._handshakes: set[asyncio.Task[None]] = set()

    @property
    def sockets(self) -> list[socket.socket]:
        """The listening sockets; none once closed (like `asyncio.Server.sockets`)."""
        return [sock for sock in self._sockets if sock.fileno() != -1]

    async def start_serving(self) -> None:
        loop = asyncio.get_running_loop()
        self._accepting = [loop.create_task(self._accept(sock)) for sock in self.sockets]

    def close(self) -> None:
        """Stop accepting and drop the handshakes still under way."""
        for task in [*self._accepting, *self._handshakes]:
            task.cancel()
        for sock in self._sockets:
            sock.close()

    async def wait_closed(self) -> None:
        tasks = [*self._accepting, *self._handshakes]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _accept(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, address = await loop.sock_accept(listener)
            except OSError as exc:  # EMFILE and the like: wait a moment, do not spin
                log.warning("tls: accept failed: %s", exc)
                await asyncio.sleep(0.1)
                continue
            task = loop.create_task(self._handshake(sock, address))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    async def _handshake(self, sock: socket.socket, address: tuple[object, ...]) -> None:
        peer = f"{address[0]}:{address[1]}"
        if not self._context.accepting:
            sock.close()
            return
        try:
            await asyncio.get_running_loop().connect_accepted_socket(
                lambda: ClientConnection(self._context),
                sock,
                ssl=self._ssl_context,
                ssl_handshake_timeout=HANDSHAKE_TIMEOUT,
            )
        except asyncio.CancelledError:
            sock.close()
            raise
        except (OSError, TimeoutError, EOFError, ConnectionError) as exc:  # SSLError is OSError
            log.info("tls: handshake with %s failed, closed: %s", peer, _reason(exc))
            sock.close()


def _bind(host: str | None, port: int) -> list[socket.socket]:
    """Listening sockets like `create_server` makes: one per address family of `host`."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            if sockets and port == 0:  # one port for every family, as asked for
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(BACKLOG)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
        raise
    return sockets


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or str(exc)
        if reason in ("WRONG_VERSION_NUMBER", "HTTP_REQUEST", "UNKNOWN_PROTOCOL"):
            return f"{reason} (not TLS: a plain-text client on the TLS port?)"
        return reason
    if isinstance(exc, TimeoutError):
        return f"no handshake within {HANDSHAKE_TIMEOUT:g} s"
    return str(exc) or type(exc).__name__
