"""Opening the connection a `ChatClient` talks over: TLS with pinning, or plain text.

`open_connection` is the one place the client library decides whether bytes
may flow: over TLS only once `KnownServers` accepted the certificate; in plain
text only to a host that was never reached over TLS, unless the caller says
`insecure`. `find_tls` reads a server's plain greeting (without sending a
byte) to learn whether it offers TLS, so a user who typed `HOST:7777` is moved
to the TLS port by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from protocol import ProtocolError, ServerHello, decode_server_line

from .tls import client_ssl_context, verify_server
from .trust import KnownServers, Verdict

__all__ = ["Security", "TlsOptions", "TlsRoute", "find_tls", "open_connection"]

HELLO_LIMIT = 1 << 16


@dataclass(frozen=True, slots=True)
class TlsOptions:
    """How to check a TLS server.

    Args:
        fingerprint: given by the user (`--fingerprint`): must match, then it is trusted.
        announced: learnt from discovery or the plain greeting: must match, never trusted
            over a pin (neither is authenticated).
        known: the pins (default: the user's known-servers file).
    """

    fingerprint: str | None = None
    announced: str | None = None
    known: KnownServers = field(default_factory=KnownServers)


@dataclass(frozen=True, slots=True)
class Security:
    """What protects the current connection (for the status bar)."""

    encrypted: bool
    fingerprint: str | None = None
    verdict: Verdict | None = None  # how the fingerprint was accepted

    @property
    def pinned(self) -> bool:
        return self.verdict is not None


PLAIN = Security(encrypted=False)


async def open_connection(
    host: str,
    port: int,
    tls: TlsOptions | None,
    *,
    insecure: bool = False,
    known: KnownServers | None = None,
    limit: int = 1 << 16,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, Security]:
    """Open a checked connection; nothing has been sent on it yet.

    Args:
        tls: None for plain text.
        insecure: allow plain text to a host once reached over TLS.
        known: the pins for the plain-text check (default: `tls.known` or the user's file).

    Raises:
        TrustError: the server cannot be trusted (the connection is closed again).
        OSError: it cannot be reached.
    """
    if tls is None:
        (known or KnownServers()).check_plain(host, insecure=insecure)
        reader, writer = await asyncio.open_connection(host, port, limit=limit)
        return reader, writer, PLAIN
    reader, writer = await asyncio.open_connection(
        host, port, ssl=client_ssl_context(), limit=limit
    )
    try:
        expected = tls.fingerprint if tls.fingerprint is not None else tls.announced
        verdict, fingerprint = verify_server(
            writer.transport, host, port, tls.known, expected, from_user=tls.fingerprint is not None
        )
    except BaseException:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        raise
    return reader, writer, Security(True, fingerprint, verdict)


@dataclass(frozen=True, slots=True)
class TlsRoute:
    """Where a server's TLS listener is, as its plain greeting said."""

    port: int
    fingerprint: str | None
    hello: ServerHello


async def find_tls(host: str, port: int, timeout: float) -> TlsRoute | None:  # noqa: ASYNC109
    """Read the plain-text greeting at `host:port` and close; the TLS route if it offers one.

    Nothing is sent, so no password or nick crosses the network in clear.
    Returns None when the server offers no TLS (a version-1 server, `--no-tls`).

    Raises:
        OSError, TimeoutError: nothing answers there.
    """
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, limit=HELLO_LIMIT), timeout
    )
    try:
        line = await asyncio.wait_for(reader.readline(), timeout)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    try:
        hello = decode_server_line(line.rstrip(b"\r\n"))
    except ProtocolError:
        return None
    if not isinstance(hello, ServerHello) or hello.tls_port is None:
        return None
    return TlsRoute(hello.tls_port, hello.fingerprint, hello)
