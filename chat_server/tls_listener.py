"""The TLS listener: a handshake in front of the same `ClientConnection` as plain text.

The listening socket is a plain one; each accepted connection is upgraded with
`loop.start_tls`. Doing the handshake here, rather than by passing `ssl=` to
`create_server`, is what lets a failed handshake (a plain-text client on the
TLS port, a scanner, a client giving up) be logged in one line and closed
without a traceback: asyncio logs those only in debug mode, and never says
who it was. Only a connection whose handshake succeeded becomes a
`ClientConnection` and counts against the per-address limit.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import TYPE_CHECKING, cast

from .connection import ClientConnection

if TYPE_CHECKING:
    from .server import ServerContext

__all__ = ["HANDSHAKE_TIMEOUT", "TlsHandshake"]

log = logging.getLogger("chat_server.tls")

HANDSHAKE_TIMEOUT = 10.0  # seconds a client has to finish the handshake


class TlsHandshake(asyncio.Protocol):
    """Accepts one TCP connection on the TLS port and upgrades it (or closes it)."""

    def __init__(
        self,
        context: ServerContext,
        ssl_context: ssl.SSLContext,
        pending: set[asyncio.Task[None]],
    ) -> None:
        self._context = context
        self._ssl_context = ssl_context
        self._pending = pending

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)
        transport.pause_reading()  # nothing may be read before the TLS layer takes over
        if not self._context.accepting:
            transport.abort()
            return
        task = self._context.loop.create_task(self._upgrade(transport))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _upgrade(self, transport: asyncio.Transport) -> None:
        address = transport.get_extra_info("peername")
        peer = f"{address[0]}:{address[1]}" if address else "?"
        connection = ClientConnection(self._context)
        try:
            tls_transport = await self._context.loop.start_tls(
                transport,
                connection,
                self._ssl_context,
                server_side=True,
                ssl_handshake_timeout=HANDSHAKE_TIMEOUT,
            )
        except asyncio.CancelledError:
            transport.abort()
            raise
        except (OSError, TimeoutError, EOFError) as exc:  # ssl.SSLError is an OSError
            log.info("tls: handshake with %s failed, closed: %s", peer, _reason(exc))
            transport.abort()
            return
        if tls_transport is None:  # the peer went away during the handshake
            log.info("tls: %s left during the handshake", peer)
            return
        connection.connection_made(tls_transport)

    def connection_lost(self, exc: Exception | None) -> None:
        pass  # after an upgrade the TLS transport reports to the ClientConnection


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or str(exc)
        if reason in ("WRONG_VERSION_NUMBER", "HTTP_REQUEST", "UNKNOWN_PROTOCOL"):
            return f"{reason} (not TLS: a plain-text client on the TLS port?)"
        return reason
    if isinstance(exc, TimeoutError):
        return f"no handshake within {HANDSHAKE_TIMEOUT:g} s"
    return type(exc).__name__ if not str(exc) else str(exc)
