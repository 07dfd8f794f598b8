"""The client's side of TLS: a context that pins instead of asking a CA.

A LAN server has a self-signed certificate, so the handshake does not verify
it against any authority; `verify_server` checks the fingerprint of what the
server presented with `KnownServers` right after the handshake, before a
single line is sent (the module docstring of `trust` has the rules).
"""

from __future__ import annotations

import asyncio
import ssl

from protocol import fingerprint_of

from .trust import KnownServers, TrustError, Verdict

__all__ = ["client_ssl_context", "peer_fingerprint", "verify_server"]


def client_ssl_context() -> ssl.SSLContext:
    """TLS 1.2 or newer; no CA or host-name check (the fingerprint is checked instead)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def peer_fingerprint(transport: asyncio.BaseTransport) -> str:
    """The fingerprint of the certificate the server presented on `transport`.

    Raises:
        TrustError: the transport is not TLS, or the server sent no certificate.
    """
    ssl_object = transport.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        raise TrustError("the server sent no certificate")
    return fingerprint_of(der)


def verify_server(
    transport: asyncio.BaseTransport,
    host: str,
    port: int,
    known: KnownServers,
    expected: str | None = None,
    *,
    from_user: bool = False,
) -> tuple[Verdict, str]:
    """Check the server's certificate on a fresh TLS connection; the caller closes on error.

    Returns:
        How it was accepted, and its fingerprint (to show the user on first use).

    Raises:
        TrustError: do not use this connection (see `trust` for the subclasses).
    """
    presented = peer_fingerprint(transport)
    return known.check(host, port, presented, expected, from_user=from_user), presented
