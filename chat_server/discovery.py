"""Announcing the server on the LAN over mDNS / DNS-SD (python-zeroconf).

Rules:
- The instance `NAME-ID` (`protocol.instance_name`) is registered under
  `_lanchat._tcp.local.` with the TXT record of `protocol.Announcement`; the id
  is kept in the data directory, so the name stays the same across restarts
  and two servers never share one.
- `users=` is refreshed at most every `users_refresh` seconds (30), so a busy
  room does not flood the LAN with updates, and so at least every 60 s while it
  changes.
- Every `poll` seconds (2) the host's addresses are read again; when they
  changed (Wi-Fi roam, VPN up) the sockets are reconciled and the record
  re-announced with the new addresses, well within 5 s.
- When multicast cannot be used (no LAN interface, a container without
  multicast) the server says so in one log line and goes on without
  discovery; an interface that shows up later starts the announcement.
- `close()` withdraws the record (goodbye packets) within a bounded time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
import re
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path

import ifaddr
from zeroconf import Error as ZeroconfError
from zeroconf import IPVersion, NonUniqueNameException
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from protocol import SERVICE_TYPE, Announcement, instance_name

__all__ = [
    "SERVER_ID_FILE",
    "Announcer",
    "lan_addresses",
    "load_or_create_server_id",
    "missing_addresses",
]

log = logging.getLogger("chat_server.discovery")

SERVER_ID_FILE = "server-id"
_SERVER_ID = re.compile(r"[0-9a-f]{8}")
CLOSE_TIMEOUT = 3.0  # seconds for the goodbye packets at shutdown

AddressSource = Callable[[], list[str]]


def load_or_create_server_id(data_dir: Path) -> str:
    """The server's short id (8 hex digits), made at first start and kept in `data_dir`."""
    path = data_dir / SERVER_ID_FILE
    try:
        found = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        found = ""
    if _SERVER_ID.fullmatch(found):
        return found
    server_id = secrets.token_hex(4)
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(server_id + "\n", encoding="ascii")
    return server_id


def missing_addresses(addresses: Sequence[str]) -> list[str]:
    """Those of `addresses` that no interface of this machine has (multicast cannot use them)."""
    present = {
        ip.ip if isinstance(ip.ip, str) else ip.ip[0]
        for adapter in ifaddr.get_adapters()
        for ip in adapter.ips
    }
    return [a for a in addresses if a not in present]


def lan_addresses(interfaces: Sequence[str] | None = None) -> list[str]:
    """The addresses to announce: `interfaces` as given, else every LAN IPv4 address.

    LAN here means not loopback and not link-local (169.254/16), sorted.
    """
    if interfaces:
        return list(dict.fromkeys(interfaces))
    found: set[str] = set()
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if not isinstance(ip.ip, str):
                continue  # IPv6 entries are tuples; IPv4 only by default
            address = ipaddress.IPv4Address(ip.ip)
            if not (address.is_loopback or address.is_link_local or address.is_unspecified):
                found.add(ip.ip)
    return sorted(found, key=ipaddress.IPv4Address)


