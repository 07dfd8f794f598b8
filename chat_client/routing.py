"""Where to connect, and how: from an address, or from a name announced on the LAN.

The rules, in order:
- `--tls` (or a server found by discovery that announces TLS): TLS, straight away.
- An address: its plain greeting is read (nothing is sent) and, when it names a
  TLS port, the connection goes there instead; a port that stays silent is taken
  for a TLS port (a TLS server waits for the client to speak first); nothing on
  the default port means a `--tls-only` server, tried on the default TLS port.
- A word with no port, dot or colon is first looked for among the names
  announced on the LAN, then taken for a host name.
A fingerprint learnt on the way (discovery, the plain greeting) is passed on
to be checked, never to be trusted blindly (`TlsOptions.announced`).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from .discovery import DiscoveredServer, DiscoveryUnavailable, ServerBrowser
from .events import ChatClientError
from .secure import TlsOptions, find_tls

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_TLS_PORT",
    "Route",
    "RouteError",
    "find_by_name",
    "looks_like_address",
    "parse_address",
    "parse_addresses",
    "route_to",
    "route_to_address",
    "route_to_discovered",
]

DEFAULT_PORT = 7777
DEFAULT_TLS_PORT = 7778
GREETING_TIMEOUT = 2.0  # a chat server greets at once; silence means TLS (or nothing)
NAME_TIMEOUT = 2.0  # how long to look for an announced name


class RouteError(ChatClientError):
    """The target cannot be made into a connection (bad address, no TLS to check, ...)."""


@dataclass(frozen=True, slots=True)
class Route:
    """A decided connection: where, and TLS options (None: plain text)."""

    host: str
    port: int
    tls: TlsOptions | None
    name: str | None = None  # the announced name, when found by discovery

    def describe(self) -> str:
        where = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        return f"{where} ({'TLS' if self.tls is not None else 'plain text'})"


def parse_address(text: str) -> tuple[str, int | None]:
    """`host`, `host:port` or `[v6]:port` → (host, port or None). Raises RouteError."""
    text = text.strip()
    if not text:
        raise RouteError("give the server's address, e.g. 192.168.1.20 or 192.168.1.20:7777")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if not host:
        raise RouteError(f"{text!r} has no host")
    if not port_text:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise RouteError(f"{port_text!r} is not a port number (1-65535)")
    return host, int(port_text)


def parse_addresses(text: str) -> list[tuple[str, int | None]]:
    """`h1:7777,h2:7777`: the addresses of the nodes of one chat, in the order given.

    One address is a list of one. Raises RouteError for an empty or bad one.
    """
    return [parse_address(part) for part in text.split(",")]


def looks_like_address(text: str) -> bool:
    """True for what can only be an address: a port, a dot, an IP, `localhost`."""
    text = text.strip()
    if ":" in text or "." in text or text.lower() == "localhost":
        return True
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


async def find_by_name(
    name: str, interfaces: Sequence[str] | None = None, wait: float = NAME_TIMEOUT
) -> DiscoveredServer | None:
    """The server announced as `name` (case-insensitive), as soon as it answers within `wait` s."""
    wanted = name.casefold()

    def match(servers: list[DiscoveredServer]) -> DiscoveredServer | None:
        return next((s for s in servers if s.name.casefold() == wanted), None)

    try:
        async with ServerBrowser(interfaces) as browser:
            try:
                async with asyncio.timeout(wait):
                    while (found := match(browser.servers())) is None:
                        browser.changed.clear()
                        await browser.changed.wait()
                    return found
            except TimeoutError:
                return None
    except DiscoveryUnavailable:
        return None


def route_to_discovered(server: DiscoveredServer, fingerprint: str | None = None) -> Route:
    """TLS when the server announces it (checked against its announced fingerprint)."""
    if not server.addresses:
        raise RouteError(f"{server.name!r} announced no address")
    if server.tls_port is not None:
        tls = TlsOptions(fingerprint=fingerprint, announced=server.fingerprint)
        return Route(server.host, server.tls_port, tls, server.name)
    if fingerprint is not None:
        raise RouteError(f"{server.name!r} offers no TLS, so there is no fingerprint to check")
    assert server.plain_port is not None
    return Route(server.host, server.plain_port, None, server.name)


async def route_to_address(
    host: str,
    port: int | None,
    *,
    tls: bool = False,
    fingerprint: str | None = None,
    greeting_timeout: float = GREETING_TIMEOUT,
) -> Route:
    """Decide TLS or plain for `host[:port]` (see the module's rules)."""
    if tls:
        return Route(host, port or DEFAULT_TLS_PORT, TlsOptions(fingerprint=fingerprint))
    try:
        offer = await find_tls(host, port or DEFAULT_PORT, greeting_timeout)
    except TimeoutError:  # silent: a TLS listener waiting for our ClientHello
        return Route(host, port or DEFAULT_PORT, TlsOptions(fingerprint=fingerprint))
    except OSError:
        if port is None:  # nothing on 7777: perhaps a --tls-only server
            return Route(host, DEFAULT_TLS_PORT, TlsOptions(fingerprint=fingerprint))
        raise
    if offer is not None:
        options = TlsOptions(fingerprint=fingerprint, announced=offer.fingerprint)
        return Route(host, offer.port, options)
    if fingerprint is not None:
        raise RouteError(f"{host} offers no TLS, so there is no fingerprint to check")
    return Route(host, port or DEFAULT_PORT, None)


async def route_to(
    target: str,
    *,
    tls: bool = False,
    fingerprint: str | None = None,
    interfaces: Sequence[str] | None = None,
) -> Route:
    """A route for what the user typed: an address, or a name announced on the LAN.

    Raises:
        RouteError: the target is not usable.
        OSError: nothing answers at that address.
    """
    if not looks_like_address(target):
        found = await find_by_name(target, interfaces)
        if found is not None:
            return route_to_discovered(found, fingerprint)
    host, port = parse_address(target)
    return await route_to_address(host, port, tls=tls, fingerprint=fingerprint)
