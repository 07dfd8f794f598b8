"""Finding chat servers on the LAN over mDNS / DNS-SD (python-zeroconf).

`discover(timeout)` browses `_lanchat._tcp.local.` for a while and returns
what answered; `ServerBrowser` keeps a live list for the connect screen. A
server seen on several interfaces or addresses is one entry (same `id`).
A fingerprint learnt here is a hint to check, never a reason to trust: mDNS
is unauthenticated, so `chat_client.trust` still refuses a changed one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import ifaddr
from zeroconf import DNSQuestionType, IPVersion, ServiceStateChange, Zeroconf
from zeroconf import Error as ZeroconfError
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from protocol import SERVICE_TYPE, Announcement, parse_txt, server_name_of

__all__ = [
    "DiscoveredServer",
    "DiscoveryUnavailable",
    "ServerBrowser",
    "discover",
    "nothing_found_help",
]

log = logging.getLogger("chat_client.discovery")

RESOLVE_TIMEOUT_MS = 1500
LIST_TIMEOUT = 2.0  # `chat-client --list` waits this long


class DiscoveryUnavailable(Exception):
    """Multicast cannot be used here (no interface, no permission); says why in plain words."""


@dataclass(frozen=True, slots=True)
class DiscoveredServer:
    """One server on the LAN, however many interfaces it was seen on."""

    server_id: str
    name: str
    addresses: tuple[str, ...]
    port: int  # the SRV port: plain, or TLS when the server has only TLS
    tls_port: int | None
    fingerprint: str | None
    password_required: bool
    users: int
    protocol: int

    @property
    def plain_port(self) -> int | None:
        return None if self.tls_port == self.port else self.port

    @property
    def host(self) -> str:
        """The address to connect to: the first one announced."""
        return self.addresses[0] if self.addresses else ""


def _merge(records: Sequence[tuple[str, Announcement, tuple[str, ...]]]) -> list[DiscoveredServer]:
    """One entry per server id from (instance, record, addresses) triples, sorted by name."""
    by_id: dict[str, DiscoveredServer] = {}
    for instance, record, addresses in records:
        seen = by_id.get(record.server_id)
        merged = addresses if seen is None else _union(seen.addresses, addresses)
        by_id[record.server_id] = DiscoveredServer(
            server_id=record.server_id,
            name=server_name_of(instance, record.server_id),
            addresses=merged,
            port=record.port,
            tls_port=record.tls_port,
            fingerprint=record.fingerprint,
            password_required=record.password_required,
            users=record.users,
            protocol=record.protocol,
        )
    return sorted(by_id.values(), key=lambda s: (s.name.casefold(), s.server_id))


def _union(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(first + second))


def _sorted_addresses(addresses: list[str]) -> tuple[str, ...]:
    # IPv4 first (easier to read and type), then IPv6; loopback last.
    def key(text: str) -> tuple[bool, int, str]:
        try:
            address = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            return (True, 9, text)
        return (address.is_loopback, address.version, text)

    return tuple(sorted(dict.fromkeys(addresses), key=key))


def _check_interfaces(interfaces: Sequence[str]) -> None:
    # zeroconf would fail with a bare "No such device" (and leak a socket): say which one.
    present = {
        ip.ip if isinstance(ip.ip, str) else ip.ip[0]
        for adapter in ifaddr.get_adapters()
        for ip in adapter.ips
    }
    missing = [a for a in interfaces if a not in present]
    if missing:
        raise OSError(f"no interface of this machine has the address {', '.join(missing)}")


def _instance_of(name: str) -> str:
    return name.removesuffix("." + SERVICE_TYPE)


class ServerBrowser:
    """A live list of the servers on the LAN.

    Usage::

        async with ServerBrowser(on_change=show) as browser:
            ...  # show(browser.servers()) is called on every change

    Args:
        interfaces: addresses to browse on (`--interfaces`), or None for every LAN interface.
        on_change: called (on the event loop) with the new list after each change.

    Raises:
        DiscoveryUnavailable: from `start()`, when multicast cannot be used.
    """

    def __init__(
        self,
        interfaces: Sequence[str] | None = None,
        on_change: Callable[[list[DiscoveredServer]], None] | None = None,
    ) -> None:
        self._interfaces = list(interfaces) if interfaces else None
        self._on_change = on_change
        self._zeroconf: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._records: dict[str, tuple[Announcement, tuple[str, ...]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.changed = asyncio.Event()  # set on every change; a waiter clears it

    async def start(self) -> None:
        try:
            if self._interfaces is None:
                self._zeroconf = AsyncZeroconf(ip_version=IPVersion.V4Only)
            else:
                _check_interfaces(self._interfaces)
                self._zeroconf = AsyncZeroconf(interfaces=self._interfaces)
            # QM: answers come by multicast. A unicast answer (QU) goes to port 5353, which
            # every mDNS program on the host shares, so another one may swallow it.
            self._browser = AsyncServiceBrowser(
                self._zeroconf.zeroconf,
                SERVICE_TYPE,
                handlers=[self._on_service],
                question_type=DNSQuestionType.QM,
            )
        except (OSError, RuntimeError, ValueError, ZeroconfError) as exc:
            await self.close()
            raise DiscoveryUnavailable(
                f"cannot listen for servers on the LAN: multicast is not available here ({exc})"
            ) from None

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._browser is not None:
            await self._browser.async_cancel()
            self._browser = None
        if self._zeroconf is not None:
            with contextlib.suppress(OSError, ZeroconfError):
                await self._zeroconf.async_close()
            self._zeroconf = None

    async def __aenter__(self) -> ServerBrowser:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def servers(self) -> list[DiscoveredServer]:
        """The servers known now, one per id, sorted by name."""
        return _merge(
            [
                (instance, record, addresses)
                for instance, (record, addresses) in self._records.items()
            ]
        )

    def _on_service(
        self,
        zeroconf: Zeroconf,
        service_type: str,
        name: str,
        state_change: ServiceStateChange,
    ) -> None:
        if state_change is ServiceStateChange.Removed:
            if self._records.pop(_instance_of(name), None) is not None:
                self._changed()
            return
        task = asyncio.get_running_loop().create_task(self._resolve(zeroconf, name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resolve(self, zeroconf: Zeroconf, name: str) -> None:
        info = AsyncServiceInfo(SERVICE_TYPE, name)
        try:
            found = await info.async_request(
                zeroconf, RESOLVE_TIMEOUT_MS, question_type=DNSQuestionType.QM
            )
        except (OSError, ZeroconfError) as exc:
            log.debug("could not resolve %s: %s", name, exc)
            return
        if not found or info.port is None:
            return
        record = parse_txt(info.properties, info.port)
        if record is None:
            return  # not a lanchat record we understand
        instance = _instance_of(name)
        entry = (record, _sorted_addresses(info.parsed_addresses()))
        if self._records.get(instance) != entry:
            self._records[instance] = entry
            self._changed()

    def _changed(self) -> None:
        self.changed.set()
        if self._on_change is not None:
            self._on_change(self.servers())


async def discover(
    timeout: float = LIST_TIMEOUT,  # noqa: ASYNC109 - how long to listen, not a deadline
    interfaces: Sequence[str] | None = None,
) -> list[DiscoveredServer]:
    """The servers that answer within `timeout` seconds, one entry per server id.

    Raises:
        DiscoveryUnavailable: multicast cannot be used here.
    """
    async with ServerBrowser(interfaces) as browser:
        await asyncio.sleep(timeout)
        return browser.servers()


def nothing_found_help(interfaces: Sequence[str] | None, waited: float) -> str:
    """What to tell a person when no server answered: why that may be, and what to do."""
    where = ", ".join(interfaces) if interfaces else "this machine's LAN interfaces"
    return (
        f"No chat server answered within {waited:g} s on {where}.\n"
        "Either none is running on this network, or its announcements do not reach you:\n"
        "  - a firewall may block mDNS (UDP port 5353) on this machine or the server's;\n"
        "  - guest Wi-Fi, a VPN or a container network often does not pass multicast;\n"
        "  - the server may run with --no-announce.\n"
        "Ask the host for the address and connect directly: chat-client HOST[:PORT]"
    )