class Announcer:
    """Keeps one server's record announced while the server runs.

    Args:
        name: the server's `--name`.
        announcement: the record to announce (its `users` is replaced by `users()`).
        users: the current online count.
        interfaces: addresses to announce on (`--announce-interfaces`), or None for all.
        users_refresh: least seconds between two `users=` updates.
        poll: seconds between two looks at the host's addresses.
        addresses: where the addresses come from (default `lan_addresses`).
    """

    def __init__(
        self,
        name: str,
        announcement: Announcement,
        users: Callable[[], int],
        interfaces: Sequence[str] | None = None,
        *,
        users_refresh: float = 30.0,
        poll: float = 2.0,
        addresses: AddressSource | None = None,
    ) -> None:
        self.instance = instance_name(name, announcement.server_id)
        self._announcement = announcement
        self._users = users
        self._interfaces = list(interfaces) if interfaces else None
        self._users_refresh = users_refresh
        self._poll = poll
        self._addresses: AddressSource = addresses or (lambda: lan_addresses(self._interfaces))
        self._zeroconf: AsyncZeroconf | None = None
        self._info: AsyncServiceInfo | None = None
        self._task: asyncio.Task[None] | None = None
        self._given_up = False
        self.announced = asyncio.Event()  # set once the record is out (tests wait on it)

    async def start(self) -> None:
        """Start announcing in the background; never raises for network trouble."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mdns-announcer")

    async def close(self) -> None:
        """Withdraw the record and close the sockets (bounded by `CLOSE_TIMEOUT`)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        zeroconf, self._zeroconf = self._zeroconf, None
        if zeroconf is None:
            return
        try:
            await asyncio.wait_for(zeroconf.async_close(), CLOSE_TIMEOUT)
        except (TimeoutError, OSError) as exc:
            log.warning("could not withdraw the announcement cleanly: %s", exc)
        else:
            log.info("announcement withdrawn")

    # -- the background loop -------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        addresses = self._addresses()
        if not addresses:
            log.info(
                "no LAN interface to announce on (yet); until one comes up, "
                "clients need this machine's address (chat-client HOST:PORT)"
            )
        announced_users, last_users_update = -1, 0.0
        while not self._given_up:
            if addresses and self._info is None:
                await self._register(addresses)
                announced_users, last_users_update = self._current_users(), loop.time()
            await asyncio.sleep(self._poll)
            now_addresses = self._addresses()
            if now_addresses != addresses:
                addresses = now_addresses
                await self._readdress(addresses)
                continue
            users = self._current_users()
            due = loop.time() - last_users_update >= self._users_refresh
            if self._info is not None and users != announced_users and due:
                announced_users, last_users_update = users, loop.time()
                await self._update(self._make_info(addresses, users))

    def _current_users(self) -> int:
        return max(0, self._users())

    async def _register(self, addresses: list[str]) -> None:
        try:
            if self._zeroconf is None:
                self._zeroconf = self._open()
            info = self._make_info(addresses, self._current_users())
            await self._zeroconf.async_register_service(info)
        except NonUniqueNameException:
            log.warning(
                "another server on the LAN announces %s (a copied data directory?); discovery off",
                self.instance,
            )
            self._given_up = True
            return
        except (OSError, RuntimeError, ValueError, ZeroconfError) as exc:
            log.warning(
                "multicast cannot be used here (%s); discovery off, clients connect by address",
                exc,
            )
            self._given_up = True
            return
        self._info = info
        self.announced.set()
        log.info(
            "announced as %r on %s (%s)",
            self.instance,
            ", ".join(addresses),
            SERVICE_TYPE.removesuffix(".local."),
        )

    def _open(self) -> AsyncZeroconf:
        if self._interfaces is None:
            return AsyncZeroconf(ip_version=IPVersion.V4Only)
        missing = missing_addresses(self._interfaces)
        if missing:  # checked first: zeroconf would fail with a bare "No such device"
            raise OSError(f"no interface of this machine has the address {', '.join(missing)}")
        return AsyncZeroconf(interfaces=self._interfaces)

    async def _readdress(self, addresses: list[str]) -> None:
        log.info("network changed; announcing on %s", ", ".join(addresses) or "nothing")
        zeroconf = self._zeroconf
        if zeroconf is None:
            return  # the loop registers once there is an address
        try:
            await zeroconf.async_update_interfaces()
            if not addresses:
                if self._info is not None:
                    await zeroconf.async_unregister_service(self._info)
                self._info = None
                return
            if self._info is None:
                return
            await self._update(self._make_info(addresses, self._current_users()))
        except (OSError, RuntimeError, ZeroconfError) as exc:
            log.warning("could not follow the network change: %s", exc)

    async def _update(self, info: AsyncServiceInfo) -> None:
        if self._zeroconf is None:
            return
        try:
            await self._zeroconf.async_update_service(info)
        except (OSError, RuntimeError, ZeroconfError) as exc:
            log.warning("update failed: %s", exc)
            return
        self._info = info

    def _make_info(self, addresses: list[str], users: int) -> AsyncServiceInfo:
        record = dataclasses.replace(self._announcement, users=users)
        return AsyncServiceInfo(
            SERVICE_TYPE,
            f"{self.instance}.{SERVICE_TYPE}",
            port=record.port,
            properties=record.txt(),
            server=f"lanchat-{record.server_id}.local.",
            parsed_addresses=addresses,
        )
